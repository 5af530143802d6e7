/**
 * RFC 7807 problem documents as ACME uses them (RFC 8555 §6.7): in error
 * replies, in a challenge's `error` and in an order's `error`. The CA's text
 * is kept as it is, only bounded: it ends up in the API's
 * `validation_errors`, so a CA (or whatever answers in its place) cannot
 * make a stored record or a reply arbitrarily large.
 */

/** An identifier as ACME names it (RFC 8555 §9.7.7: only `dns` here). */
export interface AcmeIdentifier {
  readonly type: string;
  readonly value: string;
}

/** One subproblem (RFC 8555 §6.7.1): what went wrong for one identifier. */
export interface AcmeSubproblem {
  readonly type: string;
  readonly detail: string;
  readonly identifier?: AcmeIdentifier;
}

/** A problem document: `type` is `about:blank` when the document named none (RFC 7807 §4.2). */
export interface AcmeProblem {
  readonly type: string;
  readonly detail: string;
  /** The status the document itself states (advisory, RFC 7807 §3.1). */
  readonly status?: number;
  readonly subproblems?: readonly AcmeSubproblem[];
  readonly identifier?: AcmeIdentifier;
}

/** The longest `type` or `detail` kept, in characters; longer text is cut with an ellipsis. */
export const MAX_PROBLEM_TEXT = 2048;
/** The most subproblems kept (an order names at most as many identifiers as a certificate holds). */
export const MAX_SUBPROBLEMS = 100;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Text from a CA, with control characters (other than tab and newline) dropped and the length bounded. */
export function boundedText(text: string, max = MAX_PROBLEM_TEXT): string {
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "");
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** An `{ type, value }` identifier, or undefined if `value` is not one. */
export function parseIdentifier(value: unknown): AcmeIdentifier | undefined {
  if (!isObject(value) || typeof value.type !== "string" || typeof value.value !== "string") return undefined;
  return { type: boundedText(value.type, 64), value: boundedText(value.value, 512) };
}

/**
 * Reads a problem document, or returns undefined when `value` is not a JSON
 * object. Members of the wrong type are treated as absent (the document is
 * still the CA's answer), unknown members are ignored, and subproblems that
 * are not objects are skipped.
 */
export function parseProblem(value: unknown): AcmeProblem | undefined {
  if (!isObject(value)) return undefined;
  const type = typeof value.type === "string" && value.type !== "" ? boundedText(value.type, 256) : "about:blank";
  const detail = typeof value.detail === "string" ? boundedText(value.detail) : "";
  const problem: { -readonly [K in keyof AcmeProblem]: AcmeProblem[K] } = { type, detail };
  if (typeof value.status === "number" && Number.isInteger(value.status)) problem.status = value.status;
  const identifier = parseIdentifier(value.identifier);
  if (identifier) problem.identifier = identifier;
  if (Array.isArray(value.subproblems)) {
    const subproblems: AcmeSubproblem[] = [];
    for (const item of value.subproblems.slice(0, MAX_SUBPROBLEMS)) {
      const sub = parseProblem(item);
      if (!sub) continue;
      subproblems.push(sub.identifier ? { type: sub.type, detail: sub.detail, identifier: sub.identifier } : { type: sub.type, detail: sub.detail });
    }
    if (subproblems.length > 0) problem.subproblems = subproblems;
  }
  return problem;
}
