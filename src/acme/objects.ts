import { fail, ok, type Result } from "../core/result";
import { type AcmeIdentifier, type AcmeProblem, parseIdentifier, parseProblem } from "./problem";
import type { AcmeBadResponse } from "./refusals";
import { checkUrl } from "./transport";

/**
 * ACME's resources as the client returns them (RFC 8555 §7.1): plain,
 * serializable objects with the RFC's member names, each URL checked to be
 * https, each status one of the RFC's. They carry what a caller stores to
 * resume (URLs, statuses) and, as `retryAfter`, the reply's Retry-After in
 * seconds when the CA sent one (§7.4, §7.5.1: when to poll again).
 */

export type AcmeAccountStatus = "valid" | "deactivated" | "revoked";
export type AcmeOrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export type AcmeAuthorizationStatus = "pending" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
export type AcmeChallengeStatus = "pending" | "processing" | "valid" | "invalid";

/** An account (RFC 8555 §7.1.2). */
export interface AcmeAccount {
  /** The account URL: store it; every later request is signed with it as `kid`. */
  readonly url: string;
  readonly status: AcmeAccountStatus;
  /** Whether newAccount made it now (201), rather than finding the key's existing account (200). */
  readonly created: boolean;
  readonly contact: readonly string[];
  readonly orders?: string;
}

/** An order (RFC 8555 §7.1.3). */
export interface AcmeOrder {
  /** The order URL: store it before anything else, so a restart polls this order and never orders again. */
  readonly url: string;
  readonly status: AcmeOrderStatus;
  readonly identifiers: readonly AcmeIdentifier[];
  readonly authorizations: readonly string[];
  readonly finalize: string;
  /** Present once the order is `valid`. */
  readonly certificate?: string;
  readonly expires?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  /** Why the order is `invalid`, when the CA says. */
  readonly error?: AcmeProblem;
  readonly retryAfter?: number;
}

/** A challenge (RFC 8555 §7.1.5, §8). */
export interface AcmeChallenge {
  readonly type: string;
  readonly url: string;
  readonly status: AcmeChallengeStatus;
  /** base64url (§8.3, §8.4); present on http-01, dns-01 and tls-alpn-01. */
  readonly token?: string;
  readonly validated?: string;
  /** The CA's problem with this challenge: the words for `validation_errors`. */
  readonly error?: AcmeProblem;
}

/** An authorization (RFC 8555 §7.1.4). For a wildcard the identifier is the base domain and `wildcard` is true. */
export interface AcmeAuthorization {
  readonly url: string;
  readonly status: AcmeAuthorizationStatus;
  readonly identifier: AcmeIdentifier;
  readonly wildcard: boolean;
  readonly expires?: string;
  readonly challenges: readonly AcmeChallenge[];
  readonly retryAfter?: number;
}

const ACCOUNT_STATUSES: readonly string[] = ["valid", "deactivated", "revoked"];
const ORDER_STATUSES: readonly string[] = ["pending", "ready", "processing", "valid", "invalid"];
const AUTHORIZATION_STATUSES: readonly string[] = ["pending", "valid", "invalid", "deactivated", "expired", "revoked"];
const CHALLENGE_STATUSES: readonly string[] = ["pending", "processing", "valid", "invalid"];
/** Challenge types whose token the client uses (RFC 8555 §8.3, §8.4; RFC 8737 §3): it must be there and base64url. */
const TOKEN_TYPES = new Set(["http-01", "dns-01", "tls-alpn-01"]);
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

type Fields = Record<string, unknown>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const bad = (detail: string): Result<never, AcmeBadResponse> => fail({ reason: "acme_bad_response", detail });
const isObject = (value: unknown): value is Fields => typeof value === "object" && value !== null && !Array.isArray(value);

function status<S extends string>(value: unknown, allowed: readonly string[], what: string): Result<S, AcmeBadResponse> {
  return typeof value === "string" && allowed.includes(value) ? ok(value as S) : bad(`${what} has no valid status`);
}

/** Optional RFC 3339 timestamps are kept as the CA wrote them, when they are dates at all. */
function timestamp(value: unknown): string | undefined {
  return typeof value === "string" && value.length <= 64 && !Number.isNaN(Date.parse(value)) ? value : undefined;
}

function urls(value: unknown, what: string): Result<string[], AcmeBadResponse> {
  if (!Array.isArray(value)) return bad(`${what} is not a list`);
  const out: string[] = [];
  for (const item of value) {
    const checked = checkUrl(item, `an entry of ${what}`);
    if (!checked.ok) return checked;
    out.push(checked.value);
  }
  return ok(out);
}

/** Reads an account object; `url` comes from the reply's Location (§7.3). */
export function parseAccount(body: Fields, url: string, created: boolean): Result<AcmeAccount, AcmeBadResponse> {
  const accountStatus = status<AcmeAccountStatus>(body.status, ACCOUNT_STATUSES, "the account");
  if (!accountStatus.ok) return accountStatus;
  const contact = Array.isArray(body.contact) ? body.contact.filter((item): item is string => typeof item === "string") : [];
  const account: Mutable<AcmeAccount> = { url, status: accountStatus.value, created, contact };
  if (body.orders !== undefined) {
    const orders = checkUrl(body.orders, "the account's orders");
    if (orders.ok) account.orders = orders.value;
  }
  return ok(account);
}

/** Reads an order object; `url` is the order's own (Location on newOrder, else the URL it was fetched from). */
export function parseOrder(body: Fields, url: string, retryAfter: number | undefined): Result<AcmeOrder, AcmeBadResponse> {
  const orderStatus = status<AcmeOrderStatus>(body.status, ORDER_STATUSES, "the order");
  if (!orderStatus.ok) return orderStatus;
  if (!Array.isArray(body.identifiers)) return bad("the order has no identifiers");
  const identifiers: AcmeIdentifier[] = [];
  for (const item of body.identifiers) {
    const identifier = parseIdentifier(item);
    if (!identifier) return bad("the order has a malformed identifier");
    identifiers.push(identifier);
  }
  const authorizations = urls(body.authorizations, "the order's authorizations");
  if (!authorizations.ok) return authorizations;
  const finalize = checkUrl(body.finalize, "the order's finalize");
  if (!finalize.ok) return finalize;
  const order: Mutable<AcmeOrder> = {
    url,
    status: orderStatus.value,
    identifiers,
    authorizations: authorizations.value,
    finalize: finalize.value,
  };
  if (body.certificate !== undefined) {
    const certificate = checkUrl(body.certificate, "the order's certificate");
    if (!certificate.ok) return certificate;
    order.certificate = certificate.value;
  }
  if (order.status === "valid" && order.certificate === undefined) return bad("a valid order has no certificate URL");
  for (const name of ["expires", "notBefore", "notAfter"] as const) {
    const value = timestamp(body[name]);
    if (value !== undefined) order[name] = value;
  }
  const error = parseProblem(body.error);
  if (error) order.error = error;
  if (retryAfter !== undefined) order.retryAfter = retryAfter;
  return ok(order);
}

/** Reads a challenge object (inside an authorization, or the reply to a challenge POST). */
export function parseChallenge(body: unknown): Result<AcmeChallenge, AcmeBadResponse> {
  if (!isObject(body) || typeof body.type !== "string" || body.type === "" || body.type.length > 64) return bad("a challenge has no type");
  const url = checkUrl(body.url, `the ${body.type} challenge's url`);
  if (!url.ok) return url;
  const challengeStatus = status<AcmeChallengeStatus>(body.status, CHALLENGE_STATUSES, `the ${body.type} challenge`);
  if (!challengeStatus.ok) return challengeStatus;
  const challenge: Mutable<AcmeChallenge> = { type: body.type, url: url.value, status: challengeStatus.value };
  const token = typeof body.token === "string" && TOKEN.test(body.token) ? body.token : undefined;
  if (token !== undefined) challenge.token = token;
  else if (TOKEN_TYPES.has(body.type)) return bad(`the ${body.type} challenge has no base64url token`);
  const validated = timestamp(body.validated);
  if (validated !== undefined) challenge.validated = validated;
  const error = parseProblem(body.error);
  if (error) challenge.error = error;
  return ok(challenge);
}

/** Reads an authorization object fetched from `url`. */
export function parseAuthorization(body: Fields, url: string, retryAfter: number | undefined): Result<AcmeAuthorization, AcmeBadResponse> {
  const authzStatus = status<AcmeAuthorizationStatus>(body.status, AUTHORIZATION_STATUSES, "the authorization");
  if (!authzStatus.ok) return authzStatus;
  const identifier = parseIdentifier(body.identifier);
  if (!identifier) return bad("the authorization has no identifier");
  if (!Array.isArray(body.challenges)) return bad("the authorization has no challenges");
  const challenges: AcmeChallenge[] = [];
  for (const item of body.challenges) {
    const challenge = parseChallenge(item);
    if (!challenge.ok) return challenge;
    challenges.push(challenge.value);
  }
  const authorization: Mutable<AcmeAuthorization> = {
    url,
    status: authzStatus.value,
    identifier,
    wildcard: body.wildcard === true,
    challenges,
  };
  const expires = timestamp(body.expires);
  if (expires !== undefined) authorization.expires = expires;
  if (retryAfter !== undefined) authorization.retryAfter = retryAfter;
  return ok(authorization);
}
