// The agent as a program: its command line in-process, then the built bin
// (dist/edge.mjs) and the launcher (scripts/edge.mjs) as an edge host runs
// them: exit codes, help, --watch stopped by SIGTERM, and a write cut short
// by the disk that leaves every file as it was.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EDGE_BIN } from "../build.mjs";
import { run } from "../src/cli.ts";
import { type Edge, capture, makeEdge, watchProcess } from "./harness.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
/** Debian's Node 20 when there is one besides the Node running the tests: the agent must run there. */
const NODES = [process.execPath, ...(existsSync("/usr/bin/node") ? ["/usr/bin/node"] : [])];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runFile(file: string, args: string[]): Promise<Ran> {
  return new Promise((done) => {
    execFile(file, args, { encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "edge-cli-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function runCaptured(argv: string[]) {
  const output = capture();
  const code = await run(argv, output);
  return { code, stdout: output.stdout.join("\n"), stderr: output.stderr.join("\n") };
}

describe("the command line", () => {
  it("--help prints the usage on stdout and exits 0, for the agent and each command", async () => {
    for (const argv of [["--help"], ["-h"], ["help"], ["init", "--help"], ["sync", "--help"], ["sync", "--zone", "z", "-h"]]) {
      const ran = await runCaptured(argv);
      expect([ran.code, ran.stderr], argv.join(" ")).toEqual([0, ""]);
      expect(ran.stdout, argv.join(" ")).toMatch(/^usage:\n {2}edge (init|sync) --dir DIR/);
    }
    const help = (await runCaptured(["sync", "--help"])).stdout;
    expect(help).toMatch(/--watch SECONDS +sync every SECONDS/);
    expect(help).toMatch(/--max-age SECONDS +refuse a signed listing or bundle signed more than SECONDS ago \(1-86400, default 300\)/);
  });

  it("a usage error says what is wrong, prints the usage on stderr, and exits 2", async () => {
    const cases: Array<[string[], string]> = [
      [[], "name a command"],
      [["renew"], "unknown command renew"],
      [["init"], "init needs --dir DIR"],
      [["init", "--dir", dir, "--curve", "P-384"], "--curve is X25519 (default) or P-256"],
      [["init", "--dir", dir, "--force", "--force"], "--force given twice"],
      [["sync", "--bogus"], "Unknown option '--bogus'"],
      [["sync", "--dir"], "Option '--dir <value>' argument missing"],
      [["sync", "--dir", "a", "--url", "https://x", "--zone", "z"], "sync needs --out"],
      [["sync", "--dir", "a", "--url", "https://x", "--zone", "z", "--out", "o"], "sync needs one of --token TOKEN or --token-file PATH"],
      [["sync", "--dir", "a", "--url", "https://x", "--zone", "z", "--out", "o", "--token", "t", "--token-file", "f"], "sync needs one of --token TOKEN or --token-file PATH"],
      [["sync", "--dir", "a", "--url", "https://x", "--zone", "z/..", "--out", "o", "--token", "t"], 'invalid zone id "z/.."'],
      [["sync", "--dir", "a", "--url", "https://x", "--zone", "z", "--out", "o", "--token", "t", "--watch", "0.5"], "--watch takes whole seconds from 1 to 86400"],
      ...["0", "86401", "1.5", "five", ""].map((value): [string[], string] => [
        ["sync", "--dir", "a", "--url", "https://x", "--zone", "z", "--out", "o", "--token", "t", "--max-age", value],
        "--max-age takes whole seconds from 1 to 86400",
      ]),
      [["sync", "--dir", "a", "--dir", "b"], "--dir given twice"],
      [["sync", "extra"], "Unexpected argument 'extra'"],
    ];
    for (const [argv, message] of cases) {
      const ran = await runCaptured(argv);
      expect(ran.code, argv.join(" ")).toBe(2);
      expect(ran.stdout).toBe("");
      expect(ran.stderr.split("\n")[0], argv.join(" ")).toMatch(new RegExp(`^edge: ${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      expect(ran.stderr).toContain("\nusage:\n  edge init --dir DIR");
    }
  });

  it("a failure that is not a usage error is one line on stderr and exits 1", async () => {
    const ran = await runCaptured(["sync", "--dir", dir, "--url", "http://csr.example", "--zone", "z", "--out", join(dir, "out"), "--token", "t"]);
    expect(ran).toEqual({ code: 1, stdout: "", stderr: "edge: --url http://csr.example is plain http:// to another host: the token would cross the network in the clear; use https://" });
    const missing = await runCaptured(["sync", "--dir", dir, "--url", "https://csr.example", "--zone", "z", "--out", join(dir, "out"), "--token-file", join(dir, "nope")]);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringMatching(/^edge: cannot read --token-file .*nope: ENOENT/)]);
    const noKey = await runCaptured(["sync", "--dir", dir, "--url", "https://csr.example", "--zone", "z", "--out", join(dir, "out"), "--token", "t"]);
    expect([noKey.code, noKey.stderr]).toEqual([1, `edge: no edge key at ${join(dir, "edge-key.pem")}: run "edge init --dir ${dir}" first`]);
  });

  it("init makes an X25519 or P-256 key (0600, in a 0700 directory), prints the public JWK last, and keeps an existing key unless --force", async () => {
    for (const [curve, jwk] of [["X25519", { kty: "OKP", crv: "X25519" }], ["P-256", { kty: "EC", crv: "P-256" }]] as const) {
      const keys = join(dir, curve);
      const ran = await runCaptured(["init", "--dir", keys, "--curve", curve]);
      expect(ran.code, ran.stderr).toBe(0);
      const printed = JSON.parse(ran.stdout.split("\n").at(-1)!) as Record<string, string>;
      expect(printed).toMatchObject(jwk);
      expect(printed).not.toHaveProperty("d");
      expect(JSON.parse(readFileSync(join(keys, "edge-key.pub.jwk"), "utf8"))).toEqual(printed);
      expect(statSync(join(keys, "edge-key.pem")).mode & 0o777).toBe(0o600);
      expect(statSync(keys).mode & 0o777).toBe(0o700);
      expect(ran.stderr).toMatch(/^edge: new .* key pair: private key .*edge-key\.pem \(mode 0600\), public key .*edge-key\.pub\.jwk\nedge: register it: PUT \/admin\/v1\/edges\/\{edge_id\}.*\nedge: thumbprint [A-Za-z0-9_-]{43}$/);
      expect(ran.stdout + ran.stderr).not.toMatch(/PRIVATE KEY/);
    }
    const key = readFileSync(join(dir, "X25519", "edge-key.pem"), "utf8");
    const again = await runCaptured(["init", "--dir", join(dir, "X25519")]);
    expect([again.code, again.stderr]).toEqual([1, expect.stringMatching(/edge-key\.pem exists: this edge already has a key \(--force replaces it/)]);
    expect(readFileSync(join(dir, "X25519", "edge-key.pem"), "utf8")).toBe(key);
    expect((await runCaptured(["init", "--dir", join(dir, "X25519"), "--force"])).code).toBe(0);
    expect(readFileSync(join(dir, "X25519", "edge-key.pem"), "utf8")).not.toBe(key);
  });

  it("refuses an edge key readable by others, as ssh does", async () => {
    await runCaptured(["init", "--dir", dir]);
    chmodSync(join(dir, "edge-key.pem"), 0o640);
    const ran = await runCaptured(["sync", "--dir", dir, "--url", "https://csr.example", "--zone", "z", "--out", join(dir, "out"), "--token", "t"]);
    expect(ran.stderr).toBe(`edge: ${join(dir, "edge-key.pem")} is readable by others (mode 640): chmod 600 it`);
  });
});

describe("the built bin", () => {
  let edge: Edge;
  beforeEach(async () => {
    edge = await makeEdge();
  });
  afterEach(() => edge.close());

  const syncArgs = (extra: string[] = []) => [
    "sync", "--dir", edge.dir, "--url", edge.service.url, "--token", edge.service.token, "--zone", edge.service.zone, "--out", edge.out,
    "--service-key", edge.service.serviceKey, ...extra,
  ];

  it.each(NODES)("runs on %s: help, a usage error, and a sync", async (node) => {
    const help = await runFile(node, [EDGE_BIN, "sync", "--help"]);
    expect([help.code, help.stderr]).toEqual([0, ""]);
    expect(help.stdout).toMatch(/^usage:\n {2}edge sync /);
    const bad = await runFile(node, [EDGE_BIN, "sync", "--nope"]);
    expect([bad.code, bad.stderr.split("\n")[0]]).toEqual([2, "edge: Unknown option '--nope'"]);
    const a = edge.service.add("a.example.com");
    const ran = await runFile(node, [EDGE_BIN, ...syncArgs()]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(new RegExp(`^${a.id} written hosts=a\\.example\\.com expires_on=\\S+\\nedge sync: zone zone-1, edge edge-1: 1 certificate, 1 written, 0 unchanged, 0 removed \\(\\d+ ms\\)\\n$`));
  });

  it("a stale signed reply exits 1 with one line saying so, and --max-age moves the bound", async () => {
    const a = edge.service.add("a.example.com");
    const signedAt = Math.floor(Date.now() / 1000) - 400;
    edge.service.iat = () => signedAt;
    const ran = await runFile(process.execPath, [EDGE_BIN, ...syncArgs()]);
    expect([ran.code, ran.stdout]).toEqual([1, ""]);
    expect(ran.stderr).toMatch(/^edge: the signed list was signed 40\d s ago, more than --max-age 300 s: refused as stale \(a replayed reply, or this host's clock is ahead of the service's\)\n$/);
    expect(edge.files()).toEqual([]);
    const longer = await runFile(process.execPath, [EDGE_BIN, ...syncArgs(["--max-age", "600"])]);
    expect(longer.code, longer.stderr).toBe(0);
    expect(longer.stdout).toMatch(new RegExp(`^${a.id} written `));
  });

  it("is one self-contained file: no import outside node's own modules", () => {
    const source = readFileSync(EDGE_BIN, "utf8");
    expect(source.startsWith("#!/usr/bin/env node\n")).toBe(true);
    const imports = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) expect(specifier).toMatch(/^node:/);
    expect(statSync(EDGE_BIN).mode & 0o111).not.toBe(0);
  });

  it("the launcher (npm run edge, the root package's bin) runs the same agent", async () => {
    const ran = await runFile(process.execPath, [join(ROOT, "scripts", "edge.mjs"), "init", "--help"]);
    expect([ran.code, ran.stderr]).toEqual([0, ""]);
    expect(ran.stdout).toMatch(/^usage:\n {2}edge init --dir DIR/);
    const help = await runFile(process.execPath, [join(ROOT, "scripts", "edge.mjs"), "--help"]);
    expect([help.code, help.stderr]).toEqual([0, ""]);
    expect(help.stdout).toMatch(/^usage:\n {2}edge init .*\n {2}edge sync /);
    const bad = await runFile(process.execPath, [join(ROOT, "scripts", "edge.mjs"), "--bogus"]);
    expect([bad.code, bad.stderr.split("\n")[0]]).toEqual([2, "edge: unknown command --bogus"]);
  });

  it("--watch syncs on its interval, reports a failed run and tries again, and exits 0 on SIGTERM", async () => {
    const a = edge.service.add("a.example.com");
    const marker = join(edge.root, "reloaded");
    const { child: watcher, out, exited, until } = watchProcess(EDGE_BIN, syncArgs(["--watch", "1", "--reload", `echo >> ${marker}`]));
    try {
      await until(() => /1 written, 0 unchanged, 0 removed, reloaded/.test(out.stdout));
      edge.service.override = () => ({ status: 503, body: JSON.stringify({ success: false, errors: [{ code: 1502, message: "unavailable" }] }) });
      await until(() => /edge: sync failed: listing failed: 503 1502 unavailable; next try in 1 s/.test(out.stderr));
      edge.service.override = null;
      edge.service.renew(a.id);
      await until(() => (out.stdout.match(/reloaded/g) ?? []).length === 2);
    } finally {
      watcher.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(readFileSync(marker, "utf8")).toBe("\n\n");
    expect(existsSync(join(edge.out, ".edge-sync-zone-1.lock"))).toBe(false);
  });

  it("a write the disk cuts short (a file size limit) fails the sync and leaves every file as it was", async () => {
    const a = edge.service.add("a.example.com");
    expect((await runFile(process.execPath, [EDGE_BIN, ...syncArgs()])).code).toBe(0);
    const before = edge.files();
    // A renewal whose chain outgrows the limit: its key is staged first, then its chain fails part-way.
    const renewed = edge.service.renew(a.id);
    edge.service.certificates.set(a.id, { ...renewed, certificate: renewed.certificate + edge.service.ca.pem.repeat(3) });
    const quoted = [process.execPath, EDGE_BIN, ...syncArgs()].map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(" ");
    // 2 blocks of 512 bytes (POSIX sh): the state file fits, a 2.5 kB chain does not.
    const ran = await runFile("/bin/sh", ["-c", `ulimit -f 2 && exec ${quoted}`]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(new RegExp(`^edge: writing into ${edge.out} failed, nothing changed: EFBIG`));
    expect(edge.files()).toEqual(before);
    expect(readFileSync(join(edge.out, `${a.id}.crt`), "utf8")).toBe(a.certificate);
  });
});
