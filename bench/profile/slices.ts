// Bench-only Worker for `npm run bench:profile`: times each slice of the
// create, get and list paths by running it N times in a loop and reading
// the clock around the loop (workerd's local clock advances during
// execution). It imports the real src/ modules; only the loop is ours.
// Never deployed. Steps run either in this Worker (HTTP-side work) or in
// the Probe Durable Object (key, ASN.1 and SQL work, as TenantStore does).
// Every name of src/ comes through ./src-surface.ts; the step names are
// ./steps.ts's, which the driver (bench/lib/slices.ts) asks for.
import { DurableObject } from "cloudflare:workers";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { Extension, Extensions, GeneralName, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { BODY as SUBJECT_AND_SANS } from "../lib/body.ts";
import type { CsrRow, JsonText } from "./src-surface.ts";
import {
  CSR_COLUMNS,
  CSR_COLUMN_NAMES,
  DeploymentRegistry,
  EdgeRegistry,
  KEY_ALGORITHMS,
  ReadinessProbe,
  Sql,
  TENANT_MIGRATIONS,
  TenantStore,
  ZoneDirectory,
  authenticate,
  authorize,
  buildCsr,
  buildSubject,
  generateKeyPair,
  handle,
  loadKeyring,
  migrate,
  p1363ToDer,
  pageOf,
  parseCsrInput,
  readJson,
  readPage,
  recordJson,
  success,
  tlv,
  toPem,
  toRecord,
  unwrapPrivateKey,
  verifyJwt,
  wrapContext,
  wrapPrivateKey,
} from "./src-surface.ts";
import type { DoStep, ListStep, WorkerStep } from "./steps.ts";

// The API's Durable Object classes, served here as the API serves them:
// TenantStore needs the others (its keyring gate asks DeploymentRegistry).
export { DeploymentRegistry, EdgeRegistry, ReadinessProbe, TenantStore, ZoneDirectory };

/**
 * What bench/lib/slices.ts binds to the slice Worker: every Durable Object
 * binding of the API (from wrangler.toml), the run's secrets and the vars the
 * bench sets as text, and the two probes. Not the API's other [vars], so
 * their defaults apply here (no key pools).
 */
interface SliceEnv
  extends Pick<
    Env,
    | "TENANTS"
    | "READINESS"
    | "ZONE_DIRECTORY"
    | "EDGES"
    | "DEPLOYMENT"
    | "KEY_ENCRYPTION_KEYS"
    | "API_TOKEN_SECRET"
    | "ADMIN_SECRET"
    | "GLOBAL_API_KEYS"
    | "API_TOKEN_JWKS"
    | "DEFAULT_CSR_ACCESS"
    | "DEFAULT_CSR_QUOTA"
  > {
  PROBE: DurableObjectNamespace<Probe>;
  LEAN: DurableObjectNamespace<LeanProbe>;
}

/**
 * The API's Env, for src's handle() and authenticate(): everything but the
 * [vars] the bench leaves unset (their defaults apply, as in src).
 */
const apiEnv = (env: SliceEnv): Env => env as unknown as Env;

/** A Result's value; a refusal stops the step with its reason. */
function valueOf<T>(result: { ok: true; value: T } | { ok: false }, what: string): T {
  if (!result.ok) throw new Error(`${what} was refused: ${JSON.stringify(result)}`);
  return result.value;
}

// Experiment only (what src/pki could do instead of the asn1 schema classes):
// the subject Name and the subjectAltName extension written directly as DER
// with src/pki/der.ts's tlv(). Checked byte for byte against the schema output.
const enc = new TextEncoder();
const ATTR_OID: Record<string, Uint8Array> = {
  country: Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x06),
  state: Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x08),
  locality: Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x07),
  organization: Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x0a),
  organizational_unit: Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x0b),
  common_name: Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x03),
};
type SubjectField = "country" | "state" | "locality" | "organization" | "organizational_unit" | "common_name";
function derName(subject: Readonly<Partial<Record<SubjectField, string | null>>>): Uint8Array {
  const rdns = [tlv(0x31, tlv(0x30, ATTR_OID.country!, tlv(0x13, enc.encode(subject.country ?? ""))))];
  for (const field of ["state", "locality", "organization", "organizational_unit", "common_name"] as const) {
    const value = subject[field];
    if (value) rdns.push(tlv(0x31, tlv(0x30, ATTR_OID[field]!, tlv(0x0c, enc.encode(value)))));
  }
  return tlv(0x30, ...rdns);
}
const SAN_OID = Uint8Array.of(0x06, 0x03, 0x55, 0x1d, 0x11);
function derSanExtensions(sans: readonly string[]): Uint8Array {
  const names = tlv(0x30, ...sans.map((san) => tlv(0x82, enc.encode(san))));
  return tlv(0x30, tlv(0x30, SAN_OID, tlv(0x04, names)));
}
const sameBytes = (a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array) => {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

const BODY = { ...SUBJECT_AND_SANS, key_type: "p256v1" };
const BODY_TEXT = JSON.stringify(BODY);
const SCOPE = { kind: "zones" as const, id: "slices" };
// The call every direct RPC of the slices makes, as the operator.
const CALL = { scope: SCOPE, actor: { type: "admin" as const, id: "bench" } };

function input(keyType: "p256v1" | "rsa2048") {
  const parsed = parseCsrInput({ ...BODY, key_type: keyType });
  if (!parsed.ok) throw new Error("bench body does not validate");
  return parsed.value;
}

/** A stored-looking row, as the csrs table holds it. */
function sampleRow(i: number, csr: string): CsrRow {
  return {
    id: crypto.randomUUID(),
    created_at: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    key_type: "p256v1",
    account_tag: null,
    common_name: BODY.common_name,
    country: BODY.country,
    csr,
    description: null,
    locality: BODY.locality,
    name: null,
    organization: BODY.organization,
    organizational_unit: null,
    sans: JSON.stringify(BODY.sans),
    state: BODY.state,
  };
}

/** Runs `fn` n times, awaiting each; returns milliseconds for the whole loop. */
async function loop(n: number, fn: (i: number) => unknown): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return performance.now() - started;
}

/** Same, for synchronous work (no await per iteration). */
function loopSync(n: number, fn: (i: number) => unknown): number {
  const started = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return performance.now() - started;
}

// SQL fixtures: each probe table set is the real schema (src/tenant/schema.ts);
// the variant drops the secondary indexes to price them.
const SECONDARY_INDEXES = ["csrs_by_name", "wrapped_keys_by_kek"];

/** What the Probe's steps work on: keys, a CSR, sample bytes, an AES key. */
interface Fixtures {
  keyring: Awaited<ReturnType<typeof loadKeyring>>;
  p256: CryptoKeyPair;
  rsa: CryptoKeyPair;
  csr: string;
  info: Uint8Array<ArrayBuffer>;
  der: Uint8Array<ArrayBuffer>;
  p1363: Uint8Array<ArrayBuffer>;
  aes: CryptoKey;
}

/** The csrs row's values in CSR_COLUMNS order, as bound parameters. */
const rowValues = (row: CsrRow) => CSR_COLUMN_NAMES.map((c) => row[c]);

export class Probe extends DurableObject<SliceEnv> {
  #sql: Sql;
  #fixtures: Promise<Fixtures> | null = null;

  constructor(ctx: DurableObjectState, env: SliceEnv) {
    super(ctx, env);
    this.#sql = new Sql(ctx.storage.sql);
    migrate(this.#sql, (fn) => ctx.storage.transactionSync(fn), TENANT_MIGRATIONS);
  }

  noop(): number {
    return 1;
  }

  echo<T>(value: T): T {
    return value;
  }

  /** One row written (its own implicit transaction and commit). */
  writeOne(): number {
    return this.#sql.run(`INSERT OR REPLACE INTO meta (key, value) VALUES ('w', ?)`, crypto.randomUUID());
  }

  readOne(): number {
    return this.#sql.all(`SELECT value FROM counters WHERE name = 'csrs'`).length;
  }

  /** The SQL of one createCsr (quota read twice, two inserts, counter bump), in its own transaction and commit. */
  /** Returns the rows SQLite reports written (table and index rows: what Durable Objects bill). */
  createLike(csr: string): number {
    const row = sampleRow(0, csr);
    this.#sql.one(`SELECT value FROM counters WHERE name = ?`, "csrs");
    return this.ctx.storage.transactionSync(() => {
      this.#sql.one(`SELECT value FROM counters WHERE name = ?`, "csrs");
      const inserted = this.ctx.storage.sql.exec<{ seq: number }>(
        `INSERT INTO csrs (${CSR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
        ...rowValues(row),
      );
      const { seq } = inserted.one();
      let written = inserted.rowsWritten;
      written += this.#sql.run(
        `INSERT INTO wrapped_keys (seq, kek_id, iv, wrapped) VALUES (?, ?, ?, ?)`,
        seq,
        "bench",
        crypto.getRandomValues(new Uint8Array(12)).buffer,
        crypto.getRandomValues(new Uint8Array(154)).buffer,
      );
      written += this.#sql.run(`UPDATE counters SET value = value + 1 WHERE name = ?`, "csrs");
      return written;
    });
  }

  databaseSize(): number {
    return this.ctx.storage.sql.databaseSize;
  }

  /** Drops the secondary indexes (once), for the index-cost variant. */
  dropIndexes(): void {
    for (const name of SECONDARY_INDEXES) this.#sql.run(`DROP INDEX IF EXISTS ${name}`);
  }

  /** Fills `csrs` up to `count` rows with one statement (a sample CSR in each), for list timings. */
  fill(count: number, csr: string): number {
    const have = this.#sql.one<{ n: number }>(`SELECT count(*) AS n FROM csrs`)!.n;
    if (have >= count) return have;
    this.ctx.storage.transactionSync(() => {
      this.#sql.run(
        `WITH RECURSIVE k(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?)
         INSERT INTO csrs (id, created_at, key_type, account_tag, common_name, country, state, locality, organization, sans, csr)
         SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' ||
                      substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
                strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', '+' || i || ' seconds'), 'p256v1', NULL,
                ?, ?, ?, ?, ?, ?, ? FROM k`,
        have,
        count,
        BODY.common_name,
        BODY.country,
        BODY.state,
        BODY.locality,
        BODY.organization,
        JSON.stringify(BODY.sans),
        csr,
      );
      this.#sql.run(`UPDATE counters SET value = ? WHERE name = 'csrs'`, count);
    });
    return count;
  }

  async #setup(): Promise<Fixtures> {
    const keyring = await loadKeyring(this.env.KEY_ENCRYPTION_KEYS);
    const p256 = await generateKeyPair("p256v1");
    const rsa = await generateKeyPair("rsa2048");
    const csr = await buildCsr(input("p256v1"), p256);
    const info = crypto.getRandomValues(new Uint8Array(420));
    const der = crypto.getRandomValues(new Uint8Array(430));
    const p1363 = new Uint8Array(await crypto.subtle.sign(KEY_ALGORITHMS.p256v1.sign, p256.privateKey, info));
    const aes = await crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), "AES-GCM", false, ["encrypt"]);
    return { keyring, p256, rsa, csr, info, der, p1363, aes };
  }

  /** Times one step n times inside this object; returns ms for the loop. */
  async run(step: DoStep | ListStep, n: number): Promise<{ ms: number; n: number }> {
    this.#fixtures ??= this.#setup();
    const f = await this.#fixtures;
    const subtle = crypto.subtle;
    const p256 = input("p256v1");
    const rsa = input("rsa2048");
    const sql = this.#sql;
    const insert = (row: ReturnType<typeof sampleRow>) =>
      this.ctx.storage.transactionSync(() => {
        sql.one(`SELECT value FROM counters WHERE name = ?`, "csrs");
        const { seq } = sql.one<{ seq: number }>(
          `INSERT INTO csrs (${CSR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
          ...rowValues(row),
        )!;
        sql.run(`INSERT INTO wrapped_keys (seq, kek_id, iv, wrapped) VALUES (?, ?, ?, ?)`, seq, "bench", new ArrayBuffer(12), new ArrayBuffer(154));
        sql.run(`UPDATE counters SET value = value + 1 WHERE name = ?`, "csrs");
      });
    const total = () => sql.one<{ value: number }>(`SELECT value FROM counters WHERE name = 'csrs'`)!.value;
    const page = (which: "first" | "last") => {
      const t = total();
      const last = Math.max(1, Math.ceil(t / 50));
      return readPage((q, ...v) => sql.all<CsrRow>(q, ...v), { table: "csrs", columns: CSR_COLUMNS, order: "created_at", direction: "asc", page: which === "first" ? 1 : last, perPage: 50, total: t });
    };
    const someId = () => sql.one<{ id: string }>(`SELECT id FROM csrs ORDER BY seq DESC LIMIT 1`)?.id ?? "none";
    const steps: Record<DoStep | ListStep, () => Promise<number> | number> = {
      "keygen p256v1": () => loop(n, () => generateKeyPair("p256v1")),
      "keygen rsa2048": () => loop(n, () => generateKeyPair("rsa2048")),
      "export spki p256v1": () => loop(n, () => subtle.exportKey("spki", f.p256.publicKey)),
      "export spki rsa2048": () => loop(n, () => subtle.exportKey("spki", f.rsa.publicKey)),
      "export pkcs8 p256v1": () => loop(n, () => subtle.exportKey("pkcs8", f.p256.privateKey)),
      "export pkcs8 rsa2048": () => loop(n, () => subtle.exportKey("pkcs8", f.rsa.privateKey)),
      "sign p256v1 (420 B)": () => loop(n, () => subtle.sign(KEY_ALGORITHMS.p256v1.sign, f.p256.privateKey, f.info)),
      "sign rsa2048 (420 B)": () => loop(n, () => subtle.sign(KEY_ALGORITHMS.rsa2048.sign, f.rsa.privateKey, f.info)),
      "aes-gcm encrypt 138 B": () => loop(n, () => subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, f.aes, new Uint8Array(138))),
      "wrapPrivateKey p256v1": () => loop(n, () => wrapPrivateKey(f.p256.privateKey, f.keyring, wrapContext("zones:x", "id"))),
      "wrapPrivateKey rsa2048": () => loop(n, () => wrapPrivateKey(f.rsa.privateKey, f.keyring, wrapContext("zones:x", "id"))),
      // What a create does with a pooled key before it can sign: unwrap (AES-GCM + PKCS#8 import) and import the SPKI.
      "unwrap a pooled rsa2048 key (+ spki import)": async () => {
        const wrapped = await wrapPrivateKey(f.rsa.privateKey, f.keyring, wrapContext("zones:x", "id"));
        const spki = (await subtle.exportKey("spki", f.rsa.publicKey)) as ArrayBuffer;
        return loop(n, async () => {
          await unwrapPrivateKey(wrapped, "rsa2048", f.keyring, wrapContext("zones:x", "id"), { extractable: true });
          return subtle.importKey("spki", spki, KEY_ALGORITHMS.rsa2048.import, true, ["verify"]);
        });
      },
      "asn1 subject Name": () => loopSync(n, () => AsnConvert.serialize(buildSubject(p256))),
      "asn1 SAN extension": () =>
        loopSync(n, () => {
          const alt = new SubjectAlternativeName(p256.sans.map((dNSName) => new GeneralName({ dNSName })));
          return AsnConvert.serialize(new Extensions([new Extension({ extnID: "2.5.29.17", critical: false, extnValue: new OctetString(AsnConvert.serialize(alt)) })]));
        }),
      "der subject Name (hand-written, experiment)": () => {
        if (!sameBytes(derName(p256), AsnConvert.serialize(buildSubject(p256)))) throw new Error("hand-written Name differs");
        return loopSync(n, () => derName(p256));
      },
      "der SAN extension (hand-written, experiment)": () => {
        const alt = new SubjectAlternativeName(p256.sans.map((dNSName) => new GeneralName({ dNSName })));
        const schema = AsnConvert.serialize(new Extensions([new Extension({ extnID: "2.5.29.17", critical: false, extnValue: new OctetString(AsnConvert.serialize(alt)) })]));
        if (!sameBytes(derSanExtensions(p256.sans), schema)) throw new Error("hand-written SAN extension differs");
        return loopSync(n, () => derSanExtensions(p256.sans));
      },
      "p1363ToDer": () => loopSync(n, () => p1363ToDer(f.p1363)),
      "toPem (430 B)": () => loopSync(n, () => toPem("CERTIFICATE REQUEST", f.der)),
      "buildCsr p256v1 (all)": () => loop(n, () => buildCsr(p256, f.p256)),
      "buildCsr rsa2048 (all)": () => loop(n, () => buildCsr(rsa, f.rsa)),
      "randomUUID": () => loopSync(n, () => crypto.randomUUID()),
      "sql count (SELECT counters)": () => loopSync(n, () => total()),
      "sql insert csr+key+counter (tx)": () => loopSync(n, (i) => insert(sampleRow(i, f.csr))),
      "sql get by id": () => {
        const id = someId();
        return loopSync(n, () => sql.one(`SELECT ${CSR_COLUMNS} FROM csrs WHERE id = ?`, id));
      },
      "sql list page 50, first": () => loopSync(n, () => page("first")),
      "sql list page 50, last": () => loopSync(n, () => page("last")),
      "sql list page 50, middle": () => {
        const t = total();
        const middle = Math.max(1, Math.ceil(t / 100));
        return loopSync(n, () => readPage((q, ...v) => sql.all<CsrRow>(q, ...v), { table: "csrs", columns: CSR_COLUMNS, order: "created_at", direction: "asc", page: middle, perPage: 50, total: t }));
      },
      "sql list page 50, csr column only (experiment)": () =>
        loopSync(n, () => sql.all(`SELECT csr FROM csrs ORDER BY created_at ASC, seq ASC LIMIT 50`)),
      "sql list page 50, 14 columns via raw() (experiment)": () =>
        loopSync(n, () => [...this.ctx.storage.sql.exec(`SELECT ${CSR_COLUMNS} FROM csrs ORDER BY created_at ASC, seq ASC LIMIT 50`).raw()]),
      "JSON.stringify 50 records": () => {
        const records = page("first").map((r) => toRecord(r));
        return loopSync(n, () => JSON.stringify(records));
      },
      "toRecord x50": () => {
        const rows = page("first");
        return loopSync(n, () => rows.map((r) => toRecord(r)));
      },
      "raw page 50 + recordJson (what listCsrs does)": () =>
        loopSync(n, () =>
          [...this.ctx.storage.sql.exec(`SELECT ${CSR_COLUMNS} FROM csrs ORDER BY created_at ASC, seq ASC LIMIT 50`).raw()].map(recordJson),
        ),
    };
    const fn: (() => Promise<number> | number) | undefined = steps[step];
    if (!fn) throw new Error(`unknown DO step ${step}`);
    return { ms: await fn(), n };
  }
}

/**
 * Experiment: a leaner layout for the same data. The wrap sits in the CSR's
 * row (one B-tree instead of two plus an index), seq is a plain rowid (no
 * sqlite_sequence write per insert), and only the indexes a list can use
 * remain: id (get) and (name, seq). created_at kept non-decreasing in seq
 * order would make order=created_at a walk of the table itself, and
 * account_tag is constant inside one scope's object, so neither needs an index.
 */
export class LeanProbe extends DurableObject<SliceEnv> {
  #sql: Sql;
  constructor(ctx: DurableObjectState, env: SliceEnv) {
    super(ctx, env);
    this.#sql = new Sql(ctx.storage.sql);
    this.#sql.run(`CREATE TABLE IF NOT EXISTS csrs (
      seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, key_type TEXT NOT NULL,
      account_tag TEXT, common_name TEXT NOT NULL, country TEXT NOT NULL, state TEXT NOT NULL, locality TEXT NOT NULL,
      organization TEXT NOT NULL, organizational_unit TEXT, name TEXT, description TEXT, sans TEXT NOT NULL,
      csr TEXT NOT NULL, kek_id TEXT NOT NULL, iv BLOB NOT NULL, wrapped BLOB NOT NULL)`);
    this.#sql.run(`CREATE INDEX IF NOT EXISTS csrs_by_name ON csrs (name, seq)`);
    this.#sql.run(`CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`);
    this.#sql.run(`INSERT OR IGNORE INTO counters (name, value) VALUES ('csrs', 0)`);
  }

  createLike(csr: string): number {
    const row = sampleRow(0, csr);
    this.#sql.one(`SELECT value FROM counters WHERE name = ?`, "csrs");
    return this.ctx.storage.transactionSync(() => {
      this.#sql.one(`SELECT value FROM counters WHERE name = ?`, "csrs");
      let written = this.#sql.run(
        `INSERT INTO csrs (${CSR_COLUMNS}, kek_id, iv, wrapped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ...rowValues(row),
        "bench",
        crypto.getRandomValues(new Uint8Array(12)).buffer,
        crypto.getRandomValues(new Uint8Array(154)).buffer,
      );
      written += this.#sql.run(`UPDATE counters SET value = value + 1 WHERE name = ?`, "csrs");
      return written;
    });
  }

  databaseSize(): number {
    return this.ctx.storage.sql.databaseSize;
  }
}

// Experiment: the get endpoint without the router, for the price of routing.
// Same work otherwise: path check, cached token, scope permission, the
// object's getCsr over RPC, the v4 envelope, security headers, request id,
// one JSON access log line.
const LEAN_GET = /^\/lean\/(accounts|zones)\/([A-Za-z0-9_-]{1,32})\/custom_csrs\/([0-9a-f-]{36})$/;
const LEAN_HEADERS: Array<[string, string]> = [
  ["content-type", "application/json; charset=utf-8"],
  ["cache-control", "no-store"],
  ["x-content-type-options", "nosniff"],
  ["x-frame-options", "DENY"],
  ["referrer-policy", "no-referrer"],
  ["content-security-policy", "default-src 'none'; frame-ancestors 'none'"],
  ["strict-transport-security", "max-age=31536000; includeSubDomains"],
];

async function leanGet(request: Request, env: SliceEnv): Promise<Response> {
  const started = Date.now();
  const requestId = crypto.randomUUID();
  const match = LEAN_GET.exec(new URL(request.url).pathname);
  if (!match) return new Response("{}", { status: 404 });
  const principal = await authenticate(request, apiEnv(env));
  const scope = { kind: match[1] as "accounts" | "zones", id: match[2]! };
  // The run's token grants every zone by itself: the zone's account is never asked for.
  if (!principal.ok || !(await authorize(principal.value, scope, "read", async () => null)).ok) return new Response("{}", { status: 403 });
  const call = { scope, actor: { type: "user" as const, id: principal.value.subject } };
  const result = await env.TENANTS.get(env.TENANTS.idFromName(`${scope.kind}:${scope.id}`)).getCsr(call, match[3]!);
  if (!result.ok) return new Response("{}", { status: 404 });
  console.log(JSON.stringify({ level: "info", request_id: requestId, method: "GET", route: "lean", scope: `${scope.kind}:${scope.id}`, status: 200, duration_ms: Date.now() - started }));
  return new Response(`{"success":true,"errors":[],"messages":[],"result":${result.value}}`, {
    headers: [...LEAN_HEADERS, ["x-request-id", requestId]],
  });
}

function record() {
  return toRecord(sampleRow(0, "-----BEGIN CERTIFICATE REQUEST-----\n" + "A".repeat(600) + "\n-----END CERTIFICATE REQUEST-----\n"));
}

export default {
  async fetch(request: Request, env: SliceEnv, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const step = url.searchParams.get("step") ?? "";
    const n = Number(url.searchParams.get("n") ?? "1");
    const probeName = url.searchParams.get("probe") ?? "p";
    const probe = env.PROBE.get(env.PROBE.idFromName(probeName));
    if (url.pathname.startsWith("/lean/")) return leanGet(request, env);
    if (url.pathname === "/lean-setup") {
      const made = valueOf(await env.TENANTS.get(env.TENANTS.idFromName(`${SCOPE.kind}:${SCOPE.id}`)).createCsr(CALL, parseCsrInput(BODY)), "createCsr");
      return Response.json({ path: `/lean/${SCOPE.kind}/${SCOPE.id}/custom_csrs/${made.id}` });
    }
    if (url.pathname === "/do") return Response.json(await probe.run(step as DoStep | ListStep, n));
    if (url.pathname === "/fill") return Response.json({ rows: await probe.fill(n, url.searchParams.get("csr") ?? "x".repeat(620)) });
    if (url.pathname === "/drop-indexes") return Response.json(await probe.dropIndexes());

    const store = env.TENANTS.get(env.TENANTS.idFromName(`${SCOPE.kind}:${SCOPE.id}`));
    const token = url.searchParams.get("token") ?? "";
    const authed = new Request("http://x/", { headers: { authorization: `Bearer ${token}` } });
    const rec = record();
    const sampleCsr = url.searchParams.get("csr") ?? "x".repeat(620);
    let extra: Record<string, number> | undefined;
    // n committed writes; also reports the database growth per row.
    const createLike = async (target: DurableObjectStub<Probe> | DurableObjectStub<LeanProbe>) => {
      const before = await target.databaseSize();
      let written = 0;
      const ms = await loop(n, async () => {
        written += await target.createLike(sampleCsr);
      });
      extra = { bytesPerRow: ((await target.databaseSize()) - before) / n, rowsWritten: written / n };
      return ms;
    };
    const recs = Array.from({ length: 50 }, record);
    const api = "http://127.0.0.1/client/v4/zones/slices/custom_csrs";
    const headers = { authorization: `Bearer ${token}` };
    // The whole Worker in this isolate: router, auth, RPC, object, envelope, log; no socket.
    const serve = async (req: () => Request) => {
      const response = await handle(req(), apiEnv(env), ctx);
      await response.arrayBuffer();
      if (response.status >= 300) throw new Error(`handle() answered ${response.status}`);
    };
    const createBody = (keyType: string) => JSON.stringify({ ...BODY, key_type: keyType });
    const steps: Record<WorkerStep, () => Promise<number> | number> = {
      "noop": () => loopSync(n, () => 0),
      "new Request (GET, auth header)": () => loopSync(n, () => new Request(api, { headers })),
      "handle(): 404, no route": () =>
        loop(n, async () => {
          await (await handle(new Request("http://127.0.0.1/nope"), apiEnv(env), ctx)).arrayBuffer();
        }),
      "handle(): get": async () => {
        const made = valueOf(await store.createCsr(CALL, parseCsrInput(BODY)), "createCsr");
        return loop(n, () => serve(() => new Request(`${api}/${made.id}`, { headers })));
      },
      "handle(): list 50": async () => {
        const have = valueOf(await store.getStats(CALL), "getStats").csrs;
        for (let i = have; i < 60; i++) await store.createCsr(CALL, parseCsrInput(BODY));
        return loop(n, () => serve(() => new Request(`${api}?per_page=50`, { headers })));
      },
      "handle(): create p256v1": () =>
        loop(n, () => serve(() => new Request(api, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: createBody("p256v1") }))),
      "new URL + path regex": () => loopSync(n, () => /^\/(?:client|api)\/v4\/(accounts|zones)\/([^/]*)\/([^/]+)(?:\/.*)?$/.exec(new URL(request.url).pathname)),
      "authenticate (cached token)": () => loop(n, () => authenticate(authed, apiEnv(env))),
      "verifyJwt HS256 (uncached)": () => loop(n, () => verifyJwt(token, { hmacSecret: env.API_TOKEN_SECRET, jwks: "" }, Date.now())),
      "readJson (Request + stream + parse)": () =>
        loop(n, () => readJson(new Request("http://x/", { method: "POST", body: BODY_TEXT, headers: { "content-type": "application/json" } }), apiEnv(env))),
      "request.text() + JSON.parse (experiment)": () =>
        loop(n, async () => JSON.parse(await new Request("http://x/", { method: "POST", body: BODY_TEXT, headers: { "content-type": "application/json" } }).text())),
      "JSON.parse body": () => loopSync(n, () => JSON.parse(BODY_TEXT)),
      "parseCsrInput (validation, tldts)": () => loopSync(n, () => parseCsrInput(BODY)),
      "envelope: success(record), built not sent": () => loopSync(n, () => success(rec)),
      "envelope: pageOf(50 records), built not sent": () => loopSync(n, () => pageOf({ items: JSON.stringify(recs) as JsonText, count: recs.length, total: 100000 }, { page: 1, per_page: 50 })),
      "Response.json(record) (floor-style reply)": () => loopSync(n, () => Response.json({ success: true, errors: [], messages: [], result: rec })),
      "response.headers.set on a built Response": () => {
        const r = success(rec);
        return loopSync(n, () => r.headers.set("x-request-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
      },
      "console.log(JSON access line)": () =>
        loopSync(n, (i) =>
          console.log(JSON.stringify({ level: "info", request_id: crypto.randomUUID(), method: "GET", route: "/client/v4/zones/:scopeId/custom_csrs/:csrId", scope: "zones:slices", principal: "token:abc", status: 200, duration_ms: i })),
        ),
      "stub: idFromName + get": () => loopSync(n, () => env.TENANTS.get(env.TENANTS.idFromName(`zones:s${n}`))),
      "rpc noop": () => loop(n, () => probe.noop()),
      "rpc echo one record": () => loop(n, () => probe.echo(rec)),
      "rpc echo 50 records": () => loop(n, () => probe.echo(recs)),
      "rpc write one row (commit)": () => loop(n, () => probe.writeOne()),
      "rpc create-like write, current schema": () => createLike(env.PROBE.get(env.PROBE.idFromName("write-current"))),
      "rpc create-like write, without the name and kek indexes": async () => {
        const target = env.PROBE.get(env.PROBE.idFromName("write-trimmed"));
        await target.dropIndexes();
        return createLike(target);
      },
      "rpc create-like write, lean schema (experiment)": () => createLike(env.LEAN.get(env.LEAN.idFromName("write-lean"))),
      "rpc read one row": () => loop(n, () => probe.readOne()),
      "rpc TenantStore.getCsr": async () => {
        const made = valueOf(await store.createCsr(CALL, parseCsrInput(BODY)), "createCsr");
        return loop(n, () => store.getCsr(CALL, made.id));
      },
      "rpc TenantStore.listCsrs (50)": async () => {
        const have = valueOf(await store.getStats(CALL), "getStats").csrs;
        for (let i = have; i < 60; i++) await store.createCsr(CALL, parseCsrInput(BODY));
        return loop(n, () => store.listCsrs(CALL, { page: 1, per_page: 50, order: "created_at", direction: "asc" }));
      },
      "rpc TenantStore.createCsr p256v1": () => loop(n, () => store.createCsr(CALL, parseCsrInput(BODY))),
      "rpc TenantStore.createCsr rsa2048": () => loop(n, () => store.createCsr(CALL, parseCsrInput({ ...BODY, key_type: "rsa2048" }))),
    };
    const fn: (() => Promise<number> | number) | undefined = steps[step as WorkerStep];
    if (!fn) return Response.json({ error: `unknown step ${step}` }, { status: 404 });
    return Response.json({ ms: await fn(), n, extra });
  },
};
