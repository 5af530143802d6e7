// One edge per test: a temporary directory with the edge's key made by the
// agent's own `init` logic, a fake service sealing to it, and syncs run
// in-process with their output captured.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateEdgeKey } from "../src/edge-key.ts";
import { message } from "../src/errors.ts";
import type { Output, SyncSummary } from "../src/output.ts";
import { type SyncContext, type SyncOptions, syncOnce } from "../src/sync.ts";
import { apiBase } from "../src/http.ts";
import { DEFAULT_MAX_AGE_SECONDS } from "../src/signature.ts";
import { FakeService } from "./service.ts";

/** Lines printed, by stream. */
export interface Captured extends Output {
  stdout: string[];
  stderr: string[];
}

export function capture(): Captured {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (line) => void stdout.push(line), err: (line) => void stderr.push(line) };
}

/** A sync's outcome: its summary and lines, or the one-line failure; and what it said on stderr (warnings). */
export type Synced = ({ ok: true; summary: SyncSummary; lines: string[] } | { ok: false; error: string; lines: string[] }) & { stderr: string[] };

export interface Edge {
  root: string;
  dir: string;
  out: string;
  service: FakeService;
  /** One sync against the fake service (pinning its key unless told otherwise). */
  sync(options?: Partial<SyncOptions>, context?: Partial<SyncContext>): Promise<Synced>;
  /** OUT's files (not the agent's dot files), each with its content and mtime. */
  files(): Array<[string, string, number]>;
  close(): Promise<void>;
}

/** A fresh edge in a temporary directory and a service that delivers to it. */
export async function makeEdge(curve: "X25519" | "P-256" = "X25519"): Promise<Edge> {
  const root = mkdtempSync(join(tmpdir(), "edge-agent-"));
  const dir = join(root, "edge");
  const out = join(root, "out");
  const made = await generateEdgeKey(dir, curve);
  const service = await new FakeService(made.jwk).start();
  return {
    root,
    dir,
    out,
    service,
    async sync(options = {}, context = {}) {
      const output = capture();
      const opts: SyncOptions = { dir, base: apiBase(service.url), token: service.token, zone: service.zone, out, reload: null, serviceKey: service.serviceKey, maxAge: DEFAULT_MAX_AGE_SECONDS, ...options };
      try {
        const summary = await syncOnce(opts, { output, ...context });
        return { ok: true, summary, lines: output.stdout, stderr: output.stderr };
      } catch (error) {
        return { ok: false, error: message(error), lines: output.stdout, stderr: output.stderr };
      }
    },
    files() {
      let names: string[] = [];
      try {
        names = readdirSync(out).filter((f) => !f.startsWith(".")).sort();
      } catch {
        return [];
      }
      return names.map((f) => [f, readFileSync(join(out, f), "utf8"), statSync(join(out, f)).mtimeMs]);
    },
    async close() {
      await service.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The failure of a sync that was expected to fail. */
export function failure(synced: Synced): string {
  if (synced.ok) throw new Error(`the sync succeeded: ${synced.lines.join("\n")}`);
  return synced.error;
}

/** The summary of a sync that was expected to succeed. */
export function success(synced: Synced): SyncSummary & { lines: string[]; stderr: string[] } {
  if (!synced.ok) throw new Error(`the sync failed: ${synced.error}`);
  return { ...synced.summary, lines: synced.lines, stderr: synced.stderr };
}

/** `edge` run as its own process (`--watch`): its output so far, `until` (polls a condition on it, 15 s at most), and its exit code. */
export function watchProcess(bin: string, args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (out.stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const until = async (test: () => boolean): Promise<void> => {
    for (const deadline = Date.now() + 15_000; !test() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    if (!test()) throw new Error(`not reached in 15 s\n${out.stdout}\n${out.stderr}`);
  };
  return { child, out, exited, until };
}
