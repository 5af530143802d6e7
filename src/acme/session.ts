import { fail, ok, type Result } from "../core/result";
import type { AcmeAccountKey } from "./account-key";
import { type AcmeDirectory, parseDirectory } from "./directory";
import type { AcmeBadInput, AcmeRequestRefusal } from "./refusals";
import { type AcmeOptions, checkInputUrl, expectJson, type Reply, replyJson, replyRefusal, send, type Transport, transport } from "./transport";

/** Who signs a request: the account key, with the account URL once there is an account (RFC 8555 §6.2). */
export interface AcmeSigner {
  readonly key: AcmeAccountKey;
  /** The account URL: the JWS carries it as `kid`. Absent only for newAccount, which carries the `jwk` instead. */
  readonly kid?: string;
}

/** How many unused nonces a session keeps (RFC 8555 §6.5: any reply's Replay-Nonce may be used next). */
const NONCE_POOL = 16;
// RFC 8555 §6.5.1: a nonce is base64url; anything else from the CA is not kept.
const NONCE = /^[A-Za-z0-9_-]{1,256}$/;
const BAD_NONCE = "urn:ietf:params:acme:error:badNonce";

/**
 * One CA as the client talks to it: its directory, the transport (the
 * injected fetch, clock, timeout and bounds) and the nonces its replies
 * handed out. In memory only and cheap to make again (one GET of the
 * directory), so a Durable Object may keep one per CA while it lives, or open
 * one per alarm run; it holds no key and nothing that needs storing.
 */
export class AcmeSession {
  readonly directory: AcmeDirectory;
  readonly #transport: Transport;
  #nonces: string[] = [];

  private constructor(directory: AcmeDirectory, t: Transport) {
    this.directory = directory;
    this.#transport = t;
  }

  /** @internal A session over a directory already read (tests; openDirectory is the way in). */
  static over(directory: AcmeDirectory, t: Transport): AcmeSession {
    return new AcmeSession(directory, t);
  }

  /** @internal The transport the step functions send through. */
  get transport(): Transport {
    return this.#transport;
  }

  #keep(reply: Reply): void {
    const nonce = reply.headers.get("replay-nonce");
    if (nonce === null || !NONCE.test(nonce)) return;
    this.#nonces.push(nonce);
    if (this.#nonces.length > NONCE_POOL) this.#nonces.shift();
  }

  // The newest nonce first: older ones are likelier to have expired at the CA.
  async #nonce(): Promise<Result<string, AcmeRequestRefusal>> {
    const pooled = this.#nonces.pop();
    if (pooled !== undefined) return ok(pooled);
    const reply = await send(this.#transport, this.directory.newNonce, { method: "HEAD" });
    if (!reply.ok) return reply;
    if (reply.value.status < 200 || reply.value.status >= 300) return fail(replyRefusal(reply.value, "newNonce"));
    const nonce = reply.value.headers.get("replay-nonce");
    if (nonce === null || !NONCE.test(nonce)) return fail({ reason: "acme_bad_response", detail: "newNonce gave no usable Replay-Nonce" });
    return ok(nonce);
  }

  /**
   * @internal POSTs a JWS to `url` (RFC 8555 §6.2): protected header `alg`
   * ES256, `nonce`, `url`, and `jwk` (newAccount) or `kid` (everything else).
   * `payload` undefined is a POST-as-GET (§6.3: the payload is the empty
   * string). A reply rejected with badNonce is sent again with a fresh nonce
   * (the rejection's own Replay-Nonce, §6.5), up to `badNonceRetries` times.
   * Any other status is the caller's to read.
   */
  async post(
    url: string,
    signer: AcmeSigner,
    payload: unknown,
    { accept = "application/json", maxBytes }: { accept?: string; maxBytes?: number } = {},
  ): Promise<Result<Reply, AcmeRequestRefusal>> {
    const body = payload === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(payload));
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.#nonce();
      if (!nonce.ok) return nonce;
      const who = signer.kid === undefined ? { jwk: { ...signer.key.publicJwk } } : { kid: signer.kid };
      const jws = await signer.key.sign({ nonce: nonce.value, url, ...who }, body);
      const reply = await send(
        this.#transport,
        url,
        { method: "POST", headers: { "content-type": "application/jose+json", accept }, body: JSON.stringify(jws) },
        maxBytes,
      );
      if (!reply.ok) return reply;
      this.#keep(reply.value);
      if (reply.value.status === 400 && attempt < this.#transport.badNonceRetries && isBadNonce(reply.value)) continue;
      return reply;
    }
  }
}

function isBadNonce(reply: Reply): boolean {
  const body = replyJson(reply);
  return typeof body === "object" && body !== null && (body as { type?: unknown }).type === BAD_NONCE;
}

/**
 * Opens a session on the CA whose directory is at `directoryUrl` (RFC 8555
 * §7.1.1): reads the directory once. Its `meta.externalAccountRequired` says
 * whether newAccount needs External Account Binding.
 */
export async function openDirectory(
  directoryUrl: string,
  options: AcmeOptions = {},
): Promise<Result<AcmeSession, AcmeRequestRefusal | AcmeBadInput>> {
  const url = checkInputUrl(directoryUrl, "the directory URL");
  if (!url.ok) return url;
  const t = transport(options);
  const reply = await send(t, url.value, { method: "GET" });
  if (!reply.ok) return reply;
  const body = expectJson(reply.value, [200], "directory");
  if (!body.ok) return body;
  const directory = parseDirectory(url.value, body.value);
  return directory.ok ? ok(AcmeSession.over(directory.value, t)) : directory;
}
