import { base64url } from "jose";
import { fail, ok, type Result } from "../core/result";
import type { AcmeAccountRef } from "./account";
import { type AcmeCertificateChain, linkTargets, parsePemChain } from "./certificate-chain";
import { type AcmeOrder, parseOrder } from "./objects";
import type { AcmeBadInput, AcmeRequestRefusal } from "./refusals";
import type { AcmeSession } from "./session";
import { checkInputUrl, checkUrl, expectJson, replyRefusal } from "./transport";

/** What newOrder asks for (RFC 8555 §7.4). */
export interface NewOrderOptions {
  /** DNS names, `*.example.com` for a wildcard (§7.1.3); the caller has checked them (SAN rules). */
  readonly identifiers: readonly string[];
  /** Requested validity; CAs may ignore or refuse them (Let's Encrypt refuses). */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

const signer = (account: AcmeAccountRef) => ({ key: account.key, kid: account.url });

/**
 * newOrder (RFC 8555 §7.4). The order comes back `pending` (authorizations
 * to satisfy) or already `ready` (the CA reused valid authorizations). Store
 * its `url`, `authorizations` and `finalize` at once: from then on the step
 * functions only ever poll and advance this order, so a restart never orders
 * twice. (An order lost before it was stored costs nothing: it expires.)
 */
export async function newOrder(
  session: AcmeSession,
  account: AcmeAccountRef,
  options: NewOrderOptions,
): Promise<Result<AcmeOrder, AcmeRequestRefusal | AcmeBadInput>> {
  const names = options.identifiers;
  if (names.length === 0) return fail({ reason: "acme_bad_input", detail: "an order needs at least one identifier" });
  if (names.some((name) => typeof name !== "string" || name === "" || name.length > 255)) {
    return fail({ reason: "acme_bad_input", detail: "an identifier is not a DNS name" });
  }
  const payload: Record<string, unknown> = { identifiers: names.map((value) => ({ type: "dns", value })) };
  if (options.notBefore) payload.notBefore = options.notBefore.toISOString();
  if (options.notAfter) payload.notAfter = options.notAfter.toISOString();
  const reply = await session.post(session.directory.newOrder, signer(account), payload);
  if (!reply.ok) return reply;
  const body = expectJson(reply.value, [201, 200], "newOrder");
  if (!body.ok) return body;
  const url = checkUrl(reply.value.headers.get("location") ?? undefined, "the newOrder reply's Location");
  if (!url.ok) return url;
  return parseOrder(body.value, url.value, reply.value.retryAfter);
}

/**
 * The order now (POST-as-GET, RFC 8555 §7.4): poll it while `processing`
 * (honour `retryAfter`), finalize it once `ready`, download its
 * `certificate` once `valid`; `invalid` is final (its `error`, and the
 * authorizations' challenge errors, say why).
 */
export async function getOrder(
  session: AcmeSession,
  account: AcmeAccountRef,
  orderUrl: string,
): Promise<Result<AcmeOrder, AcmeRequestRefusal | AcmeBadInput>> {
  const url = checkInputUrl(orderUrl, "the order URL");
  if (!url.ok) return url;
  const reply = await session.post(url.value, signer(account), undefined);
  if (!reply.ok) return reply;
  const body = expectJson(reply.value, [200], "order");
  return body.ok ? parseOrder(body.value, url.value, reply.value.retryAfter) : body;
}

/**
 * Finalizes a `ready` order with the caller's CSR (DER, RFC 8555 §7.4): the
 * CSR names exactly the order's identifiers and carries the key the
 * certificate is for (never the account key). The order comes back
 * `processing` (poll getOrder) or `valid`. Once this has been sent, do not
 * send it again on a restart: read the order first; a second finalize of an
 * order that is no longer `ready` is refused by the CA (orderNotReady, 403),
 * so one order never yields two certificates.
 */
export async function finalize(
  session: AcmeSession,
  account: AcmeAccountRef,
  order: Pick<AcmeOrder, "url" | "finalize">,
  csrDer: Uint8Array,
): Promise<Result<AcmeOrder, AcmeRequestRefusal | AcmeBadInput>> {
  // A DER SEQUENCE at least: anything else is the caller's bug, not the CA's to find.
  if (!(csrDer instanceof Uint8Array) || csrDer.length < 16 || csrDer[0] !== 0x30) {
    return fail({ reason: "acme_bad_input", detail: "the CSR is not DER" });
  }
  const finalizeUrl = checkInputUrl(order.finalize, "the finalize URL");
  if (!finalizeUrl.ok) return finalizeUrl;
  const orderUrl = checkInputUrl(order.url, "the order URL");
  if (!orderUrl.ok) return orderUrl;
  const reply = await session.post(finalizeUrl.value, signer(account), { csr: base64url.encode(csrDer) });
  if (!reply.ok) return reply;
  const body = expectJson(reply.value, [200], "finalize");
  return body.ok ? parseOrder(body.value, orderUrl.value, reply.value.retryAfter) : body;
}

/**
 * Downloads the certificate chain of a `valid` order (POST-as-GET with
 * Accept: application/pem-certificate-chain, RFC 8555 §7.4.2), at most
 * `maxCertificateBytes` of it. Safe to repeat: it issues nothing.
 */
export async function downloadCertificate(
  session: AcmeSession,
  account: AcmeAccountRef,
  certificateUrl: string,
): Promise<Result<AcmeCertificateChain, AcmeRequestRefusal | AcmeBadInput>> {
  const url = checkInputUrl(certificateUrl, "the certificate URL");
  if (!url.ok) return url;
  const reply = await session.post(url.value, signer(account), undefined, {
    accept: "application/pem-certificate-chain",
    maxBytes: session.transport.maxCertificateBytes,
  });
  if (!reply.ok) return reply;
  if (reply.value.status !== 200) {
    return fail(
      reply.value.status >= 400
        ? replyRefusal(reply.value, "certificate")
        : { reason: "acme_bad_response", detail: `certificate: unexpected HTTP ${reply.value.status}`, status: reply.value.status },
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(reply.value.body);
  } catch {
    return fail({ reason: "acme_bad_response", detail: "the certificate chain is not text" });
  }
  const alternates: string[] = [];
  for (const target of linkTargets(reply.value.headers.get("link"), "alternate")) {
    const checked = checkUrl(safeResolve(target, url.value), "an alternate chain's URL");
    if (checked.ok) alternates.push(checked.value);
  }
  const chain = parsePemChain(text, alternates);
  return chain.ok ? ok(chain.value) : chain;
}

function safeResolve(target: string, base: string): string | undefined {
  try {
    return new URL(target, base).href;
  } catch {
    return undefined;
  }
}
