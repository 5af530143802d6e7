// OUT on disk: files written all or none, the per-zone lock, and the state
// file, on a temporary directory.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lock, running } from "../src/lock.ts";
import { readState, writeState } from "../src/state.ts";
import { writeAll, writeAtomic } from "../src/staging.ts";
import { type Edge, failure, makeEdge, success } from "./harness.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "edge-files-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;
const deadPid = async () => {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((done) => child.once("exit", done));
  return child.pid!;
};

describe("staging", () => {
  it("writes every file with exactly its mode, whatever the umask", () => {
    const umask = process.umask(0o077);
    try {
      writeAll(dir, [
        { path: join(dir, "a.key"), data: "key\n", mode: 0o600 },
        { path: join(dir, "a.crt"), data: "crt\n", mode: 0o644 },
      ]);
    } finally {
      process.umask(umask);
    }
    expect([readFileSync(join(dir, "a.key"), "utf8"), mode(join(dir, "a.key")), mode(join(dir, "a.crt"))]).toEqual(["key\n", 0o600, 0o644]);
    expect(readdirSync(dir).sort()).toEqual(["a.crt", "a.key"]);
  });

  it("writes nothing when one file cannot be written: a directory or a file in the way leaves every file as it was", () => {
    writeAtomic(join(dir, "a.key"), "old key\n", 0o600);
    mkdirSync(join(dir, "a.crt"));
    writeFileSync(join(dir, "sub"), "a file where a directory should be\n");
    for (const blocked of [join(dir, "a.crt"), join(dir, "sub", "b.crt"), join(dir, "missing", "b.crt")]) {
      expect(() =>
        writeAll(dir, [
          { path: join(dir, "a.key"), data: "new key\n", mode: 0o600 },
          { path: blocked, data: "new crt\n", mode: 0o644 },
        ]),
      ).toThrow(new RegExp(`^writing into ${dir} failed, nothing changed: `));
      expect(readFileSync(join(dir, "a.key"), "utf8")).toBe("old key\n");
      expect(readdirSync(dir).sort()).toEqual(["a.crt", "a.key", "sub"]);
    }
  });
});

describe("the per-zone lock", () => {
  it("appears with its pid in it, refuses a second taker while held, and is gone once released", () => {
    const path = join(dir, ".edge-sync-z.lock");
    const release = lock(path);
    expect(readFileSync(path, "utf8")).toBe(String(process.pid));
    expect(() => lock(path)).toThrow(`another sync of this zone is running (pid ${process.pid}, lock ${path})`);
    release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("takes over a lock whose process is gone, or that names no process", async () => {
    const path = join(dir, ".edge-sync-z.lock");
    for (const held of [String(await deadPid()), "", "not a pid"]) {
      writeFileSync(path, held);
      const release = lock(path);
      expect(readFileSync(path, "utf8")).toBe(String(process.pid));
      release();
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("removes a stale lock only while it still names the dead process", () => {
    const path = join(dir, ".edge-sync-z.lock");
    writeFileSync(path, "999999");
    // Between reading the stale lock and removing it, another sync takes it over.
    const isRunning = (pid: number) => {
      if (pid === 999999) {
        writeFileSync(path, "4242");
        return false;
      }
      return pid === 4242;
    };
    expect(() => lock(path, process.pid, isRunning)).toThrow("another sync of this zone is running (pid 4242");
    expect(readFileSync(path, "utf8")).toBe("4242");
  });

  it("counts a process of another user (EPERM) as running", () => {
    expect(running(process.pid)).toBe(true);
    expect(running(1)).toBe(true);
  });

  it("a sync refuses while another of the zone runs, and takes a stale lock over", async () => {
    const edge: Edge = await makeEdge();
    try {
      edge.service.add("a.example.com");
      mkdirSync(edge.out, { recursive: true });
      const path = join(edge.out, ".edge-sync-zone-1.lock");
      writeFileSync(path, String(process.pid));
      expect(failure(await edge.sync())).toBe(`another sync of this zone is running (pid ${process.pid}, lock ${path})`);
      expect(edge.files()).toEqual([]);
      writeFileSync(path, String(await deadPid()));
      expect(success(await edge.sync())).toMatchObject({ written: 1 });
      expect(existsSync(path)).toBe(false);
      expect(readdirSync(edge.out).filter((f) => f.includes(".lock"))).toEqual([]);
    } finally {
      await edge.close();
    }
  });
});

describe("the state file", () => {
  it("reads back what was written, 0600; none yet is empty; anything else is refused with what to do", () => {
    const path = join(dir, ".edge-sync-z.json");
    expect(readState(path)).toEqual({ listed_iat: 0, certificates: {}, removed: {}, reload_pending: false, nginx_include: null });
    const state = {
      listed_iat: 7,
      certificates: { a: { modified_on: "m", crt: "c", key: "k" }, c: { modified_on: "m", crt: "c", key: "k", hostname: "*.shop.example.com" } },
      removed: { b: "m0" },
      reload_pending: true,
      nginx_include: "/etc/csr-edge/certs/custom-hostnames.conf",
    };
    writeState(path, { zone: "z", edge: "e" }, state);
    expect(mode(path)).toBe(0o600);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ zone: "z", edge: "e", ...state });
    expect(readState(path)).toEqual(state);
    // A state from before tombstones, reload_pending and nginx_include still reads.
    writeFileSync(path, JSON.stringify({ certificates: {} }));
    expect(readState(path)).toEqual({ listed_iat: 0, certificates: {}, removed: {}, reload_pending: false, nginx_include: null });
    writeFileSync(path, "{");
    expect(() => readState(path)).toThrow(`${path} is not JSON: remove it to start over`);
    // A held hostname becomes a path again at its removal: one that could leave OUT is refused like any other damage.
    const badHostname = { certificates: { a: { modified_on: "m", crt: "c", key: "k", hostname: "../../etc/passwd" } } };
    for (const bad of [[], { certificates: { a: { modified_on: 1 } } }, { certificates: {}, listed_iat: "7" }, badHostname, { certificates: {}, nginx_include: 1 }]) {
      writeFileSync(path, JSON.stringify(bad));
      expect(() => readState(path)).toThrow(`${path} is not an edge sync state: remove it to start over`);
    }
  });
});
