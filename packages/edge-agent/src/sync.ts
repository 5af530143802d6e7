// One sync of a zone, in order: who we are, what the service lists, every
// changed bundle verified, and only then the files, the state and the reload.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { apply } from "./apply.ts";
import { type Planned, collect } from "./collect.ts";
import { loadEdgeKey } from "./edge-key.ts";
import { EdgeError } from "./errors.ts";
import { type RequestLimits, getJson } from "./http.ts";
import { readListing } from "./listing.ts";
import { lock } from "./lock.ts";
import { type NginxOptions, blockCount, emptiedInclude, includeHeader, ownInclude, renderInclude } from "./nginx.ts";
import { type Output, type SyncSummary, includeLine, summaryLine } from "./output.ts";
import { runReload } from "./reload.ts";
import { serviceKey } from "./service-key.ts";
import { signedResult } from "./signature.ts";
import type { FileToWrite } from "./staging.ts";
import { lockPath, readState, statePath, writeState } from "./state.ts";
import { DEFAULT_TOKEN_WARN_DAYS, readTokenFile, tokenEdge, tokenLifetime } from "./token.ts";

/** What `edge sync` was asked to do. */
export interface SyncOptions {
  /** Where the edge's key (and the pinned service key) live. */
  dir: string;
  /** The API base, `.../client/v4` (http.ts apiBase). */
  base: string;
  token: string;
  /** --token-file: read again at every sync (a --watch picks up a renewed token), replacing token. */
  tokenFile?: string;
  /** --token-warn: warn on stderr when the token expires within this many days (DEFAULT_TOKEN_WARN_DAYS). */
  tokenWarnDays?: number;
  zone: string;
  /** Where certificates and keys are written (absolute). */
  out: string;
  reload: string | null;
  /** --service-key as given: a JWK or a file holding one. */
  serviceKey: string | undefined;
  /** --max-age: the oldest a signed listing or bundle may be, in seconds (DEFAULT_MAX_AGE_SECONDS). */
  maxAge: number;
  /** --nginx-include and --nginx-site: the server blocks rendered for nginx (nginx.ts). */
  nginx?: NginxOptions;
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
 * those whose content changed) and the nginx include naming them, remove the
 * files of certificates no longer listed, save the state and run the reload
 * command once if anything changed (or a reload is owed). The token (read
 * again from --token-file) fails the sync before any request once expired,
 * and is warned of near its end. Every reply acted on is signed by the pinned
 * service key at most opts.maxAge seconds ago (a stale one fails the sync);
 * any failure before the writes leaves every file as it was. Prints one line
 * per certificate and the summary; answers the summary.
 */
export async function syncOnce(opts: SyncOptions, context: SyncContext): Promise<SyncSummary> {
  const started = performance.now();
  const { output, now = Date.now, limits, reload: reloader = runReload } = context;
  const edgeKey = await loadEdgeKey(opts.dir);
  const token = opts.tokenFile === undefined ? opts.token : readTokenFile(opts.tokenFile, output);
  const edge = tokenEdge(token);
  const warning = tokenLifetime(token, { edge, zone: opts.zone }, now(), opts.tokenWarnDays ?? DEFAULT_TOKEN_WARN_DAYS);
  if (warning !== null) output.err(warning);
  const service = await serviceKey(opts.dir, opts.serviceKey);
  if (opts.nginx) checkNginx(opts.nginx, opts.zone);
  mkdirSync(opts.out, { recursive: true, mode: 0o700 });
  const release = lock(lockPath(opts.out, opts.zone));
  try {
    const path = statePath(opts.out, opts.zone);
    const state = readState(path);
    const listingUrl = `${opts.base}/zones/${encodeURIComponent(opts.zone)}/key_delivery/certificates`;
    const reply = await getJson(listingUrl, token, limits);
    if (!reply.ok) throw new EdgeError(`listing failed: ${reply.status} ${reply.code ?? ""} ${reply.message}`.replace(/\s+/g, " "));
    const signed = await signedResult(reply.signed, "list", { zone: opts.zone, edge, service, now: now() / 1000, maxAge: opts.maxAge });
    const listed = readListing(signed.result, signed.iat, state);
    const source = { listingUrl, token, zone: opts.zone, edge, edgeKey, service, out: opts.out, now, maxAge: opts.maxAge, ...(limits ? { limits } : {}) };
    const planned = await collect(listed, signed.iat, state, source);

    // Every bundle checked: now the files, then the include that names them, then the removals.
    const configs = nginxConfigs(opts, planned, state.nginx_include);
    const applied = apply(opts.out, planned, state, configs);
    // A reload that failed stays owed (reload_pending) until one succeeds, though the next runs find the files unchanged.
    const reload = opts.reload !== null && (applied.written + applied.removedCount + applied.configs.length > 0 || state.reload_pending);
    const next = { listed_iat: signed.iat, certificates: applied.certificates, removed: applied.removed, reload_pending: reload, nginx_include: opts.nginx?.include ?? null };
    writeState(path, { zone: opts.zone, edge }, next);
    for (const line of applied.lines) output.out(line);
    for (const config of configs.filter((c) => applied.configs.includes(c.path))) output.out(includeLine(config.path, blockCount(config.data)));
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

/**
 * Before anything is fetched: the snippet every rendered block includes must
 * exist (nginx would refuse a configuration naming a missing one), and the
 * include must be this zone's own to write (never a hand-written file, never
 * another zone's include).
 */
function checkNginx(nginx: NginxOptions, zone: string): void {
  if (!existsSync(nginx.site)) throw new EdgeError(`--nginx-site ${nginx.site} does not exist: every rendered server block includes it, so nginx would refuse the configuration`);
  if (!ownInclude(nginx.include, zone)) {
    throw new EdgeError(`--nginx-include ${nginx.include} exists and is not this zone's include (its first line is not "${includeHeader(zone)}"): refusing to overwrite it`);
  }
}

/**
 * The nginx includes this sync leaves: this zone's server blocks rendered in
 * --nginx-include, and the include it rendered before, when that was another
 * file (or --nginx-include is no longer given), emptied rather than left
 * naming pairs this sync may remove. An emptied file stays (nginx may still
 * include it by name).
 */
function nginxConfigs(opts: SyncOptions, planned: readonly Planned[], previous: string | null): FileToWrite[] {
  const configs: FileToWrite[] = [];
  if (opts.nginx) {
    const pairs = new Set(planned.flatMap((c) => [join(opts.out, `${c.base}.crt`), join(opts.out, `${c.base}.key`)]));
    if (pairs.has(opts.nginx.include)) throw new EdgeError(`--nginx-include ${opts.nginx.include} is the name of a certificate's file: choose another`);
    configs.push({ path: opts.nginx.include, data: renderInclude(opts.zone, opts.out, opts.nginx.site, planned), mode: 0o644 });
  }
  if (previous !== null && previous !== opts.nginx?.include && existsSync(previous) && ownInclude(previous, opts.zone)) {
    configs.push({ path: previous, data: emptiedInclude(opts.zone), mode: 0o644 });
  }
  return configs;
}
