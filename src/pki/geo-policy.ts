import { type Result, fail, ok } from "../core/result";
import { isCountryCode } from "./countries";
import { type RegionCode, isEuMember, isRegionCode } from "./geo-regions";

/**
 * Geo Key Manager's key placement rules, as Cloudflare's API takes them on a
 * custom certificate: `policy`, a boolean expression over `country` and
 * `region` attributes (`(country: US) or (region: EU)`), and
 * `geo_restrictions`, one label (`us`, `eu`, `highest_security`). Here they
 * decide which registered edges may receive the certificate's key. Pure:
 * no storage, no HTTP; every function returns instead of throwing.
 *
 * The grammar is the one Cloudflare's policies are written in (the CIRCL
 * attribute-based-encryption DSL that Geo Key Manager v2 is built on),
 * lowest precedence first:
 *
 *   policy := or
 *   or     := and ("or" and)*
 *   and    := not ("and" not)*
 *   not    := "not" not | primary
 *   primary:= "(" or ")" | ATTRIBUTE ":" VALUE
 *
 * Keywords and attribute names are lower case (`and`, `or`, `not`,
 * `country`, `region`); words are ASCII letters, digits and `_`; spaces,
 * tabs and line breaks separate tokens. Values are matched in either case:
 * a country is an ISO 3166-1 alpha-2 code, a region one of Geo Key Manager's
 * region codes (src/pki/geo-regions.ts).
 */

/** The labels an edge is registered with; what policies are evaluated against. */
export interface EdgeLabels {
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string;
  readonly region: RegionCode;
  /** Whether the operator vouches for the edge as a highest-security site. */
  readonly highest_security: boolean;
}

/** A parsed policy. */
export type PolicyExpr =
  | { readonly kind: "country" | "region"; readonly value: string }
  | { readonly kind: "not"; readonly operand: PolicyExpr }
  | { readonly kind: "and" | "or"; readonly left: PolicyExpr; readonly right: PolicyExpr };

/** Cloudflare's `geo_restrictions.label` values. */
export const GEO_LABELS = ["us", "eu", "highest_security"] as const;
export type GeoLabel = (typeof GEO_LABELS)[number];

/** The longest policy accepted, in UTF-16 code units. */
export const MAX_POLICY_LENGTH = 1024;
/** The deepest nesting of parentheses and `not` accepted. */
export const MAX_POLICY_DEPTH = 32;

type TokenType = "(" | ")" | ":" | "and" | "or" | "not" | "word" | "end";

interface Token {
  readonly type: TokenType;
  readonly text: string;
  /** 1-based position of the token's first character, for error messages. */
  readonly at: number;
}

const KEYWORDS: Record<string, TokenType> = { and: "and", or: "or", not: "not" };
const WORD = /[A-Za-z0-9_]/;
const SPACE = /[ \t\r\n]/;

/** Where the parser stopped: a token (its text, 1-based position), or the end of the policy. */
export type Found = { readonly text: string; readonly position: number } | "end";

/** Why a policy is refused (ours: 1450–1457), with where. */
export type PolicyProblem =
  | { readonly reason: "policy_invalid_character"; readonly character: string; readonly position: number }
  | { readonly reason: "policy_unbalanced_parentheses"; readonly parenthesis: "(" | ")"; readonly position: number }
  | { readonly reason: "policy_expected_operator"; readonly expected: string; readonly found: Found }
  | { readonly reason: "policy_expected_term"; readonly expected: string; readonly found: Found }
  | { readonly reason: "policy_unknown_attribute"; readonly attribute: string; readonly position: number }
  | { readonly reason: "policy_unknown_country" | "policy_unknown_region"; readonly code: string; readonly position: number }
  | { readonly reason: "policy_too_complex"; readonly limit: "length"; readonly max: number }
  | { readonly reason: "policy_too_complex"; readonly limit: "depth"; readonly max: number; readonly position: number };

export type PolicyRefusal = PolicyProblem & { readonly pointer: string };

/** A refusal raised inside the parser and returned by parsePolicy; never escapes this module. */
class PolicyError {
  constructor(readonly problem: PolicyProblem) {}
}

const found = (token: Token): Found => (token.type === "end" ? "end" : { text: token.text, position: token.at });

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (SPACE.test(c)) {
      i++;
    } else if (c === "(" || c === ")" || c === ":") {
      tokens.push({ type: c, text: c, at: i + 1 });
      i++;
    } else if (WORD.test(c)) {
      const start = i;
      while (i < text.length && WORD.test(text[i]!)) i++;
      const word = text.slice(start, i);
      tokens.push({ type: KEYWORDS[word] ?? "word", text: word, at: start + 1 });
    } else {
      // JSON.stringify shows control characters and lone surrogates escaped.
      throw new PolicyError({ reason: "policy_invalid_character", character: c, position: i + 1 });
    }
  }
  tokens.push({ type: "end", text: "", at: text.length + 1 });
  return tokens;
}

/** Recursive descent over the tokens, one method per grammar rule. */
class Parser {
  #at = 0;
  #depth = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  parse(): PolicyExpr {
    const expr = this.#or();
    const next = this.#peek();
    if (next.type === ")") throw new PolicyError({ reason: "policy_unbalanced_parentheses", parenthesis: ")", position: next.at });
    if (next.type !== "end") throw new PolicyError({ reason: "policy_expected_operator", expected: "'and' or 'or'", found: found(next) });
    return expr;
  }

  #peek(): Token {
    return this.tokens[this.#at]!;
  }

  #take(): Token {
    const token = this.tokens[this.#at]!;
    if (token.type !== "end") this.#at++;
    return token;
  }

  #enter(token: Token): void {
    if (++this.#depth > MAX_POLICY_DEPTH) {
      throw new PolicyError({ reason: "policy_too_complex", limit: "depth", max: MAX_POLICY_DEPTH, position: token.at });
    }
  }

  #or(): PolicyExpr {
    let left = this.#and();
    while (this.#peek().type === "or") {
      this.#take();
      left = { kind: "or", left, right: this.#and() };
    }
    return left;
  }

  #and(): PolicyExpr {
    let left = this.#not();
    while (this.#peek().type === "and") {
      this.#take();
      left = { kind: "and", left, right: this.#not() };
    }
    return left;
  }

  #not(): PolicyExpr {
    const token = this.#peek();
    if (token.type !== "not") return this.#primary();
    this.#take();
    this.#enter(token);
    const operand = this.#not();
    this.#depth--;
    return { kind: "not", operand };
  }

  #primary(): PolicyExpr {
    const token = this.#take();
    if (token.type === "(") {
      this.#enter(token);
      const inner = this.#or();
      const close = this.#take();
      if (close.type === "end") {
        throw new PolicyError({ reason: "policy_unbalanced_parentheses", parenthesis: "(", position: token.at });
      }
      if (close.type !== ")") throw new PolicyError({ reason: "policy_expected_operator", expected: "'and', 'or' or ')'", found: found(close) });
      this.#depth--;
      return inner;
    }
    if (token.type !== "word") {
      throw new PolicyError({ reason: "policy_expected_term", expected: "'country: CODE', 'region: CODE', 'not' or '('", found: found(token) });
    }
    if (token.text !== "country" && token.text !== "region") {
      throw new PolicyError({ reason: "policy_unknown_attribute", attribute: token.text, position: token.at });
    }
    const colon = this.#take();
    if (colon.type !== ":") throw new PolicyError({ reason: "policy_expected_term", expected: `':' after '${token.text}'`, found: found(colon) });
    const value = this.#take();
    if (value.type !== "word") {
      throw new PolicyError({ reason: "policy_expected_term", expected: `a ${token.text} code after '${token.text}:'`, found: found(value) });
    }
    const code = value.text.toUpperCase();
    if (token.text === "country" && !isCountryCode(code)) {
      throw new PolicyError({ reason: "policy_unknown_country", code: value.text, position: value.at });
    }
    if (token.text === "region" && !isRegionCode(code)) {
      throw new PolicyError({ reason: "policy_unknown_region", code: value.text, position: value.at });
    }
    return { kind: token.text, value: code };
  }
}

/**
 * Parses a policy. Every malformed input is a refusal naming its reason
 * (docs/api.md: 1450–1457) and where the problem is; never throws.
 */
export function parsePolicy(text: string): Result<PolicyExpr, PolicyRefusal> {
  if (text.length > MAX_POLICY_LENGTH) {
    return fail({ reason: "policy_too_complex", pointer: "/policy", limit: "length", max: MAX_POLICY_LENGTH });
  }
  try {
    return ok(new Parser(tokenize(text)).parse());
  } catch (error) {
    if (error instanceof PolicyError) return fail({ ...error.problem, pointer: "/policy" });
    throw error;
  }
}

/** Whether an edge with `labels` satisfies the policy. */
export function evaluatePolicy(expr: PolicyExpr, labels: EdgeLabels): boolean {
  switch (expr.kind) {
    case "country":
      return labels.country === expr.value;
    case "region":
      return labels.region === expr.value || (expr.value === "EU" && isEuMember(labels.country));
    case "not":
      return !evaluatePolicy(expr.operand, labels);
    case "and":
      return evaluatePolicy(expr.left, labels) && evaluatePolicy(expr.right, labels);
    case "or":
      return evaluatePolicy(expr.left, labels) || evaluatePolicy(expr.right, labels);
  }
}

/**
 * Whether an edge satisfies a geo_restrictions label: `us` is an edge in the
 * United States, `eu` one in the EU (as `region: EU`), `highest_security` one
 * the operator registered as such.
 */
export function geoLabelAllows(label: GeoLabel, labels: EdgeLabels): boolean {
  switch (label) {
    case "us":
      return labels.country === "US";
    case "eu":
      return labels.region === "EU" || isEuMember(labels.country);
    case "highest_security":
      return labels.highest_security;
  }
}

/** What a certificate stores of its placement: at most one of the two is set. */
export interface PlacementRule {
  readonly policy: string | null;
  readonly geo_restriction: GeoLabel | null;
}

/**
 * Whether an edge may receive a key under `rule`. No rule at all allows
 * every edge. A stored policy that no longer parses (it was checked when it
 * was stored, so only a bug or a tampered row) allows none: fail closed.
 */
export function placementAllows(rule: PlacementRule, labels: EdgeLabels): boolean {
  if (rule.policy !== null) {
    const parsed = parsePolicy(rule.policy);
    if (!parsed.ok || !evaluatePolicy(parsed.value, labels)) return false;
  }
  if (rule.geo_restriction !== null && !geoLabelAllows(rule.geo_restriction, labels)) return false;
  return true;
}
