// The nginx include file a zone's sync renders (--nginx-include): one server
// block per pair it holds, named by the pair's hostname(s), so nginx serves
// every delivered hostname without a hand-written block per hostname.
//
// Why a rendered file and not `ssl_certificate $ssl_server_name`: with a
// variable, nginx (1.22 verified) loads the pair at every handshake in its
// worker processes, which run unprivileged and cannot read a 0600 key owned
// by root (permission denied); a file of plain paths is loaded by the master
// at reload, as root, and the keys stay 0600. The file is rewritten in the
// same all-or-nothing step as the pairs (apply.ts), after every new pair is
// in place and before any removed pair is deleted, so it never names a file
// that does not exist, and a removal cannot make `nginx -s reload` fail.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Planned } from "./collect.ts";
import { EdgeError } from "./errors.ts";
import { serverNames } from "./names.ts";

/** Where this zone's server blocks go, and the operator's snippet each one includes. */
export interface NginxOptions {
  /** --nginx-include: the file rendered (absolute). */
  include: string;
  /** --nginx-site: the snippet every block includes (absolute): `listen ... ssl;`, locations, other per-block settings. */
  site: string;
}

/**
 * A path as the agent writes it into nginx's configuration: absolute, and of
 * characters nginx reads as one plain token (no space, quote, `;`, `{`, `#`,
 * and no `$`, which would make `ssl_certificate` a per-handshake variable).
 */
const NGINX_PATH = /^\/[A-Za-z0-9._/@+,:=~-]*$/;

/** Refuses (exit 2 through the caller) a path that could not be written into nginx's configuration as it is. */
export function nginxPath(flag: string, path: string): string | null {
  return NGINX_PATH.test(path) ? null : `${flag} ${JSON.stringify(path)} cannot be written into nginx's configuration: an absolute path of letters, digits and . _ / @ + , : = ~ - only`;
}

/** The first line of every include this agent renders for a zone: how it knows the file is its own to rewrite. */
export function includeHeader(zone: string): string {
  return `# edge sync: the nginx server blocks of zone ${zone}, rendered at every sync. Do not edit: the next sync rewrites this file.`;
}

/**
 * Whether the agent may write path as zone's include: it does not exist, is
 * empty (made with touch, so nginx could start before the first sync), or
 * starts with zone's header. Anything else (a hand-written configuration,
 * another zone's include) is never overwritten.
 */
export function ownInclude(path: string, zone: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (existsSync(path)) throw new EdgeError(`cannot read --nginx-include ${path}: ${error instanceof Error ? error.message : String(error)}`);
    return true;
  }
  return text === "" || text.split("\n", 1)[0] === includeHeader(zone);
}

/**
 * The include for a zone's pairs: custom hostnames first (a hostname's block
 * is what it is for; with dual certificates it names both pairs, and nginx
 * serves the RSA one to a client that cannot take ECDSA), then custom
 * certificates by their hosts, each name in one block only (the first; nginx
 * would warn and ignore a second). A pair whose files are not both in OUT
 * (kept this run without them) is left out: the include names only files that
 * exist once the pairs are in place.
 */
export function renderInclude(zone: string, out: string, site: string, planned: readonly Planned[]): string {
  // A hostname's pairs, its own (P-256) first, then its twin; custom certificates one block each.
  const groups = new Map<string, Planned[]>();
  for (const c of [...planned.filter((p) => p.hostname !== undefined && p.key_type === undefined), ...planned.filter((p) => p.key_type !== undefined)]) {
    groups.set(c.hostname!, [...(groups.get(c.hostname!) ?? []), c]);
  }
  const ordered = [...groups.values(), ...planned.filter((c) => c.hostname === undefined).map((c) => [c])];
  const taken = new Set<string>();
  let served = 0;
  const sections = ordered.map((pairs) => {
    const first = pairs[0]!;
    const what = first.hostname === undefined ? `custom certificate ${first.id}` : `custom hostname ${first.id}`;
    // Checked even when not rendered: a name nginx cannot take fails the sync whatever else holds.
    const names = first.hostname === undefined ? serverNames(first.id, first.hosts) : [first.hostname];
    const files = pairs
      .map((c) => ({ c, crt: join(out, `${c.base}.crt`), key: join(out, `${c.base}.key`) }))
      .filter(({ c, crt, key }) => c.write !== null || (existsSync(crt) && existsSync(key)));
    if (files.length === 0) return `# ${what}: not served (its files are not in ${out})\n`;
    const fresh = names.filter((name) => !taken.has(name));
    for (const name of fresh) taken.add(name);
    if (fresh.length === 0) return `# ${what}: not served here (it has no name that a block above does not serve)\n`;
    served++;
    const certificates = files.flatMap(({ crt, key }) => [`    ssl_certificate ${crt};`, `    ssl_certificate_key ${key};`]);
    return [`# ${what}`, "server {", `    server_name ${fresh.join(" ")};`, ...certificates, `    include ${site};`, "}", ""].join("\n");
  });
  const count = `# ${served} server block${served === 1 ? "" : "s"}; each includes ${site} (--nginx-site): its listen directives, locations and other settings.`;
  return `${includeHeader(zone)}\n${count}\n\n${sections.join("\n")}`;
}

/** The include left behind when a zone's sync stops rendering it (no --nginx-include, or another path): it names nothing, so nothing it named can go missing. */
export function emptiedInclude(zone: string): string {
  return `${includeHeader(zone)}\n# 0 server blocks: this zone's sync no longer renders its server blocks here (--nginx-include names another file, or none).\n`;
}

/** The number of server blocks in a rendered include. */
export function blockCount(text: string): number {
  return text.split("\nserver {\n").length - 1;
}
