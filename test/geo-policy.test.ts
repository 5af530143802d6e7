import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { errorInfo } from "../src/http/envelope";
import type { Reason } from "../src/http/errors";
import { isCountryCode } from "../src/pki/countries";
import {
  type EdgeLabels,
  MAX_POLICY_DEPTH,
  MAX_POLICY_LENGTH,
  type PolicyExpr,
  evaluatePolicy,
  geoLabelAllows,
  parsePolicy,
  placementAllows,
} from "../src/pki/geo-policy";
import { REGION_CODES, type RegionCode } from "../src/pki/geo-regions";

const edge = (country: string, region: RegionCode, highest_security = false): EdgeLabels => ({ country, region, highest_security });
const NEW_YORK = edge("US", "ENAM");
const SAN_JOSE = edge("US", "WNAM", true);
const PARIS = edge("FR", "WEUR");
const FRANKFURT = edge("DE", "WEUR", true);
const WARSAW = edge("PL", "EEUR");
const LONDON = edge("GB", "WEUR");
const TORONTO = edge("CA", "ENAM");
const TOKYO = edge("JP", "APAC");
const LABELLED_EU = edge("CH", "EU");
const FLEET = { NEW_YORK, SAN_JOSE, PARIS, FRANKFURT, WARSAW, LONDON, TORONTO, TOKYO, LABELLED_EU };

/** The names of the fleet's edges that satisfy `policy`. */
function admitted(policy: string): string[] {
  const parsed = parsePolicy(policy);
  if (!parsed.ok) throw new Error(`${policy}: ${errorInfo(parsed).message}`);
  return Object.entries(FLEET)
    .filter(([, labels]) => evaluatePolicy(parsed.value, labels))
    .map(([name]) => name);
}

/** A policy's refusal: its reason, and the message the API answers with (its data rendered). */
function refusal(policy: string): { reason: Reason; detail: string } {
  const parsed = parsePolicy(policy);
  if (parsed.ok) throw new Error(`${JSON.stringify(policy)} parsed`);
  expect(parsed.pointer).toBe("/policy");
  return { reason: parsed.reason, detail: errorInfo(parsed).message };
}

describe("Geo Key Manager policies: evaluation", () => {
  it("country and region terms", () => {
    expect(admitted("country: US")).toEqual(["NEW_YORK", "SAN_JOSE"]);
    expect(admitted("country: us")).toEqual(["NEW_YORK", "SAN_JOSE"]);
    expect(admitted("region: WEUR")).toEqual(["PARIS", "FRANKFURT", "LONDON"]);
    expect(admitted("region: apac")).toEqual(["TOKYO"]);
    // EU: the member states whatever their region label, and edges labelled EU.
    expect(admitted("region: EU")).toEqual(["PARIS", "FRANKFURT", "WARSAW", "LABELLED_EU"]);
  });

  it("not, and, or", () => {
    expect(admitted("not country: US")).toEqual(["PARIS", "FRANKFURT", "WARSAW", "LONDON", "TORONTO", "TOKYO", "LABELLED_EU"]);
    expect(admitted("country: US and region: WNAM")).toEqual(["SAN_JOSE"]);
    expect(admitted("country: JP or country: CA")).toEqual(["TORONTO", "TOKYO"]);
    expect(admitted("not not country: JP")).toEqual(["TOKYO"]);
  });

  it("Cloudflare's documented examples", () => {
    expect(admitted("(country: US) or (region: EU)")).toEqual(["NEW_YORK", "SAN_JOSE", "PARIS", "FRANKFURT", "WARSAW", "LABELLED_EU"]);
    expect(admitted("(region: EU) and (not country: FR)")).toEqual(["FRANKFURT", "WARSAW", "LABELLED_EU"]);
    // The setup page's "E.U. and the U.S." example uses `and`: no edge is in both.
    expect(admitted("(country: US) and (region: EU)")).toEqual([]);
  });

  it("precedence: not binds tightest, then and, then or; parentheses override", () => {
    // or below and: US or (CA and ENAM)
    expect(admitted("country: US or country: CA and region: ENAM")).toEqual(["NEW_YORK", "SAN_JOSE", "TORONTO"]);
    expect(admitted("(country: US or country: CA) and region: ENAM")).toEqual(["NEW_YORK", "TORONTO"]);
    // and below not: (not US) and ENAM
    expect(admitted("not country: US and region: ENAM")).toEqual(["TORONTO"]);
    expect(admitted("not (country: US and region: ENAM)")).toEqual(["SAN_JOSE", "PARIS", "FRANKFURT", "WARSAW", "LONDON", "TORONTO", "TOKYO", "LABELLED_EU"]);
    // Left to right within a level; whitespace of any kind between tokens.
    expect(admitted("country:JP\tor\ncountry:CA\r\nor country:GB")).toEqual(["LONDON", "TORONTO", "TOKYO"]);
    expect(admitted("((((country: DE))))")).toEqual(["FRANKFURT"]);
  });

  it("geo_restrictions labels", () => {
    const names = (label: "us" | "eu" | "highest_security") =>
      Object.entries(FLEET).filter(([, l]) => geoLabelAllows(label, l)).map(([n]) => n);
    expect(names("us")).toEqual(["NEW_YORK", "SAN_JOSE"]);
    expect(names("eu")).toEqual(admitted("region: EU"));
    expect(names("highest_security")).toEqual(["SAN_JOSE", "FRANKFURT"]);
  });

  it("a placement: none admits all; a policy or a label decides; a corrupt stored policy admits none", () => {
    expect(placementAllows({ policy: null, geo_restriction: null }, TOKYO)).toBe(true);
    expect(placementAllows({ policy: "country: JP", geo_restriction: null }, TOKYO)).toBe(true);
    expect(placementAllows({ policy: "country: US", geo_restriction: null }, TOKYO)).toBe(false);
    expect(placementAllows({ policy: null, geo_restriction: "highest_security" }, FRANKFURT)).toBe(true);
    expect(placementAllows({ policy: null, geo_restriction: "us" }, FRANKFURT)).toBe(false);
    expect(placementAllows({ policy: "country: JP or", geo_restriction: null }, TOKYO)).toBe(false);
  });
});

describe("Geo Key Manager policies: every malformed case has its own code", () => {
  const cases: Array<[string, Reason, RegExp]> = [
    ["country: US & region: EU", "policy_invalid_character", /"&" at position 13/],
    ["country: US;", "policy_invalid_character", /";" at position 12/],
    ["country: US or region: EU!", "policy_invalid_character", /"!"/],
    ["country: \u00e9", "policy_invalid_character", /"é" at position 10/],
    ["country: US\u0000", "policy_invalid_character", /"\\u0000"/],
    ["(country: US", "policy_unbalanced_parentheses", /'\(' at position 1 is never closed/],
    ["((country: US)", "policy_unbalanced_parentheses", /'\(' at position 1/],
    ["country: US)", "policy_unbalanced_parentheses", /'\)' at position 12 closes no '\('/],
    ["(country: US))", "policy_unbalanced_parentheses", /position 14/],
    ["", "policy_expected_term", /found the end of the policy/],
    ["country US", "policy_expected_term", /expected ':' after 'country', found 'US'/],
    ["country:", "policy_expected_term", /expected a country code after 'country:'/],
    ["region: )", "policy_expected_term", /expected a region code/],
    ["country: US and", "policy_expected_term", /found the end of the policy/],
    ["not", "policy_expected_term", /found the end/],
    ["()", "policy_expected_term", /found '\)' at position 2/],
    ["and country: US", "policy_expected_term", /found 'and' at position 1/],
    ["country: US or or country: CA", "policy_expected_term", /found 'or' at position 16/],
    ["country: (US)", "policy_expected_term", /found '\(' at position 10/],
    ["country: US region: EU", "policy_expected_operator", /found 'region' at position 13/],
    ["country: KP korea", "policy_expected_operator", /found 'korea' at position 13/],
    ["(country: US) (region: EU)", "policy_expected_operator", /found '\(' at position 15/],
    ["country: US not region: EU", "policy_expected_operator", /found 'not'/],
    ["(country: US region: EU)", "policy_expected_operator", /expected 'and', 'or' or '\)', found 'region'/],
    ["country: US AND region: EU", "policy_expected_operator", /found 'AND'/],
    ["city: Paris", "policy_unknown_attribute", /'city' at position 1/],
    ["Country: US", "policy_unknown_attribute", /'Country'/],
    ["country: US or colo: SJC", "policy_unknown_attribute", /'colo' at position 16/],
    ["country: XX", "policy_unknown_country", /'XX' at position 10/],
    ["country: USA", "policy_unknown_country", /'USA'/],
    ["country: UK", "policy_unknown_country", /'UK'/],
    ["region: NA", "policy_unknown_region", /'NA' at position 9/],
    ["region: EUROPE", "policy_unknown_region", /'EUROPE'/],
    ["region: US", "policy_unknown_region", /'US'/],
    [`country: US or ${"country: CA or ".repeat(80)}country: JP`, "policy_too_complex", /longer than 1024 characters/],
    [`${"(".repeat(MAX_POLICY_DEPTH + 1)}country: US${")".repeat(MAX_POLICY_DEPTH + 1)}`, "policy_too_complex", /nesting deeper than 32/],
    [`${"not ".repeat(MAX_POLICY_DEPTH + 1)}country: US`, "policy_too_complex", /nesting deeper than 32/],
  ];

  for (const [policy, reason, detail] of cases) {
    it(`${JSON.stringify(policy.length > 60 ? `${policy.slice(0, 60)}…` : policy)} is ${reason}`, () => {
      const refused = refusal(policy);
      expect(refused.reason).toBe(reason);
      expect(refused.detail).toMatch(detail);
    });
  }

  it("the limits are inclusive", () => {
    expect(parsePolicy(`${"(".repeat(MAX_POLICY_DEPTH)}country: US${")".repeat(MAX_POLICY_DEPTH)}`).ok).toBe(true);
    expect(parsePolicy(`${"not ".repeat(MAX_POLICY_DEPTH)}country: US`).ok).toBe(true);
    const long = `country: US${" ".repeat(MAX_POLICY_LENGTH - 11)}`;
    expect(long.length).toBe(MAX_POLICY_LENGTH);
    expect(parsePolicy(long).ok).toBe(true);
    expect(refusal(`${long} `).reason).toBe("policy_too_complex");
  });
});

// --- properties --------------------------------------------------------------

const COUNTRIES = ["US", "CA", "FR", "DE", "PL", "GB", "JP", "CH", "BR", "ZA"];

/** Random well-formed policies as trees, printed with or without redundant parentheses. */
const exprArb: fc.Arbitrary<PolicyExpr> = fc.letrec<{ expr: PolicyExpr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ kind: fc.constant("country" as const), value: fc.constantFrom(...COUNTRIES) }),
    fc.record({ kind: fc.constant("region" as const), value: fc.constantFrom(...REGION_CODES) }),
    fc.record({ kind: fc.constant("not" as const), operand: tie("expr") }),
    fc.record({ kind: fc.constantFrom("and" as const, "or" as const), left: tie("expr"), right: tie("expr") }),
  ),
})).expr;

/** Prints a tree fully parenthesized, so parsing it back must give the same tree. */
function print(expr: PolicyExpr, lower: boolean): string {
  switch (expr.kind) {
    case "country":
    case "region":
      return `(${expr.kind}: ${lower ? expr.value.toLowerCase() : expr.value})`;
    case "not":
      return `(not ${print(expr.operand, lower)})`;
    default:
      return `(${print(expr.left, lower)} ${expr.kind} ${print(expr.right, lower)})`;
  }
}

/** Nesting of a printed tree: each node adds a pair of parentheses, a `not` one more level. */
function depth(expr: PolicyExpr): number {
  switch (expr.kind) {
    case "country":
    case "region":
      return 1;
    case "not":
      return 2 + depth(expr.operand);
    default:
      return 1 + Math.max(depth(expr.left), depth(expr.right));
  }
}

const labelsArb: fc.Arbitrary<EdgeLabels> = fc.record({
  country: fc.constantFrom(...COUNTRIES, "IT", "AU"),
  region: fc.constantFrom(...REGION_CODES),
  highest_security: fc.boolean(),
});

// The policy alphabet and a few strangers, so random strings reach every branch of the parser.
const TOKENS = ["(", ")", ":", " ", "and", "or", "not", "country", "region", "US", "EU", "fr", "XX", "ENAM", "&", "\n", "é", "AND"];

describe("Geo Key Manager policies: properties (fast-check)", () => {
  it("the parser never throws: it returns a policy or a documented refusal", () => {
    const reasons = new Set<Reason>([
      "policy_invalid_character",
      "policy_unbalanced_parentheses",
      "policy_expected_term",
      "policy_expected_operator",
      "policy_unknown_attribute",
      "policy_unknown_country",
      "policy_unknown_region",
      "policy_too_complex",
    ]);
    const seen = new Set<string>();
    const input = fc.oneof(
      fc.string({ maxLength: 1200, unit: "binary" }),
      fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }).map((parts) => parts.join(" ")),
      fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }).map((parts) => parts.join("")),
      // Valid policies, then one character dropped or doubled somewhere.
      fc.tuple(exprArb, fc.nat(), fc.constantFrom("keep", "drop", "double")).map(([expr, at, edit]) => {
        const text = print(expr, false);
        const i = at % text.length;
        return edit === "keep" ? text : edit === "drop" ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i + 1) + text.slice(i);
      }),
    );
    fc.assert(
      fc.property(input, (text) => {
        const result = parsePolicy(text);
        if (result.ok) {
          seen.add("ok");
        } else {
          expect(reasons.has(result.reason)).toBe(true);
          expect(errorInfo(result).message).not.toContain(":reason");
          seen.add(result.reason);
        }
      }),
      { numRuns: 3000 },
    );
    // The random inputs did reach the parser's branches, not only the lexer's.
    for (const reason of ["ok", ...reasons]) if (reason !== "policy_too_complex") expect(seen).toContain(reason);
  });

  it("a printed policy parses back to the same tree, in either case, and evaluates like the tree", () => {
    fc.assert(
      fc.property(exprArb, fc.boolean(), labelsArb, (expr, lower, labels) => {
        fc.pre(depth(expr) <= MAX_POLICY_DEPTH);
        const text = print(expr, lower);
        fc.pre(text.length <= MAX_POLICY_LENGTH);
        const parsed = parsePolicy(text);
        expect(parsed).toEqual({ ok: true, value: expr });
        expect(evaluatePolicy(parsed.ok ? parsed.value : expr, labels)).toBe(evaluatePolicy(expr, labels));
      }),
      { numRuns: 500 },
    );
  });

  it("not is a complement and de Morgan holds, for any policy and edge", () => {
    fc.assert(
      fc.property(exprArb, exprArb, labelsArb, (a, b, labels) => {
        const not = (e: PolicyExpr): PolicyExpr => ({ kind: "not", operand: e });
        expect(evaluatePolicy(not(a), labels)).toBe(!evaluatePolicy(a, labels));
        expect(evaluatePolicy(not({ kind: "and", left: a, right: b }), labels)).toBe(
          evaluatePolicy({ kind: "or", left: not(a), right: not(b) }, labels),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("every country code the CSR API accepts is a policy country", () => {
    for (let a = 65; a <= 90; a++) {
      for (let b = 65; b <= 90; b++) {
        const code = String.fromCharCode(a, b);
        expect(parsePolicy(`country: ${code}`).ok).toBe(isCountryCode(code));
      }
    }
  });
});
