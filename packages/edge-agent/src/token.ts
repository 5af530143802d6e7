// What the delivery token says about this edge: which edge it is, and until
// when it works. The token is not verified here (the service does that);
// the agent reads it to check that each listing and bundle was made for it,
// and to say well before the token expires that it will.
import { readFileSync, statSync } from "node:fs";
import { EdgeError, message } from "./errors.ts";
import { isRecord } from "./json.ts";
import type { Output } from "./output.ts";

/** The default of --token-warn: warn this many days before the token expires. */
export const DEFAULT_TOKEN_WARN_DAYS = 30;

const DAY_MS = 86_400_000;

/** The token's claims, or null when it is not a JWT with a JSON payload. */
function claims(token: string): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    return isRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** The edge id the token names (its `edge_id` claim). */
export function tokenEdge(token: string): string {
  const edge = claims(token)?.edge_id;
  if (typeof edge === "string" && edge !== "") return edge;
  throw new EdgeError("the token names no edge (no edge_id claim): mint one with npm run --silent token -- --edge EDGE_ID --zone ZONE");
}

/** When the token expires (its `exp` claim), in milliseconds since the epoch; null when it says nothing the agent can read. */
export function tokenExpiry(token: string): number | null {
  const exp = claims(token)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
}

/**
 * Checks the token's lifetime before it is used: an expired token fails the
 * sync (exit 1) with what to do, before any request (the service would only
 * say 1003); one that expires within warnDays days answers a warning for
 * stderr (the exit code stays what the sync makes it). An edge runs for
 * months from cron or --watch: this is how its operator hears of the token
 * in time. null: nothing to say.
 */
export function tokenLifetime(token: string, who: { edge: string; zone: string }, now: number, warnDays: number): string | null {
  const expiry = tokenExpiry(token);
  if (expiry === null) return null;
  const renew = `mint a new one (npm run --silent token -- --edge ${who.edge} --zone ${who.zone} ... --ttl 365d) and replace the --token-file with it (read at every sync)`;
  if (expiry <= now) throw new EdgeError(`the delivery token expired at ${new Date(expiry).toISOString()}: ${renew}`);
  if (expiry - now > warnDays * DAY_MS) return null;
  const days = Math.floor((expiry - now) / DAY_MS);
  const left = days === 0 ? "in less than a day" : `in ${days} day${days === 1 ? "" : "s"}`;
  return `edge: warning: the delivery token expires at ${new Date(expiry).toISOString()}, ${left}: ${renew}`;
}

/**
 * The token in a --token-file, trimmed, read at every sync (a renewed token
 * takes effect at the next run, --watch included). A file that group or
 * others can read or write is used, with a warning on output's stderr when
 * one is given: the token alone opens no key (each is sealed to this edge's
 * key), but it lists what this edge receives, and whoever can write the file
 * chooses the credential; keep it 0600, owned by the agent's user.
 */
export function readTokenFile(path: string, output?: Output): string {
  let token: string;
  let mode: number;
  try {
    token = readFileSync(path, "utf8").trim();
    mode = statSync(path).mode & 0o777;
  } catch (error) {
    throw new EdgeError(`cannot read --token-file ${path}: ${message(error)}`);
  }
  if ((mode & 0o077) !== 0) output?.err(`edge: warning: --token-file ${path} can be read or written by group or others (mode ${mode.toString(8).padStart(4, "0")}): chmod 600 it`);
  return token;
}
