// The README's tour, executed: every ```sh tour block of README.md, in order,
// as one bash script (set -euo pipefail), in a copy of the project where
// `npm start` runs as the tour assumes (its own .dev.vars, ./data), with a
// real nginx and OpenSSL. The README cannot drift from the product: a
// command that stops working fails this test. Prints how long the walk took
// and how many commands it has.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT, type TestServer, freePort, projectEnv, snapshotApp, startServer } from "./server";
import { runAsync } from "./tls-edge";

/** The tour's blocks, in README order. */
export function tourBlocks(readme: string): string[] {
  return [...readme.matchAll(/^```sh tour\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

let app: string;
let server: TestServer;

describe("README.md's tour, run as written", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    app = snapshotApp(root, "tour-app");
    // As the quick start has it: npm start in the project, its secrets in the .dev.vars it makes.
    server = await startServer({ root, name: "tour", app, port: await freePort(), dataDir: null, secretsInEnv: false });
  }, 120_000);

  afterAll(async () => {
    // The tour stops its nginx last; after a failure half-way, this does.
    if (app && existsSync(join(app, "tour", "nginx", "logs", "nginx.pid"))) {
      await runAsync("/usr/sbin/nginx", ["-p", join(app, "tour", "nginx"), "-e", "logs/error.log", "-c", "nginx.conf", "-s", "stop"]).catch(() => undefined);
    }
    await server?.stop();
  });

  it("every block runs, in order, and ends with nginx serving the certificate, verified, and a backup restored", async () => {
    const blocks = tourBlocks(readFileSync(join(REPO_ROOT, "README.md"), "utf8"));
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    const commands = blocks.flatMap((b) => b.replace(/\\\n/g, " ").split("\n")).filter((line) => line.trim() !== "" && !line.trim().startsWith("#")).length;
    const script = ["set -euo pipefail", ...blocks].join("\n");
    const started = performance.now();
    const ran = await runAsync("bash", ["-c", script], {
      cwd: app,
      env: projectEnv(app, { API: server.origin, TLS_PORT: String(await freePort()), PATH: `${join(app, "node_modules", ".bin")}:/usr/sbin:/sbin:${process.env.PATH ?? ""}` }),
      timeoutMs: 240_000,
    });
    const seconds = (performance.now() - started) / 1000;
    expect(ran.code, `${ran.stdout}\n${ran.stderr}\n${server.logTail(20)}`).toBe(0);
    expect(ran.stdout).toContain("Verify return code: 0 (ok)");
    // What the walk left: the pair on the edge (the key 0600), and a restored data directory.
    const certificate = JSON.parse(readFileSync(join(app, "tour", "certificate.json"), "utf8")) as { result: { id: string } };
    const key = join(app, "tour", "certs", `${certificate.result.id}.key`);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(existsSync(join(app, "tour", "restored", "v3", "do"))).toBe(true);
    // The secrets it used are in no output of the walk.
    const secrets = readFileSync(join(app, ".dev.vars"), "utf8").match(/^(ADMIN_SECRET|API_TOKEN_SECRET|KEY_ENCRYPTION_KEYS)='(.*)'$/gm) ?? [];
    expect(secrets.length).toBe(3);
    for (const line of secrets) expect(`${ran.stdout}${ran.stderr}`).not.toContain(line.slice(line.indexOf("'") + 1, -1));
    console.log(`readme tour: ${blocks.length} blocks, ${commands} commands, ${seconds.toFixed(1)} s`);
  });
});
