// What a delivered pair's files are named: a custom certificate by its id,
// a custom hostname by its name. A name from the service becomes a file name
// in OUT and a server_name in nginx's configuration, so it is checked here,
// once, and refused unless it is plainly a DNS name.
import { EdgeError } from "./errors.ts";
import { printable } from "./output.ts";

/** A certificate id: a UUID, so it is safe as a file name. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A DNS name as the agent accepts it for a file and a server_name: lower
 * case letters, digits, '-' and '_' in labels of 1 to 63 (RFC 1035 §2.3.4),
 * separated by single dots, optionally after a leading `*.`, MAX_NAME
 * characters at most. No empty label, so never `.`, `..`, a leading dot (the
 * agent's own dot files) or a slash: a name can never leave OUT.
 */
const HOSTNAME = /^(?:\*\.)?[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*$/;

/**
 * The longest name accepted: the service's own bound on a custom hostname
 * (src/pki/san.ts MAX_SAN_LENGTH, `*.` included). A shorter bound here would
 * make one hostname the service accepts fail every sync of its zone.
 */
const MAX_NAME = 255;

/**
 * The longest base name a pair's files may have: a file name is at most 255
 * bytes (NAME_MAX on Linux and the BSDs), and `.crt` / `.key` take 4.
 */
export const MAX_BASE = 255 - ".crt".length;

/** Whether a value is a DNS name the agent accepts (see HOSTNAME). */
export function isHostname(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_NAME && HOSTNAME.test(value);
}

/**
 * The custom hostname of a listing item or bundle, checked: a valid,
 * lower-case DNS name, or the sync fails naming the item (a name that could
 * reach outside OUT, or into nginx's configuration, is never used).
 */
export function checkedHostname(id: string, hostname: unknown): string {
  if (isHostname(hostname)) return hostname;
  throw new EdgeError(
    `custom hostname ${id}: "${printable(hostname)}" is not a DNS name the agent writes (lower-case letters, digits, '-', '_', '.', an optional leading '*.', at most ${MAX_NAME} characters): refused`,
  );
}

/** The key type of a managed certificate's twin (dual certificates): RSA-2048, beside the hostname's P-256 one. */
export type TwinKeyType = "rsa2048";

/**
 * A listing item's or bundle's `key_type`: absent (a custom certificate, or a
 * custom hostname's own certificate) or `rsa2048`, an RSA twin, which only a
 * custom hostname has; anything else fails the sync naming the item.
 */
export function checkedKeyType(id: string, hostname: string | undefined, keyType: unknown): TwinKeyType | undefined {
  if (keyType === undefined) return undefined;
  if (keyType === "rsa2048" && hostname !== undefined) return keyType;
  throw new EdgeError(`certificate ${id}: key_type "${printable(keyType)}" is not one the agent knows for this item (rsa2048, of a custom hostname): refused`);
}

/**
 * The base name of a pair's files in OUT: `<hostname>` for a custom hostname,
 * its leftmost `*.` written `_wildcard.` (a `*` in a file name is a glob
 * waiting to happen), and `<hostname>.rsa` for its RSA twin; `<id>` for a
 * custom certificate, and for a hostname too long to be a file name (over
 * MAX_BASE characters as written): the file system would refuse it, and with
 * it every sync of the zone.
 */
export function fileBase(id: string, hostname: string | undefined, keyType?: TwinKeyType): string {
  if (hostname === undefined) return id;
  const base = `${hostname.replace(/^\*\./, "_wildcard.")}${keyType === "rsa2048" ? ".rsa" : ""}`;
  return base.length <= MAX_BASE ? base : id;
}

/**
 * A custom certificate's hosts as nginx server names: lower-cased (DNS
 * names compare without case, RFC 4343) and each a DNS name as above, or the
 * sync fails: a host goes into the rendered configuration.
 */
export function serverNames(id: string, hosts: readonly unknown[]): string[] {
  return hosts.map((host) => {
    const name = typeof host === "string" ? host.toLowerCase() : host;
    if (isHostname(name)) return name;
    throw new EdgeError(`certificate ${id}: host "${printable(host)}" is not a DNS name nginx can be given as a server_name: refused`);
  });
}
