import { ok, type Result } from "../core/result";
import type { AcmeAccountKey } from "./account-key";
import { type ExternalAccountBinding, externalAccountBinding } from "./eab";
import { type AcmeAccount, parseAccount } from "./objects";
import type { AcmeBadInput, AcmeRequestRefusal } from "./refusals";
import type { AcmeSession } from "./session";
import { checkUrl, expectJson, type Reply } from "./transport";

/** What newAccount sends (RFC 8555 §7.3). */
export interface NewAccountOptions {
  /** The operator's agreement to the CA's terms (the directory's `meta.termsOfService`). */
  readonly termsOfServiceAgreed: boolean;
  /** e.g. `["mailto:ops@example.com"]`; the CA says which schemes it takes (unsupportedContact). */
  readonly contact?: readonly string[];
  /** Required when the directory's `meta.externalAccountRequired` is true (§7.3.4). */
  readonly externalAccountBinding?: ExternalAccountBinding;
}

/** An account as the step functions use it: the key and the account URL the key signs as (`kid`). */
export interface AcmeAccountRef {
  readonly key: AcmeAccountKey;
  readonly url: string;
}

function account(reply: Reply, doing: string): Result<AcmeAccount, AcmeRequestRefusal> {
  const body = expectJson(reply, [200, 201], doing);
  if (!body.ok) return body;
  const url = checkUrl(reply.headers.get("location") ?? undefined, `the ${doing} reply's Location`);
  if (!url.ok) return url;
  return parseAccount(body.value, url.value, reply.status === 201);
}

/**
 * newAccount (RFC 8555 §7.3), signed with the key's `jwk`. A key that has an
 * account already gets that account back (200, `created: false`), so this is
 * safe to repeat after a crash that lost the account URL. Store the returned
 * `url` with the key: it is the `kid` of every later request.
 */
export async function createAccount(
  session: AcmeSession,
  key: AcmeAccountKey,
  options: NewAccountOptions,
): Promise<Result<AcmeAccount, AcmeRequestRefusal | AcmeBadInput>> {
  const payload: Record<string, unknown> = { termsOfServiceAgreed: options.termsOfServiceAgreed };
  if (options.contact !== undefined) payload.contact = [...options.contact];
  if (options.externalAccountBinding !== undefined) {
    const binding = await externalAccountBinding(options.externalAccountBinding, key.publicJwk, session.directory.newAccount);
    if (!binding.ok) return binding;
    payload.externalAccountBinding = binding.value;
  }
  const reply = await session.post(session.directory.newAccount, { key }, payload);
  return reply.ok ? account(reply.value, "newAccount") : reply;
}

/**
 * The key's existing account, without making one (newAccount with
 * `onlyReturnExisting`, RFC 8555 §7.3.1); the CA answers a key with no
 * account with the problem `urn:ietf:params:acme:error:accountDoesNotExist`.
 */
export async function findAccount(session: AcmeSession, key: AcmeAccountKey): Promise<Result<AcmeAccount, AcmeRequestRefusal>> {
  const reply = await session.post(session.directory.newAccount, { key }, { onlyReturnExisting: true });
  if (!reply.ok) return reply;
  const found = account(reply.value, "newAccount (onlyReturnExisting)");
  return found.ok ? ok({ ...found.value, created: false }) : found;
}
