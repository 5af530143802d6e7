// An edge runs for months: its delivery token's lifetime, said well before
// it ends; the --token-file read at every sync, so replacing it renews the
// token (--watch included); and the operator's token tool, whose --ttl mints
// a token that lasts (scripts/token.mjs, run as an operator runs it).
import { execFile } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EDGE_BIN } from "../build.mjs";
import { run } from "../src/cli.ts";
import { DEFAULT_TOKEN_WARN_DAYS, readTokenFile, tokenExpiry, tokenLifetime } from "../src/token.ts";
import { type Edge, capture, failure, makeEdge, success, watchProcess } from "./harness.ts";
import { tokenWith } from "./service.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const DAY = 86_400_000;
const NOW = Date.parse("2031-03-01T12:00:00.000Z");
const WHO = { edge: "edge-1", zone: "zone-1" };
/** A token for edge-1 that expires `ms` after NOW. */
const expiringIn = (ms: number, now = NOW) => tokenWith({ edge_id: "edge-1", exp: Math.floor((now + ms) / 1000) });

describe("the token's lifetime", () => {
  it("says nothing of a token far from its expiry, or of one that names none", () => {
    expect(DEFAULT_TOKEN_WARN_DAYS).toBe(30);
    expect(tokenLifetime(expiringIn(31 * DAY), WHO, NOW, 30)).toBeNull();
    expect(tokenLifetime(tokenWith({ edge_id: "edge-1" }), WHO, NOW, 30)).toBeNull();
    expect(tokenLifetime(tokenWith({ edge_id: "edge-1", exp: "soon" }), WHO, NOW, 30)).toBeNull();
    expect(tokenExpiry(expiringIn(DAY))).toBe(NOW + DAY);
  });

  it("warns within --token-warn days, in whole days left, saying how to renew; 0 days never warns", () => {
    expect(tokenLifetime(expiringIn(30 * DAY), WHO, NOW, 30)).toBe(
      "edge: warning: the delivery token expires at 2031-03-31T12:00:00.000Z, in 30 days: mint a new one " +
        "(npm run --silent token -- --edge edge-1 --zone zone-1 ... --ttl 365d) and replace the --token-file with it (read at every sync)",
    );
    expect(tokenLifetime(expiringIn(DAY + 5000), WHO, NOW, 30)).toMatch(/, in 1 day: mint/);
    expect(tokenLifetime(expiringIn(3_600_000), WHO, NOW, 30)).toMatch(/, in less than a day: mint/);
    expect(tokenLifetime(expiringIn(10 * DAY), WHO, NOW, 5)).toBeNull();
    expect(tokenLifetime(expiringIn(1000), WHO, NOW, 0)).toBeNull();
  });

  it("refuses an expired token, whatever --token-warn says", () => {
    for (const days of [0, 30]) {
      expect(() => tokenLifetime(expiringIn(0), WHO, NOW, days)).toThrow(
        "the delivery token expired at 2031-03-01T12:00:00.000Z: mint a new one (npm run --silent token -- --edge edge-1 --zone zone-1 ... --ttl 365d) and replace the --token-file with it (read at every sync)",
      );
    }
  });
});

describe("a sync and its token", () => {
  let edge: Edge;
  let tokenFile: string;
  beforeEach(async () => {
    edge = await makeEdge();
    edge.service.add("a.example.com");
    tokenFile = join(edge.root, "token");
  });
  afterEach(() => edge.close());

  it("warns on stderr about a token near its end and syncs; refuses an expired one before any request", async () => {
    // The clock the sync reads (signed replies are checked on it too, so it is the real one, fixed for the run).
    const at = Date.now();
    const now = () => at;
    const near = success(await edge.sync({ token: expiringIn(10 * DAY + 5000, at) }, { now }));
    expect(near.written).toBe(1);
    const expiry = new Date(Math.floor((at + 10 * DAY + 5000) / 1000) * 1000).toISOString();
    expect(near.stderr).toEqual([expect.stringMatching(new RegExp(`^edge: warning: the delivery token expires at ${expiry}, in 10 days: `))]);
    expect(success(await edge.sync({ token: expiringIn(10 * DAY, at), tokenWarnDays: 7 }, { now })).stderr).toEqual([]);

    edge.service.requests.length = 0;
    const expired = await edge.sync({ token: expiringIn(-1000, at) }, { now });
    expect(failure(expired)).toMatch(/^the delivery token expired at \S+: mint a new one/);
    expect(edge.service.requests).toEqual([]);
  });

  it("reads --token-file at every sync: replacing the file renews the token", async () => {
    const soon = expiringIn(5 * DAY, Date.now());
    const later = expiringIn(365 * DAY, Date.now());
    writeFileSync(tokenFile, `${soon}\n`, { mode: 0o600 });
    const first = success(await edge.sync({ token: "unused", tokenFile }));
    expect(first.stderr).toEqual([expect.stringMatching(/^edge: warning: the delivery token expires at .*, in [45] days: /)]);
    expect(new Set(edge.service.authorizations)).toEqual(new Set([`Bearer ${soon}`]));

    writeFileSync(tokenFile, `${later}\n`);
    edge.service.authorizations.length = 0;
    const second = success(await edge.sync({ token: "unused", tokenFile }));
    expect(second.stderr).toEqual([]);
    expect(edge.service.authorizations).toEqual([`Bearer ${later}`]);
  });

  it("warns when the token file is readable or writable by group or others, and still syncs", async () => {
    writeFileSync(tokenFile, edge.service.token, { mode: 0o600 });
    expect(success(await edge.sync({ tokenFile })).stderr).toEqual([]);
    for (const mode of [0o640, 0o604, 0o620]) {
      chmodSync(tokenFile, mode);
      const synced = success(await edge.sync({ tokenFile }));
      expect(synced.stderr).toEqual([`edge: warning: --token-file ${tokenFile} can be read or written by group or others (mode 0${mode.toString(8)}): chmod 600 it`]);
    }
    // Read without a place to warn (the command line's first read), it says nothing.
    expect(readTokenFile(tokenFile)).toBe(edge.service.token);
  });

  it("--token-warn takes whole days from 0 to 366", async () => {
    const base = ["sync", "--dir", edge.dir, "--url", edge.service.url, "--token", edge.service.token, "--zone", "zone-1", "--out", edge.out];
    for (const value of ["-1", "367", "1.5", "soon", ""]) {
      const output = capture();
      expect(await run([...base, `--token-warn=${value}`], output), value).toBe(2);
      expect(output.stderr.join("\n").split("\n")[0]).toBe("edge: --token-warn takes whole days from 0 to 366");
    }
    const output = capture();
    expect(await run([...base, "--service-key", edge.service.serviceKey, "--token-warn", "0"], output)).toBe(0);
  });

  it("under --watch, a token file replaced while it runs is what the next run sends", async () => {
    const soon = expiringIn(3 * DAY, Date.now());
    const later = expiringIn(365 * DAY, Date.now());
    writeFileSync(tokenFile, soon, { mode: 0o600 });
    const { child: watcher, out, exited, until } = watchProcess(EDGE_BIN, [
      "sync", "--dir", edge.dir, "--url", edge.service.url, "--token-file", tokenFile, "--zone", "zone-1", "--out", edge.out, "--service-key", edge.service.serviceKey, "--watch", "1",
    ]);
    try {
      await until(() => /in [23] days: mint a new one/.test(out.stderr) && /1 written/.test(out.stdout));
      expect(edge.service.authorizations.every((a) => a === `Bearer ${soon}`)).toBe(true);
      writeFileSync(tokenFile, later);
      await until(() => edge.service.authorizations.includes(`Bearer ${later}`));
      const warnings = (out.stderr.match(/warning/g) ?? []).length;
      // One more run with the new token: no new warning.
      const runs = (out.stdout.match(/^edge sync:/gm) ?? []).length;
      await until(() => (out.stdout.match(/^edge sync:/gm) ?? []).length >= runs + 2);
      expect((out.stderr.match(/warning/g) ?? []).length).toBe(warnings);
    } finally {
      watcher.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});

/** The project's token tool, as an operator runs it, with a signing secret in its environment. */
function tokenTool(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(ROOT, "scripts", "token.mjs"), ...args],
      { encoding: "utf8", env: { ...process.env, API_TOKEN_SECRET: "a-test-secret-of-some-length-0123456789" }, timeout: 30_000 },
      (error, stdout, stderr) => done({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

const lifetime = (token: string): number => {
  const claims = JSON.parse(Buffer.from(token.trim().split(".")[1]!, "base64url").toString("utf8")) as { iat: number; exp: number };
  return claims.exp - claims.iat;
};

describe("the token tool's --ttl (scripts/token.mjs)", () => {
  it("takes seconds, or s, h and d; an edge token lasts 365 days unless told, an API token one day", async () => {
    const cases: Array<[string[], number]> = [
      [["--edge", "fra-1", "--zone", "z1", "--ttl", "365d"], 365 * 86_400],
      [["--edge", "fra-1", "--zone", "z1", "--ttl", "30d"], 30 * 86_400],
      [["--edge", "fra-1", "--zone", "z1", "--ttl", "12h"], 12 * 3600],
      [["--edge", "fra-1", "--zone", "z1", "--ttl", "3600s"], 3600],
      [["--edge", "fra-1", "--zone", "z1", "--ttl", "3600"], 3600],
      [["--edge", "fra-1", "--zone", "z1", "--ttl", "366d"], 366 * 86_400],
      [["--edge", "fra-1", "--zone", "z1"], 365 * 86_400],
      [["--zone", "z1"], 86_400],
      [["--zone", "z1", "--ttl", "1"], 1],
    ];
    for (const [args, seconds] of cases) {
      const ran = await tokenTool(args);
      expect([ran.code, ran.stderr], args.join(" ")).toEqual([0, ""]);
      expect(lifetime(ran.stdout), args.join(" ")).toBe(seconds);
    }
  });

  it("refuses anything else with exit 2 and says what it takes", async () => {
    for (const value of ["0", "0d", "-1", "1.5d", "30m", "6mo", "1w", "d", "30 d", " 30d", "30D", "1e5", "0x10", "367d", "31622401", "8785h", ""]) {
      const ran = await tokenTool(["--edge", "fra-1", "--zone", "z1", "--ttl", value]);
      expect(ran.code, JSON.stringify(value)).toBe(2);
      expect(ran.stdout).toBe("");
      expect(ran.stderr.split("\n")[0], JSON.stringify(value)).toBe("token: --ttl takes 3600 or 3600s (seconds), 12h (hours) or 30d (days), from 1 s to 366d (31622400 s)");
    }
  });
});
