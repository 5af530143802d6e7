import { fail, ok, type Result } from "../core/result";
import type { AcmeAccountRef } from "./account";
import { type AcmeAuthorization, type AcmeChallenge, parseAuthorization, parseChallenge } from "./objects";
import type { AcmeProblem } from "./problem";
import type { AcmeBadInput, AcmeNoChallenge, AcmeRequestRefusal } from "./refusals";
import type { AcmeSession } from "./session";
import { checkInputUrl, expectJson } from "./transport";

const signer = (account: AcmeAccountRef) => ({ key: account.key, kid: account.url });

/**
 * An authorization now (POST-as-GET, RFC 8555 §7.5). `valid` needs nothing
 * more (a CA may reuse one across orders); `pending` wants a challenge
 * answered, then polling (honour `retryAfter`) until it is `valid` or
 * `invalid`; `invalid` is final for this order (authorizationProblem says
 * why), and so are `expired`, `deactivated` and `revoked`: a new order is
 * the way on.
 */
export async function getAuthorization(
  session: AcmeSession,
  account: AcmeAccountRef,
  authorizationUrl: string,
): Promise<Result<AcmeAuthorization, AcmeRequestRefusal | AcmeBadInput>> {
  const url = checkInputUrl(authorizationUrl, "the authorization URL");
  if (!url.ok) return url;
  const reply = await session.post(url.value, signer(account), undefined);
  if (!reply.ok) return reply;
  const body = expectJson(reply.value, [200], "authorization");
  return body.ok ? parseAuthorization(body.value, url.value, reply.value.retryAfter) : body;
}

/**
 * The authorization's challenge of type `wanted` (`http-01` or `dns-01`).
 * A wildcard's authorization offers only dns-01 (RFC 8555 §7.1.3), so asking
 * it for http-01 is refused with what it does offer.
 */
export function selectChallenge(authorization: AcmeAuthorization, wanted: string): Result<AcmeChallenge, AcmeNoChallenge> {
  const challenge = authorization.challenges.find((item) => item.type === wanted);
  if (challenge) return ok(challenge);
  return fail({ reason: "acme_no_challenge", wanted, offered: authorization.challenges.map((item) => item.type) });
}

/**
 * Tells the CA the challenge is ready to be checked (POST `{}`, RFC 8555
 * §7.5.1), once its record is published. Returns the challenge as the CA
 * now has it (`pending` or `processing`, sometimes already `valid`), with
 * the reply's Retry-After: when to poll the authorization. Answering a
 * challenge again is harmless (the CA returns it as it is), so after a
 * restart the caller may simply send it again.
 */
export async function respondToChallenge(
  session: AcmeSession,
  account: AcmeAccountRef,
  challengeUrl: string,
): Promise<Result<AcmeChallenge & { readonly retryAfter?: number }, AcmeRequestRefusal | AcmeBadInput>> {
  const url = checkInputUrl(challengeUrl, "the challenge URL");
  if (!url.ok) return url;
  const reply = await session.post(url.value, signer(account), {});
  if (!reply.ok) return reply;
  const body = expectJson(reply.value, [200], "challenge");
  if (!body.ok) return body;
  const challenge = parseChallenge(body.value);
  if (!challenge.ok) return challenge;
  const retryAfter = reply.value.retryAfter;
  return ok(retryAfter === undefined ? challenge.value : { ...challenge.value, retryAfter });
}

/**
 * Why an authorization failed, in the CA's words: the error of its invalid
 * challenge (RFC 8555 §7.1.5), else of any challenge that has one.
 */
export function authorizationProblem(authorization: AcmeAuthorization): AcmeProblem | undefined {
  const failed = authorization.challenges.find((item) => item.status === "invalid" && item.error);
  return (failed ?? authorization.challenges.find((item) => item.error))?.error;
}
