// Backup and restore: `npm run backup` while the server takes concurrent
// creates, `npm run restore` into a fresh directory, and a server on it
// finds every CSR acknowledged before the backup started, byte for byte,
// with a wrapped key that passes the admin self-check. Plus what restore
// refuses, and what the archive must not hold.
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CsrRecord, admin, call, csrBody, listAll } from "./api";
import { mintToken, scopeId } from "./credentials";
import { type TestServer, npmRun, snapshotApp, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const root = inject("e2eRoot");
const app = snapshotApp(root);

type Kind = "accounts" | "zones";
const scopes: Array<{ kind: Kind; id: string }> = [
  { kind: "accounts", id: scopeId("bka") },
  { kind: "zones", id: scopeId("bkz") },
  { kind: "zones", id: scopeId("bkz") },
];
const base = (s: { kind: Kind; id: string }): string => `/client/v4/${s.kind}/${s.id}/custom_csrs`;

interface Ack {
  scope: { kind: Kind; id: string };
  id: string;
  json: string;
  at: number;
}

let server: TestServer;
let token: string;
const acks: Ack[] = [];
let backupStarted = 0;
let backupFile = "";

async function create(scope: { kind: Kind; id: string }, i: number): Promise<void> {
  const reply = await call<CsrRecord>(server.origin, "POST", base(scope), {
    token,
    json: csrBody({ key_type: i % 7 === 0 ? "rsa2048" : "p256v1", name: `backup ${i}`, common_name: `b${i}.customer-seven.com`, sans: [`b${i}.customer-seven.com`] }),
  });
  expect(reply.status, reply.text).toBe(201);
  acks.push({ scope, id: reply.body!.result.id, json: JSON.stringify(reply.body!.result), at: Date.now() });
}

beforeAll(async () => {
  server = await startServer({ root, name: "backup" });
  token = mintToken(server.secrets.API_TOKEN_SECRET, {
    accounts: scopes.filter((s) => s.kind === "accounts").map((s) => s.id),
    zones: scopes.filter((s) => s.kind === "zones").map((s) => s.id),
  });
});

afterAll(async () => {
  await server?.stop();
});

describe("npm run backup while creates run", () => {
  it("takes a consistent archive (0600, no secret in it) while 8 clients keep creating", async () => {
    for (let i = 0; i < 12; i++) await create(scopes[i % scopes.length]!, i);
    let running = true;
    let n = 100;
    const clients = Array.from({ length: 8 }, async (_, c) => {
      while (running) await create(scopes[c % scopes.length]!, n++);
    });
    await new Promise((r) => setTimeout(r, 1_500));
    backupFile = join(server.dir, "csr.backup");
    backupStarted = Date.now();
    const run = await npmRun(app, "backup", ["--data-dir", server.dataDir, "--out", backupFile]);
    const backupEnded = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await Promise.all(clients);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^backup: \d+ databases, [\d.]+ MB, in [\d.]+ s -> /);
    expect(run.stdout).toContain("keep it apart from KEY_ENCRYPTION_KEYS");
    console.log(`backup: ${acks.filter((a) => a.at < backupStarted).length} CSRs acknowledged before it, ${acks.filter((a) => a.at >= backupStarted && a.at <= backupEnded).length} during its ${backupEnded - backupStarted} ms, ${acks.filter((a) => a.at > backupEnded).length} after`);
    // Creates really ran before, during and after the backup.
    expect(acks.filter((a) => a.at < backupStarted).length).toBeGreaterThan(20);
    expect(acks.filter((a) => a.at > backupEnded).length).toBeGreaterThan(0);

    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    const bytes = readFileSync(backupFile);
    for (const secret of Object.values(server.secrets)) {
      if (secret.length > 8) expect(bytes.includes(Buffer.from(secret)), "a secret in the archive").toBe(false);
    }
    const kek = Buffer.from(server.secrets.KEY_ENCRYPTION_KEYS.split(":")[1]!, "base64");
    expect(bytes.includes(kek), "the raw key-encryption key in the archive").toBe(false);
    expect(bytes.includes(Buffer.from("PRIVATE KEY")), "a PEM private key in the archive").toBe(false);
  });

  it("refuses without --out, onto an existing file, and from a directory with no storage (exit 2)", async () => {
    expect((await npmRun(app, "backup", ["--data-dir", server.dataDir])).code).toBe(2);
    const existing = await npmRun(app, "backup", ["--data-dir", server.dataDir, "--out", backupFile]);
    expect(existing.code).toBe(2);
    expect(existing.stderr).toContain("--force replaces it");
    expect((await npmRun(app, "backup", ["--data-dir", join(server.dir, "nothing-here"), "--out", join(server.dir, "x.backup")])).code).toBe(2);
    // A directory for the archive that no step made: said as it is, before anything is copied.
    const noDir = await npmRun(app, "backup", ["--data-dir", server.dataDir, "--out", join(server.dir, "no-such-dir", "x.backup")]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain(`${join(server.dir, "no-such-dir")} does not exist: create it first`);
  });

  // Root reads and writes whatever the modes say: only another user meets a permission error.
  it.skipIf(process.getuid?.() === 0)("an archive this user cannot read, or a directory it cannot write, is a permission error, said as one", async () => {
    const locked = join(server.dir, "locked.backup");
    copyFileSync(backupFile, locked);
    chmodSync(locked, 0o000);
    const unreadable = await npmRun(app, "restore", ["--in", locked, "--data-dir", join(server.dir, "never")]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toMatch(/permission denied: .* cannot read .*locked\.backup \(owned by uid \d+, mode 0\)/);
    const closed = join(server.dir, "closed");
    mkdirSync(closed, { mode: 0o500 });
    const unwritable = await npmRun(app, "backup", ["--data-dir", server.dataDir, "--out", join(closed, "x.backup")]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/permission denied: .* cannot write to .*closed/);
  });
});

describe("npm run restore", () => {
  let restored: TestServer;
  const target = (): string => join(server.dir, "restored");

  it("refuses the running server's directory, and a non-empty one without --force (exit 2)", async () => {
    const running = await npmRun(app, "restore", ["--in", backupFile, "--data-dir", server.dataDir, "--force"]);
    expect(running.code).toBe(2);
    expect(running.stderr).toMatch(/a server \(pid \d+\) is using .*: stop it first/);
    expect((await npmRun(app, "restore", ["--in", join(server.dir, "missing.backup"), "--data-dir", target()])).code).toBe(2);
    const notOurs = await npmRun(app, "restore", ["--in", join(server.dir, "stdout.log"), "--data-dir", target()]);
    expect(notOurs.code).toBe(1);
    expect(notOurs.stderr).toContain("is not a backup made by npm run backup");
  });

  it("restores into a fresh directory, where every CSR acknowledged before the backup started is byte-identical and its key verifies", async () => {
    const run = await npmRun(app, "restore", ["--in", backupFile, "--data-dir", target()]);
    expect(run.code, run.stderr).toBe(0);
    const again = await npmRun(app, "restore", ["--in", backupFile, "--data-dir", target()]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("--force replaces them");

    restored = await startServer({ root, name: "restored", dataDir: target(), secrets: server.secrets });
    try {
      const before = acks.filter((a) => a.at < backupStarted);
      for (const a of before) {
        const got = await call<CsrRecord>(restored.origin, "GET", `${base(a.scope)}/${a.id}`, { token });
        expect(got.status, `GET ${a.id}`).toBe(200);
        expect(JSON.stringify(got.body!.result), `${a.id} byte-identical`).toBe(a.json);
        const verify = await admin<{ id: string; kek_id: string; ok: boolean }>(restored.origin, server.secrets.ADMIN_SECRET, "POST", `/${a.scope.kind}/${a.scope.id}/custom_csrs/${a.id}/verify`);
        expect(verify.body!.result, verify.text).toEqual({ id: a.id, kek_id: "e2e1", ok: true });
      }
      // Each scope is one consistent snapshot: its count, its list and its
      // rows agree, and it holds nothing that was never acknowledged.
      for (const scope of scopes) {
        const listed = await listAll(restored.origin, base(scope), token);
        const first = await call<CsrRecord[]>(restored.origin, "GET", `${base(scope)}?per_page=5`, { token });
        expect(first.body!.result_info!.total_count).toBe(listed.length);
        const ackedHere = new Map(acks.filter((a) => a.scope === scope).map((a) => [a.id, a.json]));
        for (const record of listed) expect(JSON.stringify(record)).toBe(ackedHere.get(record.id));
      }
      await expectCsrsVerified(before.slice(0, 12).map((a) => JSON.parse(a.json) as CsrRecord));
    } finally {
      await restored.stop();
    }
  });

  it("--force replaces what a stopped directory held: nothing of the old data is left", async () => {
    // A directory holding other data: a server ran there and made a CSR the backup never saw.
    const other = await startServer({ root, name: "restore-force", secrets: server.secrets });
    const stranger = await call<CsrRecord>(other.origin, "POST", base(scopes[0]!), { token, json: csrBody() });
    expect(stranger.status).toBe(201);
    await other.stop();
    const run = await npmRun(app, "restore", ["--in", backupFile, "--data-dir", other.dataDir, "--force"]);
    expect(run.code, run.stderr).toBe(0);
    await other.restart();
    try {
      expect((await call(other.origin, "GET", `${base(scopes[0]!)}/${stranger.body!.result.id}`, { token })).status).toBe(404);
      const a = acks.find((ack) => ack.at < backupStarted)!;
      expect((await call(other.origin, "GET", `${base(a.scope)}/${a.id}`, { token })).status).toBe(200);
    } finally {
      await other.stop();
    }
  });

  /** A copy of the archive with `change` applied to one tenant database's bytes, its index rewritten or not. */
  async function alteredArchive(name: string, change: (bytes: Buffer) => void, rewriteIndex: boolean): Promise<string> {
    const { DatabaseSync } = await import("node:sqlite");
    const copy = join(server.dir, `${name}.backup`);
    copyFileSync(backupFile, copy);
    const db = new DatabaseSync(copy);
    try {
      const { path } = db.prepare("SELECT path FROM files WHERE path LIKE '%TenantStore/%' AND path NOT LIKE '%metadata.sqlite' ORDER BY size DESC LIMIT 1").get() as { path: string };
      const bytes = Buffer.concat((db.prepare("SELECT data FROM chunks WHERE path = ? ORDER BY n").all(path) as Array<{ data: Uint8Array }>).map((c) => Buffer.from(c.data)));
      change(bytes);
      db.prepare("DELETE FROM chunks WHERE path = ?").run(path);
      db.prepare("INSERT INTO chunks (path, n, data) VALUES (?, 0, ?)").run(path, bytes);
      if (rewriteIndex) db.prepare("UPDATE files SET size = ?, sha256 = ? WHERE path = ?").run(bytes.length, createHash("sha256").update(bytes).digest("hex"), path);
    } finally {
      db.close();
    }
    return copy;
  }

  it("refuses an archive with one flipped byte (its SHA-256), and a corrupt database whose checksum was made to match (SQLite's integrity check); the directory is untouched", async () => {
    const dir = join(server.dir, "restore-refused");
    const flipped = await alteredArchive("flipped", (bytes) => {
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    }, false);
    const damaged = await npmRun(app, "restore", ["--in", flipped, "--data-dir", dir]);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/is damaged \(size or SHA-256 differs\)/);
    expect(existsSync(join(dir, "v3"))).toBe(false);

    const corrupt = await alteredArchive("corrupt", (bytes) => {
      // Page 2's b-tree header: a cell count and content offset past the page's end.
      bytes.fill(0x7f, 4096 + 3, 4096 + 7);
    }, true);
    const refused = await npmRun(app, "restore", ["--in", corrupt, "--data-dir", dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/fails its integrity check/);
    expect(existsSync(join(dir, "v3"))).toBe(false);
  });

  it("under other key-encryption keys the restored data is refused by name: the backup alone yields no key", async () => {
    const wrong = await startServer({
      root,
      name: "restored-wrong-kek",
      dataDir: target(),
      secrets: { ...server.secrets, KEY_ENCRYPTION_KEYS: "e2e1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
      waitReady: false,
    });
    await wrong.exited();
    expect(wrong.exit?.code, wrong.logTail()).not.toBe(0);
    expect(wrong.stderr()).toMatch(/key-encryption key e2e1 in KEY_ENCRYPTION_KEYS is not the key this data directory's keys were wrapped under/);
  });
});
