// The slices bench:profile times, by name: the driver (bench/lib/slices.ts)
// asks for them and the slice Worker (bench/profile/slices.ts) must answer
// each one, a type error otherwise. No imports: both programs read it.

/** Slices run in the slice Worker itself (`/worker?step=`): HTTP-side work, and RPC hops as the Worker sees them. */
export const WORKER_STEPS = [
  "noop",
  "new Request (GET, auth header)",
  "handle(): 404, no route",
  "handle(): get",
  "handle(): list 50",
  "handle(): create p256v1",
  "new URL + path regex",
  "authenticate (cached token)",
  "verifyJwt HS256 (uncached)",
  "readJson (Request + stream + parse)",
  "request.text() + JSON.parse (experiment)",
  "JSON.parse body",
  "parseCsrInput (validation, tldts)",
  "envelope: success(record), built not sent",
  "envelope: pageOf(50 records), built not sent",
  "Response.json(record) (floor-style reply)",
  "response.headers.set on a built Response",
  "console.log(JSON access line)",
  "stub: idFromName + get",
  "rpc noop",
  "rpc echo one record",
  "rpc echo 50 records",
  "rpc read one row",
  "rpc write one row (commit)",
  "rpc create-like write, current schema",
  "rpc create-like write, without the name and kek indexes",
  "rpc create-like write, lean schema (experiment)",
  "rpc TenantStore.getCsr",
  "rpc TenantStore.listCsrs (50)",
  "rpc TenantStore.createCsr p256v1",
  "rpc TenantStore.createCsr rsa2048",
] as const;

/** Slices run inside the Probe Durable Object (`/do?step=`): key, ASN.1 and SQL work, as TenantStore does it. */
export const DO_STEPS = [
  "keygen p256v1",
  "keygen rsa2048",
  "export spki p256v1",
  "export spki rsa2048",
  "export pkcs8 p256v1",
  "export pkcs8 rsa2048",
  "sign p256v1 (420 B)",
  "sign rsa2048 (420 B)",
  "aes-gcm encrypt 138 B",
  "wrapPrivateKey p256v1",
  "wrapPrivateKey rsa2048",
  "unwrap a pooled rsa2048 key (+ spki import)",
  "asn1 subject Name",
  "asn1 SAN extension",
  "der subject Name (hand-written, experiment)",
  "der SAN extension (hand-written, experiment)",
  "p1363ToDer",
  "toPem (430 B)",
  "buildCsr p256v1 (all)",
  "buildCsr rsa2048 (all)",
  "randomUUID",
  "sql count (SELECT counters)",
  "sql insert csr+key+counter (tx)",
  "sql get by id",
  "JSON.stringify 50 records",
  "toRecord x50",
  "raw page 50 + recordJson (what listCsrs does)",
] as const;

/** Slices of the Probe that read one page of a filled table; run at each list size. */
export const LIST_STEPS = [
  "sql list page 50, first",
  "sql list page 50, last",
  "sql list page 50, middle",
  "sql list page 50, csr column only (experiment)",
  "sql list page 50, 14 columns via raw() (experiment)",
] as const;

export type WorkerStep = (typeof WORKER_STEPS)[number];
export type DoStep = (typeof DO_STEPS)[number];
export type ListStep = (typeof LIST_STEPS)[number];
