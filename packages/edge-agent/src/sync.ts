// One sync of a zone, in order: who we are, what the service lists, every
// changed bundle verified, and only then the files, the state and the reload.
import { mkdirSync } from "node:fs";
import { apply } from "./apply.ts";
import { collect } from "./collect.ts";
import { loadEdgeKey } from "./edge-key.ts";
import { EdgeError } from "./errors.ts";
import { type RequestLimits, getJson } from "./http.ts";
import { readListing } from "./listing.ts";
import { lock } from "./lock.ts";
import { type Output, type SyncSummary, summaryLine } from "./output.ts";
import { runReload } from "./reload.ts";
import { serviceKey } from "./service-key.ts";
import { signedResult } from "./signature.ts";
import { lockPath, readState, statePath, writeState } from "./state.ts";
import { tokenEdge } from "./token.ts";

/** What `edge sync` was asked to do. */
export interface SyncOptions {
  /** Where the edge's key (and the pinned service key) live. */
  dir: string;
  /** The API base, `.../client/v4` (http.ts apiBase). */
  base: string;
  token: string;
  zone: string;
  /** Where certificates and keys are written (absolute). */
  out: string;
  reload: string | null;
  /** --service-key as given: a JWK or a file holding one. */
  serviceKey: string | undefined;
  /** --max-age: the oldest a signed listing or bundle may be, in seconds (DEFAULT_MAX_AGE_SECONDS). */
  maxAge: number;
}

/** What a sync runs with besides its options; tests replace them. */
export interface SyncContext {
  output: Output;
  /** The clock, in milliseconds since the epoch (a signed reply's iat is checked against it). */
  now?: () => number;
  limits?: RequestLimits;
  reload?: (command: string) => Promise<void>;
}

/**
 * One sync of a zone: list what this edge may receive, fetch and verify
 * every bundle that changed, and only then write files (atomically, only
 * those whose content changed), remove the files of certificates no longer
 * listed, save the state and run the reload command once if anything changed
 * (or a reload is owed). Every reply acted on is signed by the pinned service
 * key at most opts.maxAge seconds ago (a stale one fails the sync); any
 * failure before the writes leaves every file as it was. Prints one line per
 * certificate and the summary; answers the summary.
 */
export async function syncOnce(opts: SyncOptions, context: SyncContext): Promise<SyncSummary> {
  const started = performance.now();
  const { output, now = Date.now, limits, reload: reloader = runReload } = context;
  const edgeKey = await loadEdgeKey(opts.dir);
  const edge = tokenEdge(opts.token);
  const service = await serviceKey(opts.dir, opts.serviceKey);
  mkdirSync(opts.out, { recursive: true, mode: 0o700 });
  const release = lock(lockPath(opts.out, opts.zone));
  try {
    const path = statePath(opts.out, opts.zone);
    const state = readState(path);
    const listingUrl = `${opts.base}/zones/${encodeURIComponent(opts.zone)}/key_delivery/certificates`;
    const reply = await getJson(listingUrl, opts.token, limits);
    if (!reply.ok) throw new EdgeError(`listing failed: ${reply.status} ${reply.code ?? ""} ${reply.message}`.replace(/\s+/g, " "));
    const signed = await signedResult(reply.signed, "list", { zone: opts.zone, edge, service, now: now() / 1000, maxAge: opts.maxAge });
    const listed = readListing(signed.result, signed.iat, state);
    const source = { listingUrl, token: opts.token, zone: opts.zone, edge, edgeKey, service, out: opts.out, now, maxAge: opts.maxAge, ...(limits ? { limits } : {}) };
    const planned = await collect(listed, signed.iat, state, source);

    // Every bundle checked: now the files.
    const applied = apply(opts.out, planned, state);
    // A reload that failed stays owed (reload_pending) until one succeeds, though the next runs find the files unchanged.
    const reload = opts.reload !== null && (applied.written + applied.removedCount > 0 || state.reload_pending);
    const next = { listed_iat: signed.iat, certificates: applied.certificates, removed: applied.removed, reload_pending: reload };
    writeState(path, { zone: opts.zone, edge }, next);
    for (const line of applied.lines) output.out(line);
    if (reload && opts.reload !== null) {
      await reloader(opts.reload);
      writeState(path, { zone: opts.zone, edge }, { ...next, reload_pending: false });
    }
    const summary = { zone: opts.zone, edge, certificates: planned.length, written: applied.written, removed: applied.removedCount, reloaded: reload, ms: performance.now() - started };
    output.out(summaryLine(summary));
    return summary;
  } finally {
    release();
  }
}
