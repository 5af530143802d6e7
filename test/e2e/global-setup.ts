// Runs once in the main vitest process: checks the outside tools the suite
// relies on, makes the suite's temp root with its copy of the project (built
// once), and in teardown kills any server a crashed test file left behind
// and removes the root.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { PID_DIR, buildApp, killGroup, snapshotApp } from "./server";
import { NGINX, OPENSSL, PYTHON } from "./checkers";

declare module "vitest" {
  export interface ProvidedContext {
    /** The suite's temp root: one subdirectory per server. */
    e2eRoot: string;
  }
}

function preflight(): void {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 22) {
    throw new Error(`e2e needs Node 22+ for wrangler (got ${process.version}); run it through npm exec / npm run`);
  }
  try {
    execFileSync(OPENSSL, ["version"], { stdio: "pipe" });
  } catch {
    throw new Error(`e2e needs OpenSSL at ${OPENSSL} (apt-get install openssl)`);
  }
  try {
    execFileSync(PYTHON, ["-c", "import cryptography.x509"], { stdio: "pipe" });
  } catch {
    throw new Error(`e2e needs ${PYTHON} with the cryptography package (apt-get install python3-cryptography)`);
  }
  try {
    execFileSync(NGINX, ["-v"], { stdio: "pipe" });
  } catch {
    throw new Error(`e2e needs nginx at ${NGINX} for the TLS proxy test (apt-get install nginx)`);
  }
}

function reap(root: string): void {
  let pids: string[] = [];
  try {
    pids = readdirSync(join(root, PID_DIR));
  } catch {
    return;
  }
  for (const pid of pids) {
    const n = Number(pid);
    if (Number.isInteger(n) && n > 1) killGroup(n, "SIGKILL");
  }
}

/** Vitest global setup: provides `e2eRoot`, returns the teardown. */
export default async function setup(project: TestProject): Promise<() => void> {
  preflight();
  const root = mkdtempSync(join(tmpdir(), "csr-e2e-"));
  // One copy of the project for every file, so the whole run tests one
  // version; built here, so no server start in a test includes the build.
  await buildApp(snapshotApp(root));
  project.provide("e2eRoot", root);
  const teardown = (): void => {
    reap(root);
    if (!process.env.E2E_KEEP_TMP) rmSync(root, { recursive: true, force: true });
  };
  // Also on Ctrl-C of the runner, so no server outlives the run.
  process.once("exit", teardown);
  return teardown;
}
