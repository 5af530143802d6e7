// What deleting a key erases (issue 19, item 6). The server overwrites a
// wrap in place before deleting its row; a backup taken after the delete
// holds no byte of it; `npm run compact` removes what SQLite's write-ahead
// log and free space kept; and a KEK rotation and retirement makes every
// remnant, and every earlier backup, impossible to open (crypto-shredding).
import { createDecipheriv, randomBytes } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin, call, csrBody } from "./api";
import { mintToken } from "./credentials";
import { type TestServer, npmRun, snapshotApp, startServer } from "./server";

const root = inject("e2eRoot");
const ZONE = "erasure-zone";
let server: TestServer;
let token: string;
let keep: string;
let gone: { id: string; iv: Buffer; wrapped: Buffer };

/** Every file under `dir`, with its bytes. */
function filesUnder(dir: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push([path, readFileSync(path)]);
  }
  return out;
}

/** The files holding any 24-byte window of the wrap. */
function holding(files: Array<[string, Buffer]>, wrap: Buffer): string[] {
  const windows = [0, 40, wrap.length - 24].map((at) => wrap.subarray(at, at + 24));
  return files.filter(([, bytes]) => windows.some((w) => bytes.indexOf(w) !== -1)).map(([path]) => path);
}

/** A CSR's wrap, read from the zone's database (the server stopped). */
async function wrapOf(dataDir: string, csrId: string): Promise<{ iv: Buffer; wrapped: Buffer }> {
  const { DatabaseSync } = await import("node:sqlite");
  const dir = join(dataDir, "v3", "do", "custom-csr-api-TenantStore");
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")) {
    const db = new DatabaseSync(join(dir, name), { readOnly: true });
    try {
      const row = db.prepare("SELECT k.iv, k.wrapped FROM wrapped_keys k JOIN csrs c ON c.seq = k.seq WHERE c.id = ?").get(csrId) as
        | { iv: Uint8Array; wrapped: Uint8Array }
        | undefined;
      if (row) return { iv: Buffer.from(row.iv), wrapped: Buffer.from(row.wrapped) };
    } catch {
      // Not a tenant with that table.
    } finally {
      db.close();
    }
  }
  throw new Error(`no wrap for ${csrId}`);
}

/** Whether AES-256-GCM under `kek` (id:base64) opens the wrap with its additional data. */
function opens(kek: string, wrap: { iv: Buffer; wrapped: Buffer }, csrId: string): boolean {
  const key = Buffer.from(kek.slice(kek.indexOf(":") + 1), "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, wrap.iv);
  decipher.setAAD(Buffer.from(`custom-csr-key:v1:zones:${ZONE}:${csrId}`));
  decipher.setAuthTag(wrap.wrapped.subarray(wrap.wrapped.length - 16));
  try {
    decipher.update(wrap.wrapped.subarray(0, wrap.wrapped.length - 16));
    decipher.final();
    return true;
  } catch {
    return false;
  }
}

const backup = async (name: string) => {
  const out = join(server.dir, `${name}.backup`);
  const ran = await npmRun(snapshotApp(root), "backup", ["--data-dir", server.dataDir, "--out", out]);
  expect(ran.code, ran.stderr).toBe(0);
  return out;
};

beforeAll(async () => {
  server = await startServer({ root, name: "erasure" });
  token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
  const made = [];
  for (let i = 0; i < 2; i++) {
    const reply = await call<{ id: string }>(server.origin, "POST", `/client/v4/zones/${ZONE}/custom_csrs`, { token, json: csrBody({ key_type: "rsa2048" }) });
    expect(reply.status, reply.text).toBe(201);
    made.push(reply.body!.result.id);
  }
  keep = made[1]!;
  await server.stop();
  gone = { id: made[0]!, ...(await wrapOf(server.dataDir, made[0]!)) };
  expect(opens(server.secrets.KEY_ENCRYPTION_KEYS, gone, gone.id)).toBe(true);
  await server.restart();
});

afterAll(() => server?.stop());

describe("a deleted key", () => {
  let before: string;

  it("is in no backup taken after its delete (one taken before holds it: the search has teeth)", async () => {
    before = await backup("before");
    expect(holding([[before, readFileSync(before)]], gone.wrapped)).toEqual([before]);
    expect((await call(server.origin, "DELETE", `/client/v4/zones/${ZONE}/custom_csrs/${gone.id}`, { token })).status).toBe(200);
    const after = await backup("after");
    expect(holding([[after, readFileSync(after)]], gone.wrapped)).toEqual([]);
  });

  it("is in no file of the data directory once npm run compact has run on the stopped server; the other key still verifies", async () => {
    await server.stop();
    const compacted = await npmRun(snapshotApp(root), "compact", ["--data-dir", server.dataDir]);
    expect(compacted.code, compacted.stderr).toBe(0);
    expect(compacted.stdout).toMatch(/^compact: \d+ databases in .*, \d+ -> \d+ bytes$/m);
    expect(holding(filesUnder(server.dataDir), gone.wrapped)).toEqual([]);
    await server.restart();
    const check = await admin<{ ok: boolean }>(server.origin, server.secrets.ADMIN_SECRET, "POST", `/zones/${ZONE}/custom_csrs/${keep}/verify`);
    expect(check.body?.result.ok).toBe(true);
  });

  it("cannot be opened at all once the KEK is rotated and retired: neither its remnant nor the backup from before its delete", async () => {
    const old = server.secrets.KEY_ENCRYPTION_KEYS;
    const fresh = `k2:${randomBytes(32).toString("base64")}`;
    await server.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: `${fresh},${old}` } });
    for (let next: string | null = ""; next !== null; ) {
      const reply: Awaited<ReturnType<typeof admin<{ next: string | null }>>> = await admin<{ next: string | null }>(
        server.origin,
        server.secrets.ADMIN_SECRET,
        "POST",
        `/rewrap${next ? `?after=${next}` : ""}`,
      );
      expect(reply.status, reply.text).toBe(200);
      next = reply.body!.result.next;
    }
    const keys = await admin<{ retirable: string[] }>(server.origin, server.secrets.ADMIN_SECRET, "GET", "/keys");
    expect(keys.body?.result.retirable).toEqual(["e2e1"]);
    // Retired: the operator drops e2e1 everywhere. What was wrapped under it opens with nothing left.
    await server.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: fresh } });
    expect(opens(fresh, gone, gone.id)).toBe(false);
    const check = await admin<{ ok: boolean; kek_id: string }>(server.origin, server.secrets.ADMIN_SECRET, "POST", `/zones/${ZONE}/custom_csrs/${keep}/verify`);
    expect(check.body?.result).toMatchObject({ ok: true, kek_id: "k2" });
    // The backup from before the delete, restored with today's keys, is refused by name: it needs e2e1.
    const restored = join(server.dir, "restored");
    const ran = await npmRun(snapshotApp(root), "restore", ["--in", before, "--data-dir", restored]);
    expect(ran.code, ran.stderr).toBe(0);
    const attempt = await startServer({ root, name: "erasure-restored", dataDir: restored, secrets: { ...server.secrets, KEY_ENCRYPTION_KEYS: fresh }, waitReady: false });
    await attempt.exited();
    expect(attempt.exit?.code).not.toBe(0);
    expect(attempt.stderr()).toMatch(/key-encryption key e2e1 is not in KEY_ENCRYPTION_KEYS/);
  });
});
