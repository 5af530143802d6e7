// The agent's command line: its usage, and each command's flags parsed (by
// the project's one parser, packages/cli) into the options it runs with.
import { resolve } from "node:path";
import { parseFlags } from "../../cli/src/flags.ts";
import type { Curve } from "./edge-key.ts";
import { UsageError } from "./errors.ts";
import { apiBase } from "./http.ts";
import { type NginxOptions, nginxPath } from "./nginx.ts";
import { DEFAULT_MAX_AGE_SECONDS } from "./signature.ts";
import type { SyncOptions } from "./sync.ts";
import { DEFAULT_TOKEN_WARN_DAYS, readTokenFile } from "./token.ts";

const INIT_LINE = "  edge init --dir DIR [--curve X25519|P-256] [--force]";
const SYNC_LINE = `  edge sync --dir DIR --url BASE (--token TOKEN | --token-file PATH) --zone ZONE --out OUT [--service-key JWK|PATH]
            [--reload "COMMAND"] [--watch SECONDS] [--max-age SECONDS] [--token-warn DAYS]
            [--nginx-include FILE --nginx-site SNIPPET]`;

/** The whole usage: printed by `edge --help` and with every usage error. */
export const USAGE = `usage:
${INIT_LINE}
${SYNC_LINE}
  --service-key   the service's signing key (the service_key of GET /admin/v1/edges/{edge_id}), as JSON or a file;
                  pinned in DIR on first use, required until then; a different key is refused afterwards
  edge COMMAND --help describes a command's flags`;

/** `edge init --help`. */
export const INIT_HELP = `usage:
${INIT_LINE}
Makes this edge's key-agreement key pair: the private key in DIR/edge-key.pem (PKCS#8, mode 0600, never
printed), the public JWK in DIR/edge-key.pub.jwk and as the last line of stdout, to register with
PUT /admin/v1/edges/{edge_id}.
  --dir DIR        where the key pair goes (made 0700 when missing)
  --curve CURVE    X25519 (default) or P-256 (for NIST-only hosts)
  --force          replace an existing key (the edge must then be registered again)`;

/** `edge sync --help`. */
export const SYNC_HELP = `usage:
${SYNC_LINE}
Writes OUT/<certificate id>.crt and .key for every custom certificate, and OUT/<hostname>.crt and .key for every
custom hostname (*.example.com as _wildcard.example.com), the service delivers to this edge in ZONE, removes those
no longer delivered, and runs the reload command once when anything changed.
  --dir DIR              the edge's key pair (edge init) and the pinned service key
  --url BASE             the service: https:// (http:// only to this host); /client/v4 is added unless given
  --token TOKEN          the edge's delivery token (visible in the process list: prefer --token-file)
  --token-file PATH      a file holding the token (mode 0600), read again at every sync: replace it to renew
  --token-warn DAYS      warn on stderr when the token expires within DAYS days (0-366, default ${DEFAULT_TOKEN_WARN_DAYS}; 0: never);
                         an expired token fails the sync
  --zone ZONE            the zone to sync (one sync per zone; several zones may share OUT)
  --out OUT              where certificates and keys are written (keys mode 0600)
  --service-key JWK|PATH the service's signing key (the service_key of GET /admin/v1/edges/{edge_id}), as JSON
                         or a file; pinned in DIR on first use, required until then; a different key is refused
  --reload "COMMAND"     run through /bin/sh after files changed (and again after one failed)
  --watch SECONDS        sync every SECONDS (1-86400) until SIGINT or SIGTERM
  --max-age SECONDS      refuse a signed listing or bundle signed more than SECONDS ago (1-86400, default ${DEFAULT_MAX_AGE_SECONDS}):
                         a replay then fails the sync (exit 1); it must also cover how far this host's clock runs
                         ahead of the service's. A bundle whose leaf certificate has expired is always refused
  --nginx-include FILE   render into FILE one nginx server block per pair (server_name the hostname, or a custom
                         certificate's hosts; ssl_certificate and ssl_certificate_key its files), for nginx's
                         http {} to include: written after new pairs, before removed ones go; reload with nginx -s reload
  --nginx-site SNIPPET   the file each rendered block includes: its listen directives (listen 443 ssl;),
                         locations and other per-block settings (required with --nginx-include; an example
                         is docs/nginx-edge.conf, which sets the TLS protocols in http {}, where they take effect)`;

/** A zone id as the API's routes take it. */
const ZONE_ID = /^[A-Za-z0-9_-]{1,32}$/;

const refuse = (message: string): never => {
  throw new UsageError(message);
};

/** `edge init`'s options, or "help". */
export type InitCommand = { dir: string; curve: Curve; force: boolean } | "help";

/** Parses `edge init`'s flags. */
export function parseInit(argv: readonly string[]): InitCommand {
  const args = parseFlags(argv, { dir: { type: "string" }, curve: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } }, refuse);
  if (args.help) return "help";
  if (args.dir === undefined) throw new UsageError("init needs --dir DIR");
  const curve = args.curve ?? "X25519";
  if (curve !== "X25519" && curve !== "P-256") throw new UsageError("--curve is X25519 (default) or P-256");
  return { dir: args.dir, curve, force: args.force === true };
}

/** `edge sync`'s options and --watch interval (0: once), or "help". */
export type SyncCommand = { options: SyncOptions; watch: number } | "help";

const SYNC_FLAGS = {
  dir: { type: "string" },
  url: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  zone: { type: "string" },
  out: { type: "string" },
  "service-key": { type: "string" },
  reload: { type: "string" },
  watch: { type: "string" },
  "max-age": { type: "string" },
  "token-warn": { type: "string" },
  "nginx-include": { type: "string" },
  "nginx-site": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * Parses `edge sync`'s flags: usage errors first (exit 2), then the token
 * file is read and --url checked (exit 1: a file or URL that does not do).
 */
export function parseSync(argv: readonly string[]): SyncCommand {
  const args = parseFlags(argv, SYNC_FLAGS, refuse);
  if (args.help) return "help";
  const need = (name: "dir" | "url" | "zone" | "out"): string => args[name] ?? refuse(`sync needs --${name}`);
  const [dir, url, zone, out] = [need("dir"), need("url"), need("zone"), need("out")];
  if ((args.token === undefined) === (args["token-file"] === undefined)) throw new UsageError("sync needs one of --token TOKEN or --token-file PATH");
  if (!ZONE_ID.test(zone)) throw new UsageError(`invalid zone id ${JSON.stringify(zone)}`);
  let watch = 0;
  if (args.watch !== undefined) {
    watch = Number(args.watch);
    if (!Number.isInteger(watch) || watch < 1 || watch > 86_400) throw new UsageError("--watch takes whole seconds from 1 to 86400");
  }
  const maxAge = args["max-age"] === undefined ? DEFAULT_MAX_AGE_SECONDS : Number(args["max-age"]);
  if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge > 86_400) throw new UsageError("--max-age takes whole seconds from 1 to 86400");
  const warn = args["token-warn"];
  // Digits only: Number("") is 0, which is a meaning here (never warn), not a value the operator gave.
  const tokenWarnDays = warn === undefined ? DEFAULT_TOKEN_WARN_DAYS : /^[0-9]{1,3}$/.test(warn) ? Number(warn) : -1;
  if (tokenWarnDays < 0 || tokenWarnDays > 366) throw new UsageError("--token-warn takes whole days from 0 to 366");
  const nginx = nginxOptions(args["nginx-include"], args["nginx-site"], resolve(out));
  const tokenFile = args["token-file"];
  // Read once here, so a file that cannot be read fails before anything else
  // (--watch included); every sync reads it again, and warns about its mode then.
  const token = args.token ?? readTokenFile(tokenFile ?? "");
  return {
    options: {
      dir,
      base: apiBase(url),
      token,
      ...(tokenFile === undefined ? {} : { tokenFile }),
      tokenWarnDays,
      zone,
      out: resolve(out),
      reload: args.reload ?? null,
      serviceKey: args["service-key"],
      maxAge,
      ...(nginx === null ? {} : { nginx }),
    },
    watch,
  };
}

/**
 * --nginx-include and --nginx-site, together or not at all, as absolute
 * paths; those written into nginx's configuration (OUT, the snippet) must be
 * plain tokens to nginx (nginx.ts nginxPath), and the include is not the
 * snippet (a block including its own file would never end).
 */
function nginxOptions(include: string | undefined, site: string | undefined, out: string): NginxOptions | null {
  if (include === undefined && site === undefined) return null;
  if (include === undefined || site === undefined) throw new UsageError("--nginx-include FILE and --nginx-site SNIPPET go together");
  const paths = { include: resolve(include), site: resolve(site) };
  const refusal = nginxPath("--out", out) ?? nginxPath("--nginx-site", paths.site);
  if (refusal !== null) throw new UsageError(refusal);
  if (paths.include === paths.site) throw new UsageError("--nginx-include and --nginx-site must be different files");
  return paths;
}
