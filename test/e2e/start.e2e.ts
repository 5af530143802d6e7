// `npm start` as an operator meets it: flags and their usage errors, the
// .dev.vars it creates and the example request it prints, its log lines,
// /healthz and /readyz, the data directory it refuses to share, and how it
// stops: SIGTERM and SIGINT let in-flight requests finish and exit 0, a
// drain past its bound is cut off, and no acknowledged write is lost.
import { execFile } from "node:child_process";
import { get as httpGet, request as httpRequest } from "node:http";
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CsrRecord, type Reply, admin, call, csrBody, expectEnvelope } from "./api";
import { mintToken, scopeId } from "./credentials";
import { type TestServer, npmRun, snapshotApp, startServer } from "./server";

const root = inject("e2eRoot");
const REQUEST_LOG_FIELDS = ["level", "request_id", "method", "route", "scope", "principal", "status", "duration_ms"];

/** The JSON lines of a log, each parsed; any other line fails the test, except those `allow` accepts. */
function jsonLines(text: string, allow: (line: string) => boolean = () => false): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || allow(line)) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
    out.push(parsed as Record<string, unknown>);
  }
  return out;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("flags", () => {
  const app = snapshotApp(root);
  const cases: Array<[string[], RegExp]> = [
    [["--port", "0"], /--port must be an integer from 1 to 65535/],
    [["--port", "80a"], /--port must be an integer/],
    [["--port"], /--port/],
    [["--host", "not a host!"], /--host must be an IP address or a host name/],
    [["--log-level", "loud"], /--log-level must be one of debug, info, warn, error/],
    [["--drain-timeout", "-1"], /--drain-timeout/],
    [["--data-dir", "a", "--persist-to", "b"], /--persist-to is another name for --data-dir/],
    [["--ip", "0.0.0.0"], /--ip is not a flag of npm start .*use --host/],
    [["--local"], /not a flag of npm start/],
    [["--verbose"], /Unknown option '--verbose'/],
    [["stray"], /Unexpected argument 'stray'/],
  ];
  it.each(cases)("npm start -- %j is a usage error (exit 2) that says what is wrong", async (args, message) => {
    const run = await npmRun(app, "start", args);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain("usage: npm start --");
    expect(run.stdout).toBe("");
  });

  it("--help prints the usage and exits 0", async () => {
    const run = await npmRun(app, "start", ["--help"]);
    expect(run.code).toBe(0);
    for (const flag of ["--port", "--host", "--data-dir", "--persist-to", "--log-level", "--drain-timeout"]) expect(run.stdout).toContain(flag);
  });
});

describe("a first start on a fresh checkout", () => {
  // A project copy of its own: no .dev.vars, no data/, no dist/.
  const app = snapshotApp(root, "app-fresh");
  let server: TestServer;

  beforeAll(async () => {
    expect(existsSync(join(app, ".dev.vars"))).toBe(false);
    server = await startServer({ root, name: "fresh", app, dataDir: null, secretsInEnv: false });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("builds dist/workerd, creates .dev.vars (0600) with every secret, and serves ./data", async () => {
    const vars = readFileSync(join(app, ".dev.vars"), "utf8");
    expect(statSync(join(app, ".dev.vars")).mode & 0o777).toBe(0o600);
    for (const name of ["KEY_ENCRYPTION_KEYS", "API_TOKEN_SECRET", "ADMIN_SECRET", "GLOBAL_API_KEYS"]) expect(vars).toMatch(new RegExp(`^${name}='.+'$`, "m"));
    expect(existsSync(join(app, "dist", "workerd", "config.capnp"))).toBe(true);
    expect(existsSync(join(app, "data", "v3", "do"))).toBe(true);
    expect(statSync(join(app, "data")).mode & 0o777).toBe(0o700);
    // The generated config holds no secret value.
    const config = readFileSync(join(app, "dist", "workerd", "config.capnp"), "utf8");
    for (const line of vars.split("\n").filter((l) => l.includes("="))) {
      const value = line.slice(line.indexOf("=") + 2, -1);
      if (value.length > 8) expect(config).not.toContain(value);
    }
    const events = jsonLines(server.stdout(), (l) => !l.startsWith("{")).map((l) => l.event);
    expect(events.slice(0, 3)).toEqual(["building", "built", "listening"]);
  });

  it("prints an example request that works as printed", async () => {
    const lines = server.stdout().split("\n");
    const exportLine = lines.find((l) => l.trim().startsWith("export CLOUDFLARE_API_TOKEN="));
    const at = lines.findIndex((l) => l.trim().startsWith("curl -s "));
    expect(exportLine, server.stdout()).toBeDefined();
    expect(at, server.stdout()).toBeGreaterThan(-1);
    // The command as printed: a curl continued over three lines.
    const curl = lines.slice(at, at + 3).join("\n");
    expect(curl).toMatch(/^\s*curl -s http:\/\/127\.0\.0\.1:\d+\/client\/v4\/zones\/demo-zone\/custom_csrs \\\n.*\\\n\s*-d '\{.*\}'$/);
    const { stdout } = await promisify(execFile)("/bin/sh", ["-c", `${exportLine}\n${curl}`]);
    const reply = JSON.parse(stdout) as { success: boolean; result: CsrRecord };
    expect(reply.success).toBe(true);
    expect(reply.result.common_name).toBe("app.customer-one.com");
  });

  it("logs one JSON line per request on stdout with the request fields, and nothing on stderr", async () => {
    const before = jsonLines(server.stdout(), (l) => !l.startsWith("{")).length;
    const token = mintToken(readFileSync(join(app, ".dev.vars"), "utf8").match(/^API_TOKEN_SECRET='(.+)'$/m)![1]!, { zones: ["demo-zone"] });
    await call(server.origin, "GET", "/healthz");
    await call(server.origin, "GET", "/client/v4/zones/demo-zone/custom_csrs", { token });
    await call(server.origin, "GET", "/client/v4/zones/demo-zone/custom_csrs", { token: "not-a-token" });
    await new Promise((r) => setTimeout(r, 200));
    const lines = jsonLines(server.stdout(), (l) => !l.startsWith("{")).slice(before);
    expect(lines.map((l) => Object.keys(l))).toEqual([REQUEST_LOG_FIELDS, REQUEST_LOG_FIELDS, REQUEST_LOG_FIELDS]);
    expect(lines.map((l) => [l.level, l.route, l.status])).toEqual([
      ["info", "/healthz", 200],
      ["info", "/client/v4/zones/:scopeId/custom_csrs", 200],
      // Refused before routing (credentials come first): no route to name.
      ["info", null, 401],
    ]);
    // Nothing at warn or above on a normal offline start: no line at all on
    // stderr (where workerd's own warnings and the Worker's errors go), and
    // no Request.cf stack trace anywhere.
    expect(server.stderr()).toBe("");
    expect(server.stdout()).not.toMatch(/Request\.cf|\n\s+at /);
    // The credential is never logged, only what names it.
    expect(server.stdout()).not.toContain(token);
  });
});

describe("readiness and logging of a running server", () => {
  it("--log-level warn: no line on stdout at all, requests are still served", async () => {
    const server = await startServer({ root, name: "quiet", args: ["--log-level", "warn"] });
    try {
      for (let i = 0; i < 3; i++) expect((await call(server.origin, "GET", "/healthz")).status).toBe(200);
      expect(server.stdout()).toBe("");
      expect(server.stderr()).toBe("");
    } finally {
      await server.stop();
    }
  });

  it("a malformed KEY_ENCRYPTION_KEYS: /healthz 200, /readyz 503 with 1501, creates 503 with 1501", async () => {
    const server = await startServer({ root, name: "bad-kek", secrets: { KEY_ENCRYPTION_KEYS: "k1:not-a-key" }, waitReady: false });
    try {
      const live = await eventually("/healthz", async () => {
        const reply = await call(server.origin, "GET", "/healthz");
        return reply.status === 200 ? reply : undefined;
      });
      expectEnvelope(live);
      const ready = await call(server.origin, "GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body!.errors.map((e) => e.code)).toEqual([1501]);
      expect(ready.headers.get("content-type")).toMatch(/^application\/json/);
      const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["kek-zone"] });
      const create = await call(server.origin, "POST", "/client/v4/zones/kek-zone/custom_csrs", { token, json: csrBody() });
      expect({ status: create.status, codes: create.body!.errors.map((e) => e.code) }).toEqual({ status: 503, codes: [1501] });
      // The failure is logged at error, without the secret's value.
      expect(server.stderr()).toMatch(/"level":"error"/);
      expect(server.stderr()).not.toContain("not-a-key");
    } finally {
      await server.stop();
    }
  });

  it("storage that cannot be used: /readyz 503 with 1502, and no tenant object is created by the probe", async () => {
    const server = await startServer({ root, name: "bad-storage" });
    const probeDir = join(server.dataDir, "v3", "do", "custom-csr-api-ReadinessProbe");
    const tenantDir = join(server.dataDir, "v3", "do", "custom-csr-api-TenantStore");
    expect((await call(server.origin, "GET", "/readyz")).status).toBe(200);
    // The probe wrote only its own database.
    expect(readdirSync(probeDir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")).toHaveLength(1);
    expect(existsSync(tenantDir) ? readdirSync(tenantDir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite") : []).toEqual([]);
    await server.stop();
    // Its database becomes something SQLite cannot open.
    for (const f of readdirSync(probeDir)) {
      if (f === "metadata.sqlite") continue;
      if (f.endsWith(".sqlite")) writeFileSync(join(probeDir, f), "this is not an SQLite database ".repeat(200));
      else rmSync(join(probeDir, f));
    }
    const broken = await startServer({ root, name: "bad-storage", dataDir: server.dataDir, secrets: server.secrets, waitReady: false });
    try {
      await eventually("/healthz", async () => ((await call(broken.origin, "GET", "/healthz")).status === 200 ? true : undefined));
      const ready = await call(broken.origin, "GET", "/readyz");
      expect(ready.status, ready.text).toBe(503);
      expect(ready.body!.errors.map((e) => e.code)).toEqual([1502]);
      expect(ready.body).toMatchObject({ success: false, messages: [], result: null });
      expect(ready.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      // The log line is written by workerd before the reply, but reaches the log file through a pipe the
      // test reads asynchronously: wait for it rather than read the file at once.
      await eventually("the readiness failure in the log", async () =>
        /"event":"readiness_probe_failed"|"event":"readiness_storage_failed"/.test(broken.stderr()) ? true : undefined,
      );
    } finally {
      await broken.stop();
    }
  });

  it("npm run token signs with the API_TOKEN_SECRET of the environment, as npm start takes it", async () => {
    const server = await startServer({ root, name: "token-env" });
    try {
      const zone = scopeId("tok");
      const minted = await npmRun(snapshotApp(root), "token", ["--zone", zone, "--ttl", "60"], { API_TOKEN_SECRET: server.secrets.API_TOKEN_SECRET });
      expect(minted.code, minted.stderr).toBe(0);
      const reply = await call(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs`, { token: minted.stdout.trim() });
      expect(reply.status, reply.text).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it("a data directory is served by one npm start at a time", async () => {
    const server = await startServer({ root, name: "owner" });
    try {
      const app = snapshotApp(root);
      const second = await npmRun(app, "start", ["--port", "1", "--data-dir", server.dataDir], server.secrets as unknown as Record<string, string>);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/is in use by another npm start \(pid \d+\)/);
      expect((await call(server.origin, "GET", "/readyz")).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

/** GET /healthz on a connection of its own (no keep-alive pool): its status, or "refused" (refused, reset, or no answer in 5 s). */
function probe(origin: string): Promise<number | "refused"> {
  return new Promise((done) => {
    const request = httpGet(`${origin}/healthz`, { agent: false, timeout: 5_000 }, (response) => {
      response.resume();
      response.on("end", () => done(response.statusCode ?? 0));
    });
    request.on("error", () => done("refused"));
    request.on("timeout", () => request.destroy());
  });
}

/**
 * A create whose body arrives in two halves, the second only when `finish`
 * is called: a request in flight that keeps no CPU busy, so workerd is idle
 * and takes a signal at once.
 */
function slowCreate(origin: string, path: string, token: string): { finish: () => void; reply: Promise<{ status: number; text: string } | Error> } {
  const body = Buffer.from(JSON.stringify(csrBody({ name: "slow upload" })));
  let finish = (): void => {};
  const reply = new Promise<{ status: number; text: string } | Error>((done) => {
    const request = httpRequest(`${origin}${path}`, {
      method: "POST",
      agent: false,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": body.length },
    });
    request.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => done({ status: response.statusCode ?? 0, text }));
      response.on("error", (error) => done(error));
    });
    request.on("error", (error) => done(error));
    request.write(body.subarray(0, body.length >> 1));
    finish = () => request.end(body.subarray(body.length >> 1));
  });
  return { finish: () => finish(), reply };
}

describe("stopping", () => {
  /**
   * A server as the systemd unit runs it (node scripts/start.mjs: npm would
   * report the signal it received instead of the launcher's exit code), with
   * a zone, a token, and every CSR it acknowledged (id -> the result's JSON).
   */
  async function drainServer(name: string, args: string[] = []) {
    const zone = scopeId("drain");
    const server = await startServer({ root, name, args, launcher: "node" });
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] });
    const path = `/client/v4/zones/${zone}/custom_csrs`;
    const acknowledged = new Map<string, string>();
    const remember = (reply: { status: number; text: string } | Error): void => {
      if (!(reply instanceof Error) && reply.status === 201) {
        const result = (JSON.parse(reply.text) as { result: CsrRecord }).result;
        acknowledged.set(result.id, JSON.stringify(result));
      }
    };
    return {
      server,
      token,
      path,
      acknowledged,
      remember,
      /** n rsa2048 creates at once (50–400 ms of key generation each, queued on workerd's one JavaScript thread). */
      burst(n: number): Array<Promise<Reply<CsrRecord> | Error>> {
        return Array.from({ length: n }, (_, i) =>
          call<CsrRecord>(server.origin, "POST", path, { token, json: csrBody({ key_type: "rsa2048", name: `drain ${i}` }) }).then(
            (reply) => {
              remember(reply);
              return reply;
            },
            (error: Error) => error,
          ),
        );
      },
      /** Every acknowledged CSR is stored byte for byte, and its key passes the self-check. */
      async expectAcknowledgedStored(): Promise<void> {
        expect(acknowledged.size).toBeGreaterThan(0);
        const list = await call<CsrRecord[]>(server.origin, "GET", `${path}?per_page=5`, { token });
        expect(list.body!.result_info!.total_count).toBe(acknowledged.size);
        for (const [id, json] of acknowledged) {
          const got = await call<CsrRecord>(server.origin, "GET", `${path}/${id}`, { token });
          expect(got.status, `GET ${id}`).toBe(200);
          expect(JSON.stringify(got.body!.result)).toBe(json);
          const verify = await admin<{ ok: boolean }>(server.origin, server.secrets.ADMIN_SECRET, "POST", `/zones/${zone}/custom_csrs/${id}/verify`);
          expect(verify.body!.result.ok).toBe(true);
        }
      },
      stopEvents: () => jsonLines(server.stdout(), (l) => !l.startsWith("{")).map((l) => l.event).filter(Boolean),
      /** The launcher exited 0 after logging stopping and stopped; after a restart every acknowledged CSR is there. */
      async expectCleanStop(): Promise<void> {
        expect(server.exit).toEqual({ code: 0, signal: null });
        expect(this.stopEvents().slice(-2)).toEqual(["stopping", "stopped"]);
        await server.restart();
        await this.expectAcknowledgedStored();
      },
    };
  }

  it("SIGTERM: nothing new is served, the request in flight finishes (201), exit 0, and it is stored", async () => {
    const d = await drainServer("drain-sigterm");
    try {
      const origin = d.server.origin;
      const upload = slowCreate(origin, d.path, d.token);
      await new Promise((r) => setTimeout(r, 300));
      // To the whole process group (node and workerd), as systemd stops a unit.
      const stopped = d.server.stop("SIGTERM");
      await new Promise((r) => setTimeout(r, 200));
      // workerd stops accepting at once, though its socket stays bound: a
      // new connection waits in the kernel's queue, unanswered, and is reset
      // when workerd exits.
      let answered: number | "refused" | null = null;
      const late = probe(origin).then((result) => (answered = result));
      await new Promise((r) => setTimeout(r, 700));
      expect(answered).toBeNull();
      expect(d.server.exit).toBeNull();
      upload.finish();
      const reply = await upload.reply;
      d.remember(reply);
      expect(reply instanceof Error ? reply.message : reply.status).toBe(201);
      await stopped;
      expect(await late).toBe("refused");
      await d.expectCleanStop();
    } finally {
      await d.server.stop("SIGKILL");
    }
  });

  it("SIGINT (Ctrl-C) during a burst of 16 rsa2048 creates: each one gets its 201, exit 0, all stored", async () => {
    const d = await drainServer("drain-sigint");
    try {
      const burst = d.burst(16);
      // Sent and in the server's hands well before 16 RSA keys can be made.
      await new Promise((r) => setTimeout(r, 400));
      // A terminal sends Ctrl-C to the whole foreground group: node and
      // workerd (which ignores it, and drains on the SIGTERM node sends).
      const stopped = d.server.stop("SIGINT");
      const results = await Promise.all(burst);
      await stopped;
      expect(results.map((r) => (r instanceof Error ? r.message : r.status))).toEqual(Array(16).fill(201));
      await d.expectCleanStop();
    } finally {
      await d.server.stop("SIGKILL");
    }
  });

  it("a drain past --drain-timeout is cut off (exit 1, logged at error); nothing acknowledged is lost", async () => {
    const d = await drainServer("drain-bounded", ["--drain-timeout", "1"]);
    try {
      for (const reply of await Promise.all(d.burst(3))) expect(reply instanceof Error ? reply.message : reply.status).toBe(201);
      // A request that never completes holds the drain open.
      const upload = slowCreate(d.server.origin, d.path, d.token);
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      await d.server.stop("SIGTERM");
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(5_000);
      expect(await upload.reply).toBeInstanceOf(Error);
      expect(d.server.exit).toEqual({ code: 1, signal: null });
      expect(d.server.stderr()).toMatch(/"level":"error","event":"drain_timeout"/);
      await d.server.restart();
      await d.expectAcknowledgedStored();
    } finally {
      await d.server.stop("SIGKILL");
    }
  });
});
