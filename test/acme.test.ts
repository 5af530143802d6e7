// The ACME client inside workerd: the pieces with test vectors (RFC 7638
// thumbprints, key authorizations, dns-01 values, the EAB binding computed
// independently with OpenSSL), Retry-After and problem parsing, and the whole
// protocol against a small in-memory CA behind the injected fetch, which
// verifies every JWS the way RFC 8555 §6.2 says a server must. The real CA
// (pebble) is test/e2e/acme.e2e.ts.
import { base64url, decodeProtectedHeader, EmbeddedJWK, flattenedVerify, type FlattenedJWSInput, importJWK, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import {
  type AcmeAccountKey,
  type AcmeFetch,
  type AcmeRefusal,
  authorizationProblem,
  challengeProof,
  createAccount,
  decodeEabKey,
  dns01RecordName,
  dns01TxtValue,
  downloadCertificate,
  externalAccountBinding,
  finalize,
  findAccount,
  generateAccountKey,
  getAuthorization,
  getOrder,
  http01Path,
  importAccountKey,
  isRetryable,
  jwkThumbprint,
  keyAuthorization,
  newOrder,
  openDirectory,
  parseHttpDate,
  parsePemChain,
  parseProblem,
  parseRetryAfter,
  respondToChallenge,
  selectChallenge,
} from "../src/acme/index";
import { linkTargets } from "../src/acme/certificate-chain";
import type { Result } from "../src/core/result";

function must<T>(result: Result<T, AcmeRefusal>): T {
  if (!result.ok) throw new Error(JSON.stringify(result));
  return result.value;
}

// RFC 7515 Appendix A.3's P-256 key: a fixed account key, so the EAB vector below is fixed too.
const RFC7515_EC = {
  kty: "EC",
  crv: "P-256",
  x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
  y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
  d: "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
};

async function rfc7515AccountKey(): Promise<AcmeAccountKey> {
  const privateKey = await crypto.subtle.importKey("jwk", RFC7515_EC, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const { d: _d, ...publicJwk } = RFC7515_EC;
  return must(await importAccountKey(privateKey, publicJwk));
}

describe("thumbprints, key authorizations and dns-01 values", () => {
  it("computes RFC 7638 §3.1's thumbprint and RFC 8037 A.3's", async () => {
    const rsa = {
      kty: "RSA",
      n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
      e: "AQAB",
      alg: "RS256",
      kid: "2011-04-29",
    };
    expect(await jwkThumbprint(rsa)).toBe("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    const okp = { crv: "Ed25519", kty: "OKP", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" };
    expect(await jwkThumbprint(okp)).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  });

  it("builds the key authorization as token.thumbprint, and its dns-01 value as base64url(SHA-256) (value from OpenSSL)", async () => {
    // RFC 8555 §8.3's example token with RFC 7638's thumbprint; the digest was computed with
    // `printf %s "$KA" | openssl dgst -sha256 -binary | base64url`.
    const keyAuth = keyAuthorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", { thumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" });
    expect(keyAuth).toBe("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    expect(await dns01TxtValue(keyAuth)).toBe("ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8");
  });

  it("names the dns-01 record with the wildcard label stripped, and the http-01 path", () => {
    expect(dns01RecordName("shop.customer-one.com")).toBe("_acme-challenge.shop.customer-one.com");
    expect(dns01RecordName("*.customer-one.com")).toBe("_acme-challenge.customer-one.com");
    expect(http01Path("abc_-1")).toBe("/.well-known/acme-challenge/abc_-1");
  });

  it("says what to publish for each challenge type, from the account key's own thumbprint", async () => {
    const key = await rfc7515AccountKey();
    expect(key.thumbprint).toBe(await jwkThumbprint({ kty: "EC", crv: "P-256", x: RFC7515_EC.x, y: RFC7515_EC.y }));
    const identifier = { type: "dns", value: "customer-one.com" };
    const http = await challengeProof(key, { identifier }, { type: "http-01", token: "tok" });
    expect(http).toEqual({
      type: "http-01",
      token: "tok",
      keyAuthorization: `tok.${key.thumbprint}`,
      url: "http://customer-one.com/.well-known/acme-challenge/tok",
      path: "/.well-known/acme-challenge/tok",
      body: `tok.${key.thumbprint}`,
    });
    const dns = await challengeProof(key, { identifier }, { type: "dns-01", token: "tok" });
    expect(dns).toEqual({
      type: "dns-01",
      token: "tok",
      keyAuthorization: `tok.${key.thumbprint}`,
      name: "_acme-challenge.customer-one.com",
      value: await dns01TxtValue(`tok.${key.thumbprint}`),
    });
    expect(await challengeProof(key, { identifier }, { type: "tls-alpn-01", token: "tok" })).toBeUndefined();
  });
});

describe("account keys", () => {
  it("generates a P-256 key whose private half is in no property, JSON or string of it", async () => {
    const generated = await generateAccountKey();
    expect(generated.privateKey.extractable).toBe(true);
    expect(Object.keys(generated.publicJwk).sort()).toEqual(["crv", "kty", "x", "y"]);
    const { d } = (await crypto.subtle.exportKey("jwk", generated.privateKey)) as JsonWebKey;
    const shown = [JSON.stringify(generated.key), String(generated.key), JSON.stringify(Object.entries(generated.key))].join(" ");
    expect(shown).not.toContain(d!);
    expect(JSON.parse(JSON.stringify(generated.key))).toEqual({ publicJwk: generated.publicJwk, thumbprint: generated.key.thumbprint });
  });

  it("refuses halves that are not one P-256 pair, a private JWK, and keys of other kinds", async () => {
    const one = await generateAccountKey();
    const other = await generateAccountKey();
    expect(await importAccountKey(one.privateKey, other.publicJwk)).toMatchObject({ ok: false, reason: "acme_bad_input", detail: expect.stringContaining("not the private key's") });
    const exported = (await crypto.subtle.exportKey("jwk", one.privateKey)) as JsonWebKey;
    expect(await importAccountKey(one.privateKey, exported)).toMatchObject({ ok: false, reason: "acme_bad_input" });
    expect(await importAccountKey(one.privateKey, { ...one.publicJwk, crv: "P-384" })).toMatchObject({ ok: false, reason: "acme_bad_input" });
    expect(await importAccountKey(one.privateKey, { ...one.publicJwk, x: one.publicJwk.y.replace(/^./, (c) => (c === "A" ? "B" : "A")) })).toMatchObject({ ok: false, reason: "acme_bad_input" });
    const rsa = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      false,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    expect(await importAccountKey(rsa.privateKey, one.publicJwk)).toMatchObject({ ok: false, reason: "acme_bad_input" });
    expect(must(await importAccountKey(one.privateKey, { ...one.publicJwk })).thumbprint).toBe(one.key.thumbprint);
  });
});

describe("External Account Binding (RFC 8555 §7.3.4)", () => {
  const HMAC_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
  const URL_ = "https://127.0.0.1:14000/sign-me-up";

  it("MACs the account JWK with HS256 under kid and url, no nonce (signature from OpenSSL)", async () => {
    const key = await rfc7515AccountKey();
    const binding = must(await externalAccountBinding({ kid: "kid-1", hmacKey: HMAC_KEY }, key.publicJwk, URL_));
    expect(binding.protected).toBe("eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC0xIiwidXJsIjoiaHR0cHM6Ly8xMjcuMC4wLjE6MTQwMDAvc2lnbi1tZS11cCJ9");
    expect(decodeProtectedHeader(binding)).toEqual({ alg: "HS256", kid: "kid-1", url: URL_ });
    expect(JSON.parse(new TextDecoder().decode(base64url.decode(binding.payload)))).toEqual(key.publicJwk);
    // printf %s "$protected.$payload" | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key> -binary | base64url
    expect(binding.signature).toBe("tx5QEtantiMSFnfXd-Gnw5FCWgXuO34jtIxZls1cWJw");
    const verified = await flattenedVerify(binding, base64url.decode(HMAC_KEY));
    expect(verified.protectedHeader?.alg).toBe("HS256");
  });

  it("takes the MAC key as base64url, padding tolerated, and refuses anything else without quoting it", async () => {
    expect(must(decodeEabKey(`${HMAC_KEY}==`))).toEqual(base64url.decode(HMAC_KEY));
    for (const bad of ["", "a", "AAAAA", "zWNDZM6e+QGHWpSRTPal5e/IUYFTu7E", "zWNDZM6eQGHWpSRT Pal5eIUYFTu7EajV!"]) {
      const refused = decodeEabKey(bad);
      expect(refused).toMatchObject({ ok: false, reason: "acme_bad_input" });
      if (bad.length > 8) expect(JSON.stringify(refused)).not.toContain(bad.slice(0, 8));
    }
    const key = await rfc7515AccountKey();
    expect(await externalAccountBinding({ kid: "", hmacKey: HMAC_KEY }, key.publicJwk, URL_)).toMatchObject({ ok: false, reason: "acme_bad_input" });
  });
});

describe("Retry-After", () => {
  const now = new Date("2026-12-06T08:00:00Z");

  it("reads delay-seconds and the three HTTP-date forms of RFC 9110 §5.6.7 as seconds from now", () => {
    expect(parseRetryAfter("120", now)).toBe(120);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", now)).toBe(expected);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", now)).toBe(expected);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994", now)).toBe(expected);
    // RFC 9110 §10.2.3's example, long past: retry now.
    expect(parseRetryAfter("Fri, 31 Dec 1999 23:59:59 GMT", now)).toBe(0);
    expect(parseRetryAfter("Sun, 06 Dec 2026 08:01:30 GMT", now)).toBe(90);
    expect(parseRetryAfter("Sun, 06 Dec 2026 08:00:00 GMT", new Date(now.getTime() - 1))).toBe(1);
  });

  it("ignores what is not one (absent, negative, fractional, words, impossible dates, absurd lengths)", () => {
    for (const value of [null, undefined, "", "-1", "1.5", "soon", "12345678901", "Sun, 31 Feb 2026 08:00:00 GMT", "Sun, 06 Dec 2026 25:00:00 GMT", "2026-12-06T08:00:00Z", "Sun, 06 Dec 2026 08:00:00 UTC"]) {
      expect(parseRetryAfter(value, now), String(value)).toBeUndefined();
    }
  });
});

describe("problem documents", () => {
  it("reads RFC 8555 §6.7.1's example with its subproblems", () => {
    const problem = parseProblem({
      type: "urn:ietf:params:acme:error:malformed",
      detail: "Some of the identifiers requested were rejected",
      subproblems: [
        { type: "urn:ietf:params:acme:error:malformed", detail: 'Invalid underscore in DNS name "_example.org"', identifier: { type: "dns", value: "_example.org" } },
        { type: "urn:ietf:params:acme:error:rejectedIdentifier", detail: 'This CA will not issue for "example.net"', identifier: { type: "dns", value: "example.net" } },
      ],
    });
    expect(problem).toEqual({
      type: "urn:ietf:params:acme:error:malformed",
      detail: "Some of the identifiers requested were rejected",
      subproblems: [
        { type: "urn:ietf:params:acme:error:malformed", detail: 'Invalid underscore in DNS name "_example.org"', identifier: { type: "dns", value: "_example.org" } },
        { type: "urn:ietf:params:acme:error:rejectedIdentifier", detail: 'This CA will not issue for "example.net"', identifier: { type: "dns", value: "example.net" } },
      ],
    });
  });

  it("names a document without type about:blank (RFC 7807 §4.2), bounds the text and drops control characters", () => {
    expect(parseProblem({ detail: "x", status: 503 })).toEqual({ type: "about:blank", detail: "x", status: 503 });
    expect(parseProblem({ type: 7, detail: ["x"] })).toEqual({ type: "about:blank", detail: "" });
    const long = parseProblem({ type: "urn:x", detail: "a".repeat(10_000) });
    expect(long?.detail.length).toBe(2048);
    expect(parseProblem({ type: "urn:x", detail: "bad\u0000\u001b[31mred\nline" })?.detail).toBe("bad[31mred\nline");
    expect(parseProblem({ type: "urn:x", subproblems: Array.from({ length: 500 }, () => ({ type: "urn:y" })) })?.subproblems?.length).toBe(100);
    expect(parseProblem("nope")).toBeUndefined();
    expect(parseProblem([])).toBeUndefined();
  });

  it("says which refusals are worth the same step again", () => {
    const problem = (type: string, status: number): AcmeRefusal => ({ reason: "acme_problem", type, detail: "", status });
    expect(isRetryable({ reason: "acme_unreachable", detail: "" })).toBe(true);
    expect(isRetryable(problem("urn:ietf:params:acme:error:badNonce", 400))).toBe(true);
    expect(isRetryable(problem("urn:ietf:params:acme:error:rateLimited", 429))).toBe(true);
    expect(isRetryable(problem("urn:ietf:params:acme:error:serverInternal", 500))).toBe(true);
    expect(isRetryable(problem("about:blank", 503))).toBe(true);
    expect(isRetryable({ reason: "acme_bad_response", detail: "", status: 502 })).toBe(true);
    expect(isRetryable({ reason: "acme_bad_response", detail: "", status: 429 })).toBe(true);
    expect(isRetryable({ reason: "acme_bad_response", detail: "" })).toBe(false);
    for (const type of ["malformed", "unauthorized", "orderNotReady", "rejectedIdentifier", "externalAccountRequired", "accountDoesNotExist", "caa"]) {
      expect(isRetryable(problem(`urn:ietf:params:acme:error:${type}`, 403)), type).toBe(false);
    }
    expect(isRetryable({ reason: "acme_bad_input", detail: "" })).toBe(false);
    expect(isRetryable({ reason: "acme_no_challenge", wanted: "http-01", offered: ["dns-01"] })).toBe(false);
  });
});

describe("certificate chains", () => {
  const block = (bytes: number) =>
    `-----BEGIN CERTIFICATE-----\r\n${btoa("x".repeat(bytes)).match(/.{1,76}/g)!.join("\r\n")}\r\n-----END CERTIFICATE-----\r\n`;

  it("reads PEM blocks leaf first and normalizes them to 64-character LF lines", () => {
    const chain = must(parsePemChain(`${block(300)}\n${block(200)}`));
    expect(chain.certificates.length).toBe(2);
    for (const pem of chain.certificates) {
      expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/);
    }
    expect(chain.pem).toBe(chain.certificates.join(""));
  });

  it("refuses anything but certificates: text around them, a private key, bad base64, nothing", () => {
    expect(parsePemChain(`hello\n${block(100)}`)).toMatchObject({ ok: false, reason: "acme_bad_response" });
    expect(parsePemChain(`${block(100)}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`)).toMatchObject({ ok: false, reason: "acme_bad_response" });
    expect(parsePemChain("-----BEGIN CERTIFICATE-----\n*not base64*\n-----END CERTIFICATE-----\n")).toMatchObject({ ok: false, reason: "acme_bad_response" });
    expect(parsePemChain("  \n")).toMatchObject({ ok: false, reason: "acme_bad_response" });
  });

  it("finds Link targets by relation (RFC 8288)", () => {
    const header = '<https://ca.test/cert/1/1>;rel="alternate", <https://ca.test/dir>;rel="index", <https://ca.test/cert/1/2>; rel=alternate';
    expect(linkTargets(header, "alternate")).toEqual(["https://ca.test/cert/1/1", "https://ca.test/cert/1/2"]);
    expect(linkTargets(header, "up")).toEqual([]);
    expect(linkTargets(null, "alternate")).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// A CA in memory, behind the injected fetch: enough of RFC 8555 to take one
// order for one name from newAccount to the certificate, checking every JWS
// as a server must (§6.2: url, nonce, jwk for newAccount, kid after,
// signature), with hooks to misbehave.

const CA = "https://ca.test";
type Sent = { method: string; url: string; header?: Record<string, unknown>; payload?: string; contentType?: string };
type Hooks = {
  badNonces?: number;
  orderRetryAfter?: string;
  newOrderReply?: () => Response;
  directory?: Record<string, unknown>;
  chain?: string;
};

function fakeCa(hooks: Hooks = {}) {
  const nonces = new Set<string>();
  let counter = 0;
  const nonce = () => {
    const value = `n${++counter}`;
    nonces.add(value);
    return value;
  };
  const accounts = new Map<string, JWK>();
  const sent: Sent[] = [];
  const state = { authz: "pending", order: "pending", csr: "" };
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "replay-nonce": nonce(), ...headers } });
  const problem = (status: number, type: string, detail: string, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail, status }), {
      status,
      headers: { "content-type": "application/problem+json", "replay-nonce": nonce(), ...headers },
    });
  const challenges = () => [
    { type: "http-01", url: `${CA}/chall/http`, status: state.authz === "valid" ? "valid" : "pending", token: "tokHttp" },
    { type: "dns-01", url: `${CA}/chall/dns`, status: "pending", token: "tokDns" },
  ];
  const order = () => ({
    status: state.order,
    identifiers: [{ type: "dns", value: "shop.customer-one.com" }],
    authorizations: [`${CA}/authz/1`],
    finalize: `${CA}/order/1/finalize`,
    ...(state.order === "valid" ? { certificate: `${CA}/cert/1` } : {}),
  });

  const fetch: AcmeFetch = async (url, init) => {
    const entry: Sent = { method: init.method, url };
    sent.push(entry);
    if (init.method === "GET" && url === `${CA}/dir`) {
      return json(200, hooks.directory ?? {
        newNonce: `${CA}/nonce`, newAccount: `${CA}/acct`, newOrder: `${CA}/order`, revokeCert: `${CA}/revoke`,
        meta: { termsOfService: `${CA}/tos`, externalAccountRequired: false },
      });
    }
    if (init.method === "HEAD" && url === `${CA}/nonce`) return new Response(null, { status: 200, headers: { "replay-nonce": nonce() } });
    if (init.method !== "POST") return new Response("no", { status: 405 });
    entry.contentType = init.headers["content-type"];
    const jws = JSON.parse(init.body!) as FlattenedJWSInput;
    const header = decodeProtectedHeader(jws) as Record<string, unknown>;
    entry.header = header;
    entry.payload = jws.payload as string;
    if (header.url !== url) return problem(400, "unauthorized", "url mismatch");
    if (hooks.badNonces && hooks.badNonces-- > 0) return problem(400, "badNonce", "bad nonce, try again");
    if (typeof header.nonce !== "string" || !nonces.delete(header.nonce)) return problem(400, "badNonce", "unknown nonce");
    let payload: unknown;
    if (url === `${CA}/acct`) {
      if (header.kid !== undefined || header.jwk === undefined) return problem(400, "malformed", "newAccount needs jwk");
      const { payload: bytes } = await flattenedVerify(jws, EmbeddedJWK);
      payload = JSON.parse(new TextDecoder().decode(bytes));
      const thumb = await jwkThumbprint(header.jwk as object);
      const known = accounts.has(thumb);
      if ((payload as { onlyReturnExisting?: boolean }).onlyReturnExisting && !known) return problem(400, "accountDoesNotExist", "no account for this key");
      accounts.set(thumb, header.jwk as JWK);
      return json(known ? 200 : 201, { status: "valid", contact: [] }, { location: `${CA}/acct/${thumb}` });
    }
    if (header.jwk !== undefined || typeof header.kid !== "string") return problem(400, "malformed", "kid expected");
    const jwk = accounts.get(header.kid.slice(`${CA}/acct/`.length));
    if (!jwk) return problem(400, "accountDoesNotExist", "unknown kid");
    const { payload: bytes } = await flattenedVerify(jws, await importJWK(jwk, "ES256"));
    payload = bytes.length === 0 ? "" : JSON.parse(new TextDecoder().decode(bytes));
    switch (url) {
      case `${CA}/order`:
        return hooks.newOrderReply?.() ?? json(201, order(), { location: `${CA}/order/1` });
      case `${CA}/authz/1`:
        return json(200, { status: state.authz, identifier: { type: "dns", value: "shop.customer-one.com" }, challenges: challenges() });
      case `${CA}/chall/http`:
        if (JSON.stringify(payload) !== "{}") return problem(400, "malformed", "a challenge POST is {}");
        state.authz = "valid";
        state.order = "ready";
        return json(200, { ...challenges()[0], status: "processing" }, { "retry-after": "2" });
      case `${CA}/chall/dns`:
        return json(200, { ...challenges()[1], status: "invalid", error: { type: "urn:ietf:params:acme:error:dns", detail: "No TXT record found at _acme-challenge.shop.customer-one.com", status: 400 } });
      case `${CA}/order/1`:
        return json(200, order(), state.order === "processing" && hooks.orderRetryAfter ? { "retry-after": hooks.orderRetryAfter } : {});
      case `${CA}/order/1/finalize`:
        if (state.order !== "ready") return problem(403, "orderNotReady", `order is ${state.order}`);
        state.csr = (payload as { csr: string }).csr;
        state.order = "processing";
        return json(200, order(), { location: `${CA}/order/1` });
      case `${CA}/cert/1`:
        state.order = "valid";
        return new Response(hooks.chain ?? `${PEM_A}\n${PEM_B}`, {
          status: 200,
          headers: { "content-type": "application/pem-certificate-chain", "replay-nonce": nonce(), link: `<${CA}/cert/1/1>;rel="alternate"` },
        });
      default:
        return problem(404, "malformed", "no such resource");
    }
  };
  return { fetch, sent, state, accounts };
}

const PEM_A = `-----BEGIN CERTIFICATE-----\n${btoa("leaf certificate bytes")}\n-----END CERTIFICATE-----`;
const PEM_B = `-----BEGIN CERTIFICATE-----\n${btoa("intermediate bytes!")}\n-----END CERTIFICATE-----`;
const CSR = new Uint8Array([0x30, 0x82, 0x01, 0x00, ...new Array<number>(32).fill(7)]);

async function setup(hooks: Hooks = {}, options: { badNonceRetries?: number; maxCertificateBytes?: number } = {}) {
  const ca = fakeCa(hooks);
  const session = must(await openDirectory(`${CA}/dir`, { fetch: ca.fetch, clock: () => new Date("2026-12-06T08:00:00Z"), ...options }));
  const { key } = await generateAccountKey();
  const created = must(await createAccount(session, key, { termsOfServiceAgreed: true }));
  return { ca, session, key, account: { key, url: created.url } };
}

describe("the protocol, against a CA in memory", () => {
  it("takes an order from newAccount to the certificate, one step at a time, every request as RFC 8555 §6 wants it", async () => {
    const { ca, session, key, account } = await setup({ orderRetryAfter: "Sun, 06 Dec 2026 08:00:05 GMT" });
    expect(session.directory).toMatchObject({ newNonce: `${CA}/nonce`, meta: { externalAccountRequired: false, termsOfService: `${CA}/tos` } });
    expect(must(await createAccount(session, key, { termsOfServiceAgreed: true }))).toMatchObject({ url: account.url, created: false });
    expect(must(await findAccount(session, key)).url).toBe(account.url);

    const order = must(await newOrder(session, account, { identifiers: ["shop.customer-one.com"] }));
    expect(order).toMatchObject({ url: `${CA}/order/1`, status: "pending", authorizations: [`${CA}/authz/1`], finalize: `${CA}/order/1/finalize` });
    const authz = must(await getAuthorization(session, account, order.authorizations[0]!));
    expect(authz).toMatchObject({ status: "pending", wildcard: false, identifier: { type: "dns", value: "shop.customer-one.com" } });
    const challenge = must(selectChallenge(authz, "http-01"));
    const answered = must(await respondToChallenge(session, account, challenge.url));
    expect(answered).toMatchObject({ status: "processing", retryAfter: 2 });
    expect(must(await getAuthorization(session, account, authz.url)).status).toBe("valid");
    const ready = must(await getOrder(session, account, order.url));
    expect(ready.status).toBe("ready");
    const processing = must(await finalize(session, account, ready, CSR));
    expect(processing).toMatchObject({ url: order.url, status: "processing" });
    expect(ca.state.csr).toBe(base64url.encode(CSR));
    // An HTTP-date Retry-After, five seconds after the injected clock's now.
    expect(must(await getOrder(session, account, order.url)).retryAfter).toBe(5);
    ca.state.order = "valid";
    const valid = must(await getOrder(session, account, order.url));
    expect(valid).toMatchObject({ status: "valid", certificate: `${CA}/cert/1` });
    expect(valid.retryAfter).toBeUndefined();
    const chain = must(await downloadCertificate(session, account, valid.certificate!));
    expect(chain.certificates.length).toBe(2);
    expect(chain.alternates).toEqual([`${CA}/cert/1/1`]);
    // A second finalize of the same order is the CA's to refuse: one order, one certificate.
    expect(await finalize(session, account, valid, CSR)).toMatchObject({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:orderNotReady", status: 403 });

    const posts = ca.sent.filter((entry) => entry.method === "POST");
    for (const post of posts) {
      expect(post.contentType).toBe("application/jose+json");
      expect(post.header).toMatchObject({ alg: "ES256", url: post.url, nonce: expect.any(String) });
      // newAccount carries the jwk, everything after the account URL as kid, never both (§6.2).
      if (post.url === `${CA}/acct`) {
        expect(post.header).toMatchObject({ jwk: key.publicJwk });
        expect(post.header!.kid).toBeUndefined();
      } else {
        expect(post.header).toMatchObject({ kid: account.url });
        expect(post.header!.jwk).toBeUndefined();
      }
    }
    // POST-as-GET has the empty payload (§6.3); the challenge POST has {}.
    for (const url of [`${CA}/authz/1`, `${CA}/order/1`, `${CA}/cert/1`]) {
      expect(posts.filter((post) => post.url === url).every((post) => post.payload === "")).toBe(true);
    }
    expect(posts.find((post) => post.url === `${CA}/chall/http`)!.payload).toBe(base64url.encode("{}"));
    // One HEAD for the first nonce; every later nonce came from a reply (Replay-Nonce reuse, §6.5).
    expect(ca.sent.filter((entry) => entry.method === "HEAD").length).toBe(1);
  });

  it("keeps a failed challenge's problem for validation_errors", async () => {
    const { session, account } = await setup();
    const order = must(await newOrder(session, account, { identifiers: ["shop.customer-one.com"] }));
    const authz = must(await getAuthorization(session, account, order.authorizations[0]!));
    const failed = must(await respondToChallenge(session, account, must(selectChallenge(authz, "dns-01")).url));
    expect(failed.error).toEqual({ type: "urn:ietf:params:acme:error:dns", detail: "No TXT record found at _acme-challenge.shop.customer-one.com", status: 400 });
    const withError = { ...authz, status: "invalid" as const, challenges: [failed] };
    expect(authorizationProblem(withError)).toEqual(failed.error);
    expect(selectChallenge(authz, "tls-alpn-01")).toEqual({ ok: false, reason: "acme_no_challenge", wanted: "tls-alpn-01", offered: ["http-01", "dns-01"] });
  });

  it("sends a badNonce rejection again once, then leaves a second one to the caller as retryable", async () => {
    const hooks: Hooks = {};
    const ca = fakeCa(hooks);
    const session = must(await openDirectory(`${CA}/dir`, { fetch: ca.fetch }));
    const { key } = await generateAccountKey();
    const posts = () => ca.sent.filter((entry) => entry.method === "POST").length;
    hooks.badNonces = 1;
    const created = must(await createAccount(session, key, { termsOfServiceAgreed: true }));
    expect(posts()).toBe(2);
    hooks.badNonces = 2;
    const refused = await newOrder(session, { key, url: created.url }, { identifiers: ["shop.customer-one.com"] });
    expect(refused).toMatchObject({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:badNonce", status: 400 });
    expect(isRetryable(refused as AcmeRefusal)).toBe(true);
    expect(posts()).toBe(4);
  });

  it("surfaces a rate limit's problem with its Retry-After", async () => {
    const { session, account } = await setup({
      newOrderReply: () =>
        new Response(JSON.stringify({ type: "urn:ietf:params:acme:error:rateLimited", detail: "too many new orders recently" }), {
          status: 429,
          headers: { "content-type": "application/problem+json", "retry-after": "3600", "replay-nonce": "fresh" },
        }),
    });
    const refused = await newOrder(session, account, { identifiers: ["shop.customer-one.com"] });
    expect(refused).toEqual({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:rateLimited", detail: "too many new orders recently", status: 429, retry_after: 3600 });
    expect(isRetryable(refused as AcmeRefusal)).toBe(true);
  });

  it("refuses replies it cannot trust: http URLs, redirects, no problem document, bodies over the bound, malformed objects", async () => {
    const httpDirectory = fakeCa({ directory: { newNonce: "http://ca.test/nonce", newAccount: `${CA}/acct`, newOrder: `${CA}/order` } });
    expect(await openDirectory(`${CA}/dir`, { fetch: httpDirectory.fetch })).toMatchObject({ ok: false, reason: "acme_bad_response", detail: expect.stringContaining("newNonce") });
    expect(await openDirectory("http://ca.test/dir", { fetch: httpDirectory.fetch })).toMatchObject({ ok: false, reason: "acme_bad_input" });
    expect(await openDirectory("https://user:pw@ca.test/dir", { fetch: httpDirectory.fetch })).toMatchObject({ ok: false, reason: "acme_bad_input" });

    const redirect: AcmeFetch = async () => new Response(null, { status: 302, headers: { location: "http://elsewhere.test/dir" } });
    expect(await openDirectory(`${CA}/dir`, { fetch: redirect })).toMatchObject({ ok: false, reason: "acme_bad_response", status: 302 });

    const gateway: AcmeFetch = async () => new Response("<html>bad gateway</html>", { status: 502, headers: { "content-type": "text/html" } });
    const down = await openDirectory(`${CA}/dir`, { fetch: gateway });
    expect(down).toMatchObject({ ok: false, reason: "acme_bad_response", status: 502 });
    expect(isRetryable(down as AcmeRefusal)).toBe(true);

    const huge: AcmeFetch = async () => new Response(JSON.stringify({ padding: "x".repeat(2_000_000) }), { status: 200 });
    expect(await openDirectory(`${CA}/dir`, { fetch: huge })).toMatchObject({ ok: false, reason: "acme_bad_response", detail: expect.stringContaining("over 1048576 bytes") });
    // Without a Content-Length too: the stream is cut at the bound.
    const streamed: AcmeFetch = async () =>
      new Response(new ReadableStream({ pull: (controller) => controller.enqueue(new Uint8Array(64 * 1024)) }), { status: 200 });
    expect(await openDirectory(`${CA}/dir`, { fetch: streamed, maxResponseBytes: 100_000 })).toMatchObject({ ok: false, reason: "acme_bad_response" });

    const notJson: AcmeFetch = async () => new Response("{", { status: 200 });
    expect(await openDirectory(`${CA}/dir`, { fetch: notJson })).toMatchObject({ ok: false, reason: "acme_bad_response" });

    const { session, account } = await setup({ newOrderReply: () => new Response(JSON.stringify({ status: "pending", identifiers: [], authorizations: ["http://ca.test/authz/1"], finalize: `${CA}/f` }), { status: 201, headers: { location: `${CA}/order/1`, "replay-nonce": "x1" } }) });
    expect(await newOrder(session, account, { identifiers: ["shop.customer-one.com"] })).toMatchObject({ ok: false, reason: "acme_bad_response", detail: expect.stringContaining("https") });
    expect(await newOrder(session, account, { identifiers: [] })).toMatchObject({ ok: false, reason: "acme_bad_input" });
    expect(await getOrder(session, account, "http://ca.test/order/1")).toMatchObject({ ok: false, reason: "acme_bad_input" });
    expect(await finalize(session, account, { url: `${CA}/order/1`, finalize: `${CA}/order/1/finalize` }, new Uint8Array([1, 2, 3]))).toMatchObject({ ok: false, reason: "acme_bad_input" });
  });

  it("bounds the certificate chain and refuses one that holds more than certificates", async () => {
    const big = `${PEM_A}\n`.repeat(Math.ceil(300_000 / PEM_A.length));
    const large = await setup({ chain: big });
    large.ca.state.order = "valid";
    expect(await downloadCertificate(large.session, large.account, `${CA}/cert/1`)).toMatchObject({ ok: false, reason: "acme_bad_response", detail: expect.stringContaining("262144") });
    const withKey = await setup({ chain: `${PEM_A}\n-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n` });
    expect(await downloadCertificate(withKey.session, withKey.account, `${CA}/cert/1`)).toMatchObject({ ok: false, reason: "acme_bad_response" });
  });

  it("says the CA is unreachable when fetch fails or no reply comes within the timeout", async () => {
    const failing: AcmeFetch = async () => {
      throw new Error("Network connection lost.");
    };
    expect(await openDirectory(`${CA}/dir`, { fetch: failing })).toEqual({ ok: false, reason: "acme_unreachable", detail: `GET ${CA}/dir: Network connection lost.` });
    const hanging: AcmeFetch = (_url, init) =>
      new Promise((_resolve, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason)));
    const started = Date.now();
    const slow = await openDirectory(`${CA}/dir`, { fetch: hanging, timeoutMs: 100 });
    expect(slow).toEqual({ ok: false, reason: "acme_unreachable", detail: `GET ${CA}/dir: no complete reply within 100 ms` });
    expect(Date.now() - started).toBeLessThan(2_000);
    // A body that stops arriving counts too.
    const stalled: AcmeFetch = async (_url, init) =>
      new Response(new ReadableStream({ start: (controller) => { controller.enqueue(new TextEncoder().encode("{")); init.signal.addEventListener("abort", () => controller.error(init.signal.reason)); } }), { status: 200 });
    expect(await openDirectory(`${CA}/dir`, { fetch: stalled, timeoutMs: 100 })).toMatchObject({ ok: false, reason: "acme_unreachable" });
  });
});
