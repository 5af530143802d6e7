// The ACME client (src/acme) against a real CA: Debian's pebble, with
// pebble-challtestsrv as the DNS the CA resolves through. Every certificate
// here is issued for a P-256 key by pebble, step by step the way the zone's
// Durable Object drives the client (one step per call, retrying a step only
// when isRetryable says so), and its chain is verified against pebble's root
// by node:crypto and by OpenSSL.
import { execFile, execFileSync } from "node:child_process";
import { createPublicKey, randomBytes, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  type AcmeAccountRef,
  type AcmeFetch,
  type AcmeRefusal,
  type AcmeSession,
  authorizationProblem,
  type ChallengeProof,
  challengeProof,
  createAccount,
  downloadCertificate,
  finalize,
  findAccount,
  generateAccountKey,
  getAuthorization,
  getOrder,
  isRetryable,
  newOrder,
  openDirectory,
  respondToChallenge,
  selectChallenge,
} from "../../src/acme/index";
import type { Result } from "../../src/core/result";
import { OPENSSL } from "./checkers";
import { type Pebble, startPebble } from "./pebble";

const run = promisify(execFile);
const EAB_KID = "kid-1";
const EAB_KEY = randomBytes(48).toString("base64url");
const VALIDITY_SECONDS = 3600;

/** The value of an ok Result; a refusal fails the test with the whole refusal in the message. */
function must<T>(result: Result<T, AcmeRefusal>, doing: string): T {
  if (!result.ok) throw new Error(`${doing}: ${JSON.stringify(result)}`);
  return result.value;
}

/**
 * One step as the Durable Object takes it: called again (at most 20 times)
 * only while the refusal is retryable, after its retry_after or 20 ms.
 */
async function step<T>(call: () => Promise<Result<T, AcmeRefusal>>): Promise<Result<T, AcmeRefusal>> {
  for (let attempt = 1; ; attempt++) {
    const result = await call();
    if (result.ok || !isRetryable(result) || attempt === 20) return result;
    await sleep(result.reason === "acme_problem" && result.retry_after ? result.retry_after * 1000 : 20);
  }
}

/** Polls with `get` until `done` holds, honouring retryAfter (else 20 ms), at most 200 times. */
async function poll<T extends { retryAfter?: number }>(get: () => Promise<Result<T, AcmeRefusal>>, done: (value: T) => boolean, doing: string): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = must(await step(get), doing);
    if (done(value)) return value;
    await sleep(value.retryAfter !== undefined ? value.retryAfter * 1000 : 20);
  }
  throw new Error(`${doing}: still not done after 200 polls`);
}

interface Csr {
  der: Uint8Array;
  /** The key's SubjectPublicKeyInfo, DER. */
  spki: Buffer;
}

/** A P-256 key and a CSR for `names` (OpenSSL: no code shared with the client). */
function makeCsr(dir: string, names: string[]): Csr {
  const tag = randomBytes(4).toString("hex");
  const keyFile = join(dir, `${tag}.key`);
  const csrFile = join(dir, `${tag}.csr`);
  execFileSync(OPENSSL, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile,
    "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${names.map((name) => `DNS:${name}`).join(",")}`,
    "-outform", "DER", "-out", csrFile], { stdio: "pipe" });
  const spki = createPublicKey(readFileSync(keyFile)).export({ type: "spki", format: "der" });
  return { der: new Uint8Array(readFileSync(csrFile)), spki };
}

interface Issued {
  chain: string[];
  spki: Buffer;
  /** The type of each challenge answered (valid reused authorizations answer none). */
  answered: string[];
  ms: number;
}

/**
 * Issues a certificate for `names`, step by step: newOrder; per
 * authorization, the challenge of type `method` published by `publish` and
 * answered; the authorizations polled until valid; the order polled until
 * ready, finalized with a fresh P-256 CSR, polled until valid; the chain
 * downloaded.
 */
async function issue(
  session: AcmeSession,
  account: AcmeAccountRef,
  names: string[],
  method: "http-01" | "dns-01",
  publish: (proof: ChallengeProof) => Promise<void>,
  dir: string,
): Promise<Issued> {
  const started = performance.now();
  const order = must(await step(() => newOrder(session, account, { identifiers: names })), "newOrder");
  expect(order.identifiers.map((item) => item.value).sort()).toEqual([...names].sort());
  const answered: string[] = [];
  for (const url of order.authorizations) {
    const authz = must(await step(() => getAuthorization(session, account, url)), "authorization");
    if (authz.status === "valid") continue;
    expect(authz.status).toBe("pending");
    const challenge = must(selectChallenge(authz, method), "selectChallenge");
    const proof = await challengeProof(account.key, authz, challenge);
    if (!proof) throw new Error(`no proof for ${challenge.type}`);
    await publish(proof);
    must(await step(() => respondToChallenge(session, account, challenge.url)), "respondToChallenge");
    answered.push(challenge.type);
  }
  for (const url of order.authorizations) {
    const authz = await poll(() => getAuthorization(session, account, url), (value) => value.status !== "pending", "authorization");
    expect(authz.status, JSON.stringify(authorizationProblem(authz))).toBe("valid");
  }
  const ready = await poll(() => getOrder(session, account, order.url), (value) => value.status !== "pending", "order");
  expect(ready.status).toBe("ready");
  const csr = makeCsr(dir, names);
  const finalized = must(await step(() => finalize(session, account, ready, csr.der)), "finalize");
  expect(["processing", "valid"]).toContain(finalized.status);
  const valid = await poll(() => getOrder(session, account, order.url), (value) => value.status !== "processing", "order");
  expect(valid.status).toBe("valid");
  const chain = must(await step(() => downloadCertificate(session, account, valid.certificate!)), "downloadCertificate");
  return { chain: [...chain.certificates], spki: csr.spki, answered, ms: Math.round(performance.now() - started) };
}

/** The leaf is for `names` and the CSR's key, and its chain verifies up to pebble's root (node:crypto and OpenSSL). */
async function verifyIssued(pebble: Pebble, issued: Issued, names: string[], dir: string): Promise<X509Certificate> {
  expect(issued.chain.length).toBe(2);
  const [leaf, intermediate] = issued.chain.map((pem) => new X509Certificate(pem)) as [X509Certificate, X509Certificate];
  const root = new X509Certificate(await pebble.rootPem());
  expect(intermediate.raw.equals(new X509Certificate(await pebble.intermediatePem()).raw)).toBe(true);
  expect(leaf.verify(intermediate.publicKey)).toBe(true);
  expect(intermediate.verify(root.publicKey)).toBe(true);
  expect(leaf.checkIssued(intermediate) && intermediate.checkIssued(root)).toBe(true);
  expect(Buffer.from(leaf.publicKey.export({ type: "spki", format: "der" })).equals(issued.spki)).toBe(true);
  const sans = (leaf.subjectAltName ?? "").split(", ").map((item) => item.replace(/^DNS:/, ""));
  expect(sans.sort()).toEqual([...names].sort());
  const tag = randomBytes(4).toString("hex");
  writeFileSync(join(dir, `${tag}-root.pem`), root.toString());
  writeFileSync(join(dir, `${tag}-chain.pem`), issued.chain[1]!);
  writeFileSync(join(dir, `${tag}-leaf.pem`), issued.chain[0]!);
  const { stdout } = await run(OPENSSL, ["verify", "-CAfile", `${tag}-root.pem`, "-untrusted", `${tag}-chain.pem`, `${tag}-leaf.pem`], { cwd: dir });
  expect(stdout.trim()).toBe(`${tag}-leaf.pem: OK`);
  return leaf;
}

/** A fresh account (new ES256 key) on the session's CA. */
async function newAccount(session: AcmeSession): Promise<AcmeAccountRef> {
  const { key } = await generateAccountKey();
  const account = must(await step(() => createAccount(session, key, { termsOfServiceAgreed: true, contact: ["mailto:ops@customer-one.com"] })), "newAccount");
  return { key, url: account.url };
}

const unique = (label: string): string => `${label}-${randomBytes(4).toString("hex")}.customer-one.com`;

describe("ACME client against pebble", () => {
  let pebble: Pebble;
  let session: AcmeSession;
  let account: AcmeAccountRef;
  let http01: Server;
  let dir: string;
  const tokens = new Map<string, string>();
  const validatorRequests: string[] = [];

  beforeAll(async () => {
    const started = performance.now();
    pebble = await startPebble({ root: inject("e2eRoot"), certificateValiditySeconds: VALIDITY_SECONDS });
    dir = mkdtempSync(join(pebble.dir, "work-"));
    // The http-01 responder, where pebble's VA connects (the name resolves to 127.0.0.1 through challtestsrv).
    http01 = createServer((request, response) => {
      validatorRequests.push(`${request.headers.host ?? ""}${request.url ?? ""}`);
      const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(request.url ?? "")?.[1];
      const body = token === undefined ? undefined : tokens.get(token);
      response.writeHead(body === undefined ? 404 : 200, { "content-type": "text/plain" }).end(body ?? "not found");
    });
    await new Promise<void>((done) => http01.listen(pebble.httpPort, "127.0.0.1", done));
    session = must(await openDirectory(pebble.directoryUrl, { fetch: pebble.fetch }), "openDirectory");
    account = await newAccount(session);
    console.log(`pebble up and an account made in ${Math.round(performance.now() - started)} ms`);
  });

  afterAll(async () => {
    await new Promise<void>((done) => (http01 ? http01.close(() => done()) : done()));
    await pebble?.stop();
  });

  it("reads the directory; refuses a directory that is not https, and says when the CA cannot be reached", async () => {
    expect(session.directory.newNonce).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    expect(session.directory.meta.externalAccountRequired).toBe(false);
    expect(session.directory.meta.termsOfService).toBeTypeOf("string");
    const plain = await openDirectory(pebble.directoryUrl.replace("https:", "http:"), { fetch: pebble.fetch });
    expect(plain).toMatchObject({ ok: false, reason: "acme_bad_input" });
    // Nothing listens on the tls-alpn-01 port (pebble only dials it).
    const closed = await openDirectory(`https://127.0.0.1:${pebble.tlsPort}/dir`, { fetch: pebble.fetch, timeoutMs: 2_000 });
    expect(closed).toMatchObject({ ok: false, reason: "acme_unreachable" });
    // The listener CA is what makes the CA reachable: Node's own trust store refuses it.
    const untrusted = await openDirectory(pebble.directoryUrl, { timeoutMs: 5_000 });
    expect(untrusted).toMatchObject({ ok: false, reason: "acme_unreachable" });
  });

  it("makes an account once per key: again gives the same account, onlyReturnExisting finds it, and an unknown key has none", async () => {
    const { key } = await generateAccountKey();
    const first = must(await createAccount(session, key, { termsOfServiceAgreed: true }), "newAccount");
    expect(first).toMatchObject({ status: "valid", created: true });
    const again = must(await createAccount(session, key, { termsOfServiceAgreed: true }), "newAccount again");
    expect(again).toMatchObject({ url: first.url, created: false });
    const found = must(await findAccount(session, key), "findAccount");
    expect(found.url).toBe(first.url);
    const stranger = await findAccount(session, (await generateAccountKey()).key);
    expect(stranger).toMatchObject({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:accountDoesNotExist", status: 400 });
    expect(isRetryable(stranger as AcmeRefusal)).toBe(false);
  });

  it("issues a certificate through http-01, served by the test on pebble's http port", async () => {
    const name = unique("http");
    const issued = await issue(session, account, [name], "http-01", async (proof) => {
      expect(proof.type).toBe("http-01");
      if (proof.type !== "http-01") return;
      expect(proof.url).toBe(`http://${name}${proof.path}`);
      tokens.set(proof.token, proof.body);
    }, dir);
    expect(issued.answered).toEqual(["http-01"]);
    expect(validatorRequests.some((request) => request.startsWith(`${name}:${pebble.httpPort}/.well-known/acme-challenge/`))).toBe(true);
    const leaf = await verifyIssued(pebble, issued, [name], dir);
    expect(leaf.checkHost(name)).toBe(name);
    // certificateValidityPeriod reaches the certificate: notAfter = notBefore + period - 1 s (pebble.md §3).
    expect((Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000).toBe(VALIDITY_SECONDS - 1);
    console.log(`http-01: issued in ${issued.ms} ms`);
  });

  it("issues a certificate through dns-01, the TXT record published in challtestsrv", async () => {
    const name = unique("dns");
    const issued = await issue(session, account, [name], "dns-01", async (proof) => {
      expect(proof).toMatchObject({ type: "dns-01", name: `_acme-challenge.${name}` });
      if (proof.type === "dns-01") await pebble.setTxt(proof.name, proof.value);
    }, dir);
    expect(issued.answered).toEqual(["dns-01"]);
    await verifyIssued(pebble, issued, [name], dir);
    await pebble.clearTxt(`_acme-challenge.${name}`);
    console.log(`dns-01: issued in ${issued.ms} ms`);
  });

  it("issues a wildcard with its base name through dns-01; a wildcard offers no http-01", async () => {
    const base = unique("wild");
    const names = [`*.${base}`, base];
    const records = new Set<string>();
    const issued = await issue(session, account, names, "dns-01", async (proof) => {
      if (proof.type !== "dns-01") throw new Error("expected dns-01");
      // Both authorizations are for the base name: both values at the one record (RFC 8555 §8.4 allows several).
      expect(proof.name).toBe(`_acme-challenge.${base}`);
      records.add(proof.name);
      await pebble.setTxt(proof.name, proof.value);
    }, dir);
    expect(issued.answered).toEqual(["dns-01", "dns-01"]);
    expect([...records]).toEqual([`_acme-challenge.${base}`]);
    const leaf = await verifyIssued(pebble, issued, names, dir);
    // node:crypto answers with the SAN that matched.
    expect(leaf.checkHost(`anything.${base}`)).toBe(`*.${base}`);
    await pebble.clearTxt(`_acme-challenge.${base}`);

    const order = must(await newOrder(session, account, { identifiers: [`*.${unique("wild2")}`] }), "newOrder");
    const authz = must(await getAuthorization(session, account, order.authorizations[0]!), "authorization");
    expect(authz.wildcard).toBe(true);
    expect(authz.identifier.value).not.toMatch(/^\*/);
    expect(selectChallenge(authz, "http-01")).toEqual({ ok: false, reason: "acme_no_challenge", wanted: "http-01", offered: ["dns-01"] });
    console.log(`wildcard dns-01: issued in ${issued.ms} ms`);
  });

  it("surfaces the CA's problem when a challenge fails, and the order becomes invalid", async () => {
    const name = unique("fail");
    const order = must(await newOrder(session, account, { identifiers: [name] }), "newOrder");
    const authz = must(await getAuthorization(session, account, order.authorizations[0]!), "authorization");
    const challenge = must(selectChallenge(authz, "dns-01"), "selectChallenge");
    // No TXT record is published: pebble's VA finds none.
    must(await respondToChallenge(session, account, challenge.url), "respondToChallenge");
    const failed = await poll(() => getAuthorization(session, account, authz.url), (value) => value.status !== "pending", "authorization");
    expect(failed.status).toBe("invalid");
    const problem = authorizationProblem(failed);
    expect(problem?.type).toMatch(/^urn:ietf:params:acme:error:[a-zA-Z]+$/);
    // pebble 2.4 says "No TXT records found for DNS challenge"; the client keeps it word for word.
    expect(problem?.detail).toMatch(/TXT/);
    expect(failed.challenges.find((item) => item.type === "dns-01")).toMatchObject({ status: "invalid", error: problem });
    console.log(`failed challenge: ${problem?.type}: ${problem?.detail}`);
    const invalid = must(await getOrder(session, account, order.url), "order");
    expect(invalid.status).toBe("invalid");
    // Finalizing an invalid order is the CA's to refuse, in its words.
    const refused = await finalize(session, account, invalid, makeCsr(dir, [name]).der);
    expect(refused).toMatchObject({ ok: false, reason: "acme_problem", status: 403 });
    if (!refused.ok && refused.reason === "acme_problem") expect(refused.type).toMatch(/^urn:ietf:params:acme:error:/);
  });

  it("retries a request the CA rejects with badNonce once, with the nonce of the rejection", async () => {
    // A fetch that spoils the next Replay-Nonce it sees: the following POST carries a nonce pebble never issued.
    const seen: Array<{ method: string; url: string; status: number; nonce: string | null; badNonce: boolean }> = [];
    let spoil = false;
    const spoiling: AcmeFetch = async (url, init) => {
      const response = await pebble.fetch(url, init);
      const body = init.method === "HEAD" ? "" : await response.clone().text();
      seen.push({ method: init.method, url, status: response.status, nonce: response.headers.get("replay-nonce"), badNonce: body.includes("badNonce") });
      if (!spoil) return response;
      spoil = false;
      const headers = new Headers(response.headers);
      headers.set("replay-nonce", "c3BvaWxlZC1ub25jZQ");
      return new Response(init.method === "HEAD" ? null : body, { status: response.status, headers });
    };
    const spoiled = must(await openDirectory(pebble.directoryUrl, { fetch: spoiling }), "openDirectory");
    const own = await newAccount(spoiled);
    seen.length = 0;
    spoil = true;
    // newOrder spends a good nonce and gets the spoiled one back; getOrder spends that, is
    // rejected with badNonce, and is sent again with the nonce of the rejection.
    const order = must(await newOrder(spoiled, own, { identifiers: [unique("nonce")] }), "newOrder");
    must(await getOrder(spoiled, own, order.url), "getOrder");
    const rejected = seen.filter((entry) => entry.badNonce);
    expect(rejected.length).toBe(1);
    const index = seen.indexOf(rejected[0]!);
    expect(seen[index]).toMatchObject({ method: "POST", url: order.url, status: 400 });
    expect(seen[index + 1]).toMatchObject({ method: "POST", url: order.url, status: 200, badNonce: false });
    expect(seen.length).toBe(index + 2);

    // With no retry allowed, the rejection is the caller's, and retryable.
    const noRetry = must(await openDirectory(pebble.directoryUrl, { fetch: spoiling, badNonceRetries: 0 }), "openDirectory");
    const other = await newAccount(noRetry);
    spoil = true;
    must(await newOrder(noRetry, other, { identifiers: [unique("nonce")] }), "newOrder");
    const refused = await newOrder(noRetry, other, { identifiers: [unique("nonce")] });
    expect(refused).toMatchObject({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:badNonce", status: 400 });
    expect(isRetryable(refused as AcmeRefusal)).toBe(true);
  });
});

describe("ACME client against pebble with External Account Binding required", () => {
  let pebble: Pebble;

  beforeAll(async () => {
    pebble = await startPebble({ root: inject("e2eRoot"), eab: { [EAB_KID]: EAB_KEY } });
  });
  afterAll(async () => pebble?.stop());

  it("fails without credentials or with a wrong key, in the CA's words, and binds with the right ones", async () => {
    const session = must(await openDirectory(pebble.directoryUrl, { fetch: pebble.fetch }), "openDirectory");
    expect(session.directory.meta.externalAccountRequired).toBe(true);
    const { key } = await generateAccountKey();

    const without = await createAccount(session, key, { termsOfServiceAgreed: true });
    expect(without).toMatchObject({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:externalAccountRequired", status: 403 });
    if (!without.ok && without.reason === "acme_problem") expect(without.detail).toContain("externalAccountBinding");
    expect(isRetryable(without as AcmeRefusal)).toBe(false);

    const wrongKey = randomBytes(48).toString("base64url");
    const wrong = await createAccount(session, key, { termsOfServiceAgreed: true, externalAccountBinding: { kid: EAB_KID, hmacKey: wrongKey } });
    expect(wrong).toMatchObject({ ok: false, reason: "acme_problem", type: "urn:ietf:params:acme:error:unauthorized", status: 403 });
    // The refusal never quotes the MAC key.
    expect(JSON.stringify(wrong)).not.toContain(wrongKey);

    const malformed = await createAccount(session, key, { termsOfServiceAgreed: true, externalAccountBinding: { kid: EAB_KID, hmacKey: "not base64url!" } });
    expect(malformed).toMatchObject({ ok: false, reason: "acme_bad_input" });

    const bound = must(
      await createAccount(session, key, { termsOfServiceAgreed: true, externalAccountBinding: { kid: EAB_KID, hmacKey: EAB_KEY } }),
      "newAccount with EAB",
    );
    expect(bound).toMatchObject({ status: "valid", created: true });
    const found = must(await findAccount(session, key), "findAccount");
    expect(found.url).toBe(bound.url);
  });
});

describe("ACME client against pebble rejecting half of all good nonces", () => {
  let pebble: Pebble;

  beforeAll(async () => {
    pebble = await startPebble({ root: inject("e2eRoot"), nonceRejectPercent: 50 });
  });
  afterAll(async () => pebble?.stop());

  it("still issues: the client retries each badNonce once, and a step that meets two is retried by its caller", async () => {
    let badNonces = 0;
    let posts = 0;
    const counting: AcmeFetch = async (url, init) => {
      const response = await pebble.fetch(url, init);
      if (init.method === "POST") {
        posts++;
        if (response.status === 400 && (await response.clone().text()).includes("urn:ietf:params:acme:error:badNonce")) badNonces++;
      }
      return response;
    };
    const session = must(await step(() => openDirectory(pebble.directoryUrl, { fetch: counting })), "openDirectory");
    const account = await newAccount(session);
    const dir = mkdtempSync(join(pebble.dir, "work-"));
    const name = unique("busy");
    const issued = await issue(session, account, [name], "dns-01", async (proof) => {
      if (proof.type === "dns-01") await pebble.setTxt(proof.name, proof.value);
    }, dir);
    await verifyIssued(pebble, issued, [name], dir);
    // At 50 %, a dozen POSTs meet several rejections; each was answered by a retry.
    expect(badNonces).toBeGreaterThan(0);
    expect(posts).toBeGreaterThan(badNonces);
    console.log(`NONCEREJECT=50: issued in ${issued.ms} ms; ${posts} POSTs, ${badNonces} rejected with badNonce`);
    rmSync(dir, { recursive: true, force: true });
  });
});
