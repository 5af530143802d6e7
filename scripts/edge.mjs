#!/usr/bin/env node
// The edge agent: runs on a TLS edge host (nginx, HAProxy, Envoy, Caddy)
// with plain Node 20 or later, and keeps a directory of certificates and
// private keys in step with what the service delivers to this edge.
//
//   edge init --dir DIR [--curve X25519|P-256] [--force]
//   edge sync --dir DIR --url BASE (--token TOKEN | --token-file PATH) --zone ZONE --out OUT
//             [--service-key JWK|PATH] [--reload "COMMAND"] [--watch SECONDS]
//
// The private keys arrive sealed to this edge's own key (a compact JWE,
// ECDH-ES + A256GCM) and are opened here; README.md, "Edges and key
// delivery", describes the protocol and every check made below.
import { spawn } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { isIP } from "node:net";
import { calculateJwkThumbprint, compactDecrypt, compactVerify, importJWK } from "jose";

const KEY_FILE = "edge-key.pem";
const PUBLIC_FILE = "edge-key.pub.jwk";
// The service's signing key, pinned on the first sync that names it (--service-key).
const SERVICE_KEY_FILE = "service-key.jwk";
// The JWS type of the service's signed replies (src/edges/service-key.ts).
const DELIVERY_JWS_TYPE = "custom-csr-delivery+jws";
// The most a reply may be: a bundle is a certificate chain and a sealed key (kilobytes); a listing, a few hundred bytes per certificate.
const MAX_REPLY_BYTES = 16 * 1024 * 1024;
// How far ahead of this host's clock a signed reply's iat may be.
const CLOCK_SKEW_SECONDS = 300;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ZONE_ID = /^[A-Za-z0-9_-]{1,32}$/;
// Delivery answers that mean "this certificate is no longer for this edge":
// its policy now excludes the edge (1475), it was deleted (1449), it expired (1476).
const GONE = new Set([1449, 1475, 1476]);

const USAGE = `usage:
  edge init --dir DIR [--curve X25519|P-256] [--force]
  edge sync --dir DIR --url BASE (--token TOKEN | --token-file PATH) --zone ZONE --out OUT [--service-key JWK|PATH]
            [--reload "COMMAND"] [--watch SECONDS]
  --service-key   the service's signing key (the service_key of GET /admin/v1/edges/{edge_id}), as JSON or a file;
                  pinned in DIR on first use, required until then; a different key is refused afterwards`;

/** A failure to report on one line and exit non-zero for; never carries key material. */
class EdgeError extends Error {}

function usage(message) {
  process.stderr.write(`edge: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/**
 * Parses `--name value` pairs and `--flag`s.
 * @param {string[]} argv
 * @param {Record<string, "value" | "flag">} spec
 * @returns {Record<string, string | boolean>}
 */
function parseArgs(argv, spec) {
  /** @type {Record<string, string | boolean>} */
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.startsWith("--") ? arg.slice(2) : "";
    if (!(name in spec)) usage(`unknown argument ${arg}`);
    if (name in out) usage(`${arg} given twice`);
    if (spec[name] === "flag") {
      out[name] = true;
    } else {
      const value = argv[++i];
      if (value === undefined || value.startsWith("--")) usage(`${arg} needs a value`);
      out[name] = value;
    }
  }
  return out;
}

// --- files --------------------------------------------------------------------

/**
 * Writes `data` to `path` atomically: a temporary file in the same
 * directory, written with `mode`, flushed, then renamed over the target, so
 * a reader (a reloading TLS server) sees the old file or the new one, never
 * part of either.
 * @param {string} path
 * @param {string} data
 * @param {number} mode
 */
function writeAtomic(path, data, mode) {
  const staged = stage(path, data, mode);
  renameSync(staged.tmp, staged.path);
}

/**
 * Writes data to a new temporary file beside path (fsynced, with exactly
 * mode) and answers it, to be renamed over path; a failed write leaves no
 * temporary file behind.
 * @param {string} path @param {string} data @param {number} mode
 */
function stage(path, data, mode) {
  const tmp = `${path}.tmp-${randomBytes(6).toString("hex")}`;
  const fd = openSync(tmp, "wx", mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
    // The umask can only remove bits; chmod makes the mode exactly what was asked.
    chmodSync(tmp, mode);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  return { tmp, path };
}

/** @param {string} path */
function sha256File(path) {
  try {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  } catch {
    return null;
  }
}

const sha256 = (/** @type {string} */ text) => createHash("sha256").update(text).digest("hex");

/**
 * Text from the service as this agent prints it: control characters and
 * anything outside printable ASCII escaped, so nothing it prints can move a
 * terminal's cursor or forge a line of its output.
 * @param {unknown} value
 */
const printable = (value) => String(value).replace(/[^\x20-\x7e]|\\/g, (c) => (c === "\\" ? "\\\\" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));

// --- init ---------------------------------------------------------------------

/**
 * Generates the edge's key-agreement key pair into DIR: the private key as
 * PKCS#8 PEM, mode 0600, never printed; the public JWK beside it and as the
 * last line of stdout, ready for PUT /admin/v1/edges/{edge_id}.
 * @param {string[]} argv
 */
async function init(argv) {
  const args = parseArgs(argv, { dir: "value", curve: "value", force: "flag" });
  if (typeof args.dir !== "string") usage("init needs --dir DIR");
  const curve = args.curve ?? "X25519";
  if (curve !== "X25519" && curve !== "P-256") usage("--curve is X25519 (default) or P-256");
  const dir = resolve(args.dir);
  const keyPath = join(dir, KEY_FILE);
  if (existsSync(keyPath) && !args.force) {
    throw new EdgeError(`${keyPath} exists: this edge already has a key (--force replaces it, and the edge must then be registered again)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = curve === "X25519" ? generateKeyPairSync("x25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = pair.publicKey.export({ format: "jwk" });
  writeAtomic(keyPath, /** @type {string} */ (pair.privateKey.export({ format: "pem", type: "pkcs8" })), 0o600);
  const line = JSON.stringify(jwk);
  writeAtomic(join(dir, PUBLIC_FILE), `${line}\n`, 0o644);
  process.stderr.write(
    `edge: new ${curve} key pair: private key ${keyPath} (mode 0600), public key ${join(dir, PUBLIC_FILE)}\n` +
      `edge: register it: PUT /admin/v1/edges/{edge_id} with {"public_key": <the JWK below>, "labels": {"country": "..", "region": ".."}}\n` +
      `edge: thumbprint ${await calculateJwkThumbprint(jwk, "sha256")}\n`,
  );
  process.stdout.write(`${line}\n`);
}

// --- sync ---------------------------------------------------------------------

/**
 * This edge's private key and the RFC 7638 thumbprint of its public half
 * (the `kid` every bundle sealed to it carries).
 * @param {string} dir
 */
async function loadEdgeKey(dir) {
  const path = join(resolve(dir), KEY_FILE);
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new EdgeError(`no edge key at ${path}: run "edge init --dir ${dir}" first`);
  }
  // As ssh does: a private key others can read is not used.
  if ((stat.mode & 0o077) !== 0) throw new EdgeError(`${path} is readable by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`);
  const privateKey = createPrivateKey(readFileSync(path));
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  return { privateKey, thumbprint: await calculateJwkThumbprint(jwk, "sha256") };
}

/**
 * The edge id the token names (its `edge_id` claim). The token is not
 * verified here (the service does that); this only tells which edge we are,
 * to check that each bundle was sealed for us.
 * @param {string} token
 */
function tokenEdge(token) {
  try {
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    if (typeof claims.edge_id === "string" && claims.edge_id !== "") return claims.edge_id;
  } catch {
    // fall through
  }
  throw new EdgeError("the token names no edge (no edge_id claim): mint one with npm run --silent token -- --edge EDGE_ID --zone ZONE");
}

/** @param {string} url */
function apiBase(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new EdgeError(`--url ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new EdgeError(`--url must be https:// (or http:// to this host), not ${parsed.protocol}`);
  // A token sent in the clear is a token anyone on the path can use: http:// only to this host.
  if (parsed.protocol === "http:" && !loopback(parsed.hostname)) {
    throw new EdgeError(`--url ${parsed.origin} is plain http:// to another host: the token would cross the network in the clear; use https://`);
  }
  const base = parsed.href.replace(/\/+$/, "");
  return /\/(?:client|api)\/v4$/.test(base) ? base : `${base}/client/v4`;
}

/** Whether a URL's host is this machine: localhost, 127.0.0.0/8 or ::1. @param {string} hostname */
function loopback(hostname) {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/**
 * One GET against the API: the envelope's result, or an EdgeError carrying
 * the first error's code and message.
 * @param {string} url
 * @param {string} token
 * @returns {Promise<{ok: true, result: unknown, signed: string | null} | {ok: false, status: number, code: number | null, message: string}>}
 */
async function getJson(url, token) {
  let response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new EdgeError(`cannot reach ${new URL(url).origin}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`);
  }
  const text = await boundedText(response, url);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new EdgeError(`${response.status} from ${url}: not a JSON envelope`);
  }
  if (response.ok && body?.success === true) return { ok: true, result: body.result, signed: typeof body.signed === "string" ? body.signed : null };
  const first = Array.isArray(body?.errors) ? body.errors[0] : undefined;
  return { ok: false, status: response.status, code: typeof first?.code === "number" ? first.code : null, message: printable(String(first?.message ?? "no message").slice(0, 500)) };
}

/**
 * A reply's body as text, refused past MAX_REPLY_BYTES without reading the rest.
 * @param {Response} response @param {string} url
 */
async function boundedText(response, url) {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > MAX_REPLY_BYTES) throw new EdgeError(`the reply from ${new URL(url).origin} is larger than ${MAX_REPLY_BYTES} bytes: refused`);
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_REPLY_BYTES) {
      await reader.cancel();
      throw new EdgeError(`the reply from ${new URL(url).origin} is larger than ${MAX_REPLY_BYTES} bytes: refused`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The service key this edge trusts: the pinned one (DIR/service-key.jwk), or
 * the one given (--service-key), pinned now when none is. A given key other
 * than the pinned one is refused: pinning is what makes a server that is not
 * this service unable to hand the edge keys of its own.
 * @param {string} dir @param {string | undefined} given JSON or a file path
 */
async function serviceKey(dir, given) {
  const pinPath = join(resolve(dir), SERVICE_KEY_FILE);
  const pinned = existsSync(pinPath) ? readFileSync(pinPath, "utf8").trim() : null;
  let offered = null;
  if (given !== undefined) {
    const text = given.trim().startsWith("{") ? given : (() => {
      try {
        return readFileSync(given, "utf8");
      } catch {
        throw new EdgeError(`--service-key ${JSON.stringify(given)} is neither a JWK nor a readable file`);
      }
    })();
    try {
      const jwk = JSON.parse(text);
      if (jwk?.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || jwk.d !== undefined) throw new Error("not an Ed25519 public JWK");
      offered = JSON.stringify({ kty: "OKP", crv: "Ed25519", x: jwk.x });
    } catch {
      throw new EdgeError("--service-key is not the service's Ed25519 public JWK (service_key of GET /admin/v1/edges/{edge_id})");
    }
  }
  if (pinned === null && offered === null) {
    throw new EdgeError(
      `no service key is pinned in ${resolve(dir)}: pass --service-key with the service_key of GET /admin/v1/edges/{edge_id} ` +
        "(the agent refuses replies the service did not sign; README, upgrading edges)",
    );
  }
  if (pinned !== null && offered !== null && pinned !== offered) {
    throw new EdgeError(`--service-key is not the key pinned in ${pinPath}: refused (remove that file only if the service's key really changed)`);
  }
  if (pinned === null) writeAtomic(pinPath, `${offered}\n`, 0o644);
  const jwk = JSON.parse(/** @type {string} */ (pinned ?? offered));
  return { key: await importJWK(jwk, "EdDSA"), kid: await calculateJwkThumbprint(jwk, "sha256") };
}

/**
 * The signed payload of a reply, after checking its JWS against the pinned
 * service key, its type, and that it names this zone and this edge. Only
 * the payload is used, never the unsigned copy beside it.
 * @param {{ok: true, signed: string | null}} reply
 * @param {"list" | "bundle"} what
 * @param {{zone: string, edge: string, service: {key: CryptoKey | Uint8Array, kid: string}}} expected
 */
async function signedResult(reply, what, expected) {
  if (reply.signed === null) throw new EdgeError(`the ${what} is not signed: not a reply of the service this edge pinned (or a service too old to sign)`);
  let verified;
  try {
    verified = await compactVerify(reply.signed, expected.service.key, { algorithms: ["EdDSA"] });
  } catch {
    throw new EdgeError(`the ${what}'s signature does not verify with the pinned service key: refused, nothing written`);
  }
  if (verified.protectedHeader.typ !== DELIVERY_JWS_TYPE) throw new EdgeError(`the ${what}'s signature is of another type: refused`);
  let payload;
  try {
    payload = JSON.parse(Buffer.from(verified.payload).toString("utf8"));
  } catch {
    throw new EdgeError(`the ${what}'s signed payload is not JSON`);
  }
  if (payload?.typ !== `custom-csr-delivery/${what}` || payload.zone_id !== expected.zone || payload.edge_id !== expected.edge) {
    throw new EdgeError(`the signed ${what} is for another zone, edge or purpose: refused`);
  }
  if (typeof payload.iat !== "number" || payload.iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) throw new EdgeError(`the signed ${what} has no usable iat`);
  return { result: payload.result, iat: payload.iat };
}

/**
 * Opens one bundle after checking everything it claims: the JWE's protected
 * header (authenticated by AES-GCM) names this zone, this certificate, this
 * edge, this edge's key and the bundle's modified_on; the plaintext is a
 * PKCS#8 key whose public half is the leaf certificate's.
 * @param {Record<string, unknown>} bundle the `result` of a delivery reply
 * @param {{zone: string, id: string, edge: string, thumbprint: string, privateKey: import("node:crypto").KeyObject}} expected
 */
async function openBundle(bundle, expected) {
  const where = `certificate ${expected.id}`;
  if (bundle?.id !== expected.id || bundle.zone_id !== expected.zone || bundle.edge_id !== expected.edge) {
    throw new EdgeError(`${where}: the bundle is for another certificate, zone or edge`);
  }
  if (typeof bundle.certificate !== "string" || typeof bundle.sealed_key !== "string" || typeof bundle.modified_on !== "string") {
    throw new EdgeError(`${where}: the bundle is incomplete`);
  }
  let opened;
  try {
    opened = await compactDecrypt(bundle.sealed_key, expected.privateKey, { keyManagementAlgorithms: ["ECDH-ES"], contentEncryptionAlgorithms: ["A256GCM"] });
  } catch {
    throw new EdgeError(`${where}: the sealed key does not open with this edge's key (sealed to another edge, or altered)`);
  }
  const h = opened.protectedHeader;
  const context = { cty: "pkcs8", kid: expected.thumbprint, zone_id: expected.zone, certificate_id: expected.id, edge_id: expected.edge, modified_on: bundle.modified_on };
  for (const [name, value] of Object.entries(context)) {
    if (h[name] !== value) throw new EdgeError(`${where}: the sealed key's header has ${name} ${JSON.stringify(h[name])}, expected ${JSON.stringify(value)}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(opened.plaintext), format: "der", type: "pkcs8" });
  } catch {
    throw new EdgeError(`${where}: the sealed key is not a PKCS#8 private key`);
  }
  const blocks = bundle.certificate.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  let leaf;
  try {
    leaf = new X509Certificate(blocks[0] ?? "");
    for (const block of blocks.slice(1)) new X509Certificate(block);
  } catch {
    throw new EdgeError(`${where}: the certificate chain does not parse`);
  }
  const spki = (/** @type {import("node:crypto").KeyObject} */ key) => key.export({ format: "der", type: "spki" });
  if (!leaf.checkPrivateKey(privateKey) || !spki(createPublicKey(privateKey)).equals(spki(leaf.publicKey))) {
    throw new EdgeError(`${where}: the delivered key is not the certificate's`);
  }
  return {
    crt: bundle.certificate.endsWith("\n") ? bundle.certificate : `${bundle.certificate}\n`,
    key: /** @type {string} */ (privateKey.export({ format: "pem", type: "pkcs8" })),
    hosts: Array.isArray(bundle.hosts) ? bundle.hosts : [],
    expires_on: String(bundle.expires_on),
    modified_on: bundle.modified_on,
  };
}

/**
 * Runs the reload command through the shell, once.
 * @param {string} command
 */
function runReload(command) {
  return new Promise((done, fail) => {
    const child = spawn("/bin/sh", ["-c", command], { stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", (error) => fail(new EdgeError(`reload command could not start: ${error.message}`)));
    child.once("exit", (code, signal) => {
      if (code === 0) done(undefined);
      else fail(new EdgeError(`reload command failed (${signal ? `signal ${signal}` : `exit ${code}`}): the new files are in place`));
    });
  });
}

/** Whether a process with this pid runs (EPERM: it does, as another user). */
function running(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return /** @type {NodeJS.ErrnoException} */ (error).code === "EPERM";
  }
}

/**
 * Takes the per-zone lock in OUT, so two syncs of the same zone (a cron run
 * and a watcher) never interleave their writes. The lock file appears with
 * its pid already in it (a hard link to a written file), so no one reads it
 * empty; a lock whose process is gone is taken over, after checking it
 * still names that process.
 * @param {string} path
 */
function lock(path) {
  const mine = `${path}.${process.pid}-${randomBytes(6).toString("hex")}`;
  writeFileSync(mine, String(process.pid), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, path);
        return () => rmSync(path, { force: true });
      } catch (error) {
        if (/** @type {NodeJS.ErrnoException} */ (error).code !== "EEXIST") throw error;
      }
      let held;
      try {
        held = readFileSync(path, "utf8");
      } catch {
        continue; // released meanwhile
      }
      const pid = Number(held);
      if (Number.isInteger(pid) && pid > 0 && running(pid)) throw new EdgeError(`another sync of this zone is running (pid ${pid}, lock ${path})`);
      // Stale: removed only if it still names the dead process.
      try {
        if (readFileSync(path, "utf8") === held) rmSync(path, { force: true });
      } catch {
        // released meanwhile
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw new EdgeError(`cannot take the lock ${path}`);
}

/**
 * One sync of a zone: list what this edge may receive, fetch and verify
 * every bundle that changed, and only then write files (atomically, only
 * those whose content changed), remove the files of certificates no longer
 * listed, and run the reload command once if anything changed. Any failure
 * before the writes leaves every file as it was.
 * Every reply acted on is signed by the pinned service key; a listing older
 * than the last one accepted, or a bundle older than the files it would
 * replace, is refused (a replay).
 * @param {{dir: string, base: string, token: string, zone: string, out: string, reload: string | null, serviceKey: string | undefined}} opts
 */
async function syncOnce(opts) {
  const started = performance.now();
  const { privateKey, thumbprint } = await loadEdgeKey(opts.dir);
  const edge = tokenEdge(opts.token);
  const service = await serviceKey(opts.dir, opts.serviceKey);
  mkdirSync(opts.out, { recursive: true, mode: 0o700 });
  const statePath = join(opts.out, `.edge-sync-${opts.zone}.json`);
  const release = lock(join(opts.out, `.edge-sync-${opts.zone}.lock`));
  try {
    /** @type {{certificates: Record<string, {modified_on: string, crt: string, key: string}>, removed?: Record<string, string>, listed_iat?: number, reload_pending?: boolean}} */
    let state = { certificates: {} };
    if (existsSync(statePath)) {
      try {
        state = JSON.parse(readFileSync(statePath, "utf8"));
      } catch {
        throw new EdgeError(`${statePath} is not JSON: remove it to start over`);
      }
    }
    const deliveryBase = `${opts.base}/zones/${encodeURIComponent(opts.zone)}/key_delivery/certificates`;
    const reply = await getJson(deliveryBase, opts.token);
    if (!reply.ok) throw new EdgeError(`listing failed: ${reply.status} ${reply.code ?? ""} ${reply.message}`.replace(/\s+/g, " "));
    const listed = await signedResult(reply, "list", { zone: opts.zone, edge, service });
    if (!Array.isArray(listed.result)) throw new EdgeError("listing failed: the result is not a list");
    // A listing older than the last one accepted is a replay: it could only take certificates away.
    if (listed.iat < (state.listed_iat ?? 0)) throw new EdgeError(`the listing is older than the last one accepted (iat ${listed.iat} < ${state.listed_iat}): refused as a replay`);
    const removed = state.removed ?? {};

    /** @type {Array<{id: string, crt: string, key: string, hosts: string[], expires_on: string, modified_on: string, write: boolean, hashes: {crt: string, key: string}}>} */
    const keep = [];
    const lines = [];
    for (const item of listed.result) {
      const id = String(item?.id ?? "");
      if (!UUID.test(id)) throw new EdgeError(`listing failed: ${JSON.stringify(id)} is not a certificate id`);
      const crtPath = join(opts.out, `${id}.crt`);
      const keyPath = join(opts.out, `${id}.key`);
      const known = state.certificates[id];
      const floor = known?.modified_on ?? removed[id];
      if (typeof item.modified_on !== "string" || (floor !== undefined && item.modified_on < floor)) {
        throw new EdgeError(`certificate ${id}: the listing offers modified_on ${printable(item.modified_on)}, older than ${floor} already held: refused as a replay`);
      }
      if (known && known.modified_on === item.modified_on && sha256File(crtPath) === known.crt && sha256File(keyPath) === known.key) {
        keep.push({ id, crt: "", key: "", hosts: item.hosts ?? [], expires_on: String(item.expires_on), modified_on: known.modified_on, write: false, hashes: known });
        continue;
      }
      const fetched = await getJson(`${deliveryBase}/${id}`, opts.token);
      if (!fetched.ok) {
        // Withdrawn between the list and the fetch: this run leaves what the edge holds of it as it is
        // (an unsigned refusal removes nothing); the next signed listing without it removes it.
        if (fetched.code !== null && GONE.has(fetched.code)) {
          if (known) keep.push({ id, crt: "", key: "", hosts: item.hosts ?? [], expires_on: String(item.expires_on), modified_on: known.modified_on, write: false, hashes: known });
          continue;
        }
        throw new EdgeError(`certificate ${id}: ${fetched.status} ${fetched.code ?? ""} ${fetched.message}`.replace(/\s+/g, " "));
      }
      const bundle = await signedResult(fetched, "bundle", { zone: opts.zone, edge, service });
      if (bundle.iat < listed.iat - CLOCK_SKEW_SECONDS) throw new EdgeError(`certificate ${id}: the bundle was signed long before the listing: refused as a replay`);
      const opened = await openBundle(/** @type {Record<string, unknown>} */ (bundle.result), { zone: opts.zone, id, edge, thumbprint, privateKey });
      if (opened.modified_on !== item.modified_on) {
        throw new EdgeError(`certificate ${id}: the bundle is of modified_on ${printable(opened.modified_on)}, the listing of ${printable(item.modified_on)}: refused`);
      }
      // Only content decides a write: a new modified_on with the same files (a policy edit) writes nothing.
      const hashes = { crt: sha256(opened.crt), key: sha256(opened.key) };
      const write = sha256File(crtPath) !== hashes.crt || sha256File(keyPath) !== hashes.key;
      keep.push({ id, ...opened, write, hashes });
    }

    // Every bundle checked: now the files.
    let written = 0;
    let removedCount = 0;
    /** @type {typeof state} */
    const next = { certificates: {} };
    // Every new file is written in full beside its place first; only then are
    // they renamed into place, so a failed write (a full disk) leaves every
    // file as it was, never a new key beside an old certificate.
    const staged = [];
    try {
      for (const c of keep.filter((c) => c.write)) {
        staged.push(stage(join(opts.out, `${c.id}.key`), c.key, 0o600), stage(join(opts.out, `${c.id}.crt`), c.crt, 0o644));
      }
    } catch (error) {
      for (const { tmp } of staged) rmSync(tmp, { force: true });
      throw new EdgeError(`writing into ${opts.out} failed, nothing changed: ${error.message}`);
    }
    for (const { tmp, path } of staged) renameSync(tmp, path);
    for (const c of keep) {
      if (c.write) written++;
      next.certificates[c.id] = { modified_on: c.modified_on, crt: c.hashes.crt, key: c.hashes.key };
      lines.push(`${c.id} ${c.write ? "written" : "unchanged"} hosts=${c.hosts.map(printable).join(",")} expires_on=${printable(c.expires_on)}`);
    }
    const tombstones = { ...removed };
    for (const id of Object.keys(state.certificates)) {
      if (next.certificates[id] || !UUID.test(id)) continue;
      rmSync(join(opts.out, `${id}.key`), { force: true });
      rmSync(join(opts.out, `${id}.crt`), { force: true });
      // What it was removed at: it comes back only at a newer modified_on (never by a replay).
      tombstones[id] = state.certificates[id].modified_on;
      removedCount++;
      lines.push(`${id} removed`);
    }
    for (const id of Object.keys(next.certificates)) delete tombstones[id];
    // A reload that failed stays owed (reload_pending) until one succeeds,
    // though the next runs find the files unchanged.
    const changed = written + removedCount > 0;
    const reload = opts.reload !== null && (changed || state.reload_pending === true);
    const saveState = (pending) =>
      writeAtomic(
        statePath,
        `${JSON.stringify({ zone: opts.zone, edge, listed_iat: listed.iat, certificates: next.certificates, removed: tombstones, reload_pending: pending }, null, 2)}\n`,
        0o600,
      );
    saveState(reload);
    for (const line of lines) process.stdout.write(`${line}\n`);

    if (reload) {
      await runReload(/** @type {string} */ (opts.reload));
      saveState(false);
    }
    const ms = (performance.now() - started).toFixed(0);
    process.stdout.write(
      `edge sync: zone ${opts.zone}, edge ${edge}: ${keep.length} certificate${keep.length === 1 ? "" : "s"}, ${written} written, ` +
        `${keep.length - written} unchanged, ${removedCount} removed${reload ? ", reloaded" : ""} (${ms} ms)\n`,
    );
  } finally {
    release();
  }
}

/** @param {string[]} argv */
async function sync(argv) {
  const args = parseArgs(argv, { dir: "value", url: "value", token: "value", "token-file": "value", zone: "value", out: "value", "service-key": "value", reload: "value", watch: "value" });
  for (const name of ["dir", "url", "zone", "out"]) if (typeof args[name] !== "string") usage(`sync needs --${name}`);
  if ((args.token === undefined) === (args["token-file"] === undefined)) usage("sync needs one of --token TOKEN or --token-file PATH");
  const zone = /** @type {string} */ (args.zone);
  if (!ZONE_ID.test(zone)) usage(`invalid zone id ${JSON.stringify(zone)}`);
  let watch = 0;
  if (args.watch !== undefined) {
    watch = Number(args.watch);
    if (!Number.isInteger(watch) || watch < 1 || watch > 86_400) usage("--watch takes whole seconds from 1 to 86400");
  }
  const token = typeof args.token === "string" ? args.token : readFileSync(/** @type {string} */ (args["token-file"]), "utf8").trim();
  const opts = {
    dir: /** @type {string} */ (args.dir),
    base: apiBase(/** @type {string} */ (args.url)),
    token,
    zone,
    out: resolve(/** @type {string} */ (args.out)),
    reload: typeof args.reload === "string" ? args.reload : null,
    serviceKey: typeof args["service-key"] === "string" ? args["service-key"] : undefined,
  };
  if (watch === 0) return syncOnce(opts);

  // Watch: sync every `watch` seconds until SIGINT or SIGTERM; a failed run is reported and retried next time.
  let stopping = false;
  /** @type {(() => void) | null} */
  let wake = null;
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      stopping = true;
      wake?.();
    });
  }
  while (!stopping) {
    try {
      await syncOnce(opts);
    } catch (error) {
      process.stderr.write(`edge: sync failed: ${message(error)}; next try in ${watch} s\n`);
    }
    if (stopping) break;
    await new Promise((done) => {
      const timer = setTimeout(done, watch * 1000);
      wake = () => {
        clearTimeout(timer);
        done(undefined);
      };
    });
  }
}

/**
 * One line for any failure: ours say what to do; a system error (a disk
 * full, a permission) keeps its own message. Never a stack, never key material.
 * @param {unknown} error
 */
function message(error) {
  return error instanceof Error ? error.message : String(error);
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === "init") await init(rest);
  else if (command === "sync") await sync(rest);
  else usage(command === undefined ? "name a command" : `unknown command ${command}`);
} catch (error) {
  process.stderr.write(`edge: ${message(error)}\n`);
  process.exitCode = 1;
}
