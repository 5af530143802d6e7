// What the agent prints: the lines operators and their tooling read (the e2e
// tests match them), and the escaping of any text that came from a server.

/** Where the agent's lines go: stdout for results, stderr for notes and failures. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** The process's own stdout and stderr. */
export const processOutput: Output = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

/**
 * Text from the service as this agent prints it: control characters and
 * anything outside printable ASCII escaped (`\u001b`), and the backslash
 * itself (`\\`), so nothing it prints can move a terminal's cursor or forge a
 * line of its output.
 */
export function printable(value: unknown): string {
  return String(value).replace(/[^\x20-\x7e]|\\/g, (c) => (c === "\\" ? "\\\\" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

/**
 * One certificate's line: `<id> written|unchanged [hostname=<name>
 * [key_type=rsa2048]] hosts=a,b expires_on=...`, the hostname for a custom
 * hostname only (its files' name), the key type for its RSA twin only.
 */
export function certificateLine(id: string, written: boolean, hosts: readonly unknown[], expiresOn: string, hostname?: string, keyType?: string): string {
  const name = `${hostname === undefined ? "" : ` hostname=${printable(hostname)}`}${keyType === undefined ? "" : ` key_type=${printable(keyType)}`}`;
  return `${id} ${written ? "written" : "unchanged"}${name} hosts=${hosts.map(printable).join(",")} expires_on=${printable(expiresOn)}`;
}

/** A removed certificate's line: `<id> removed [hostname=<name>]`. */
export function removedLine(id: string, hostname?: string): string {
  return hostname === undefined ? `${id} removed` : `${id} removed hostname=${printable(hostname)}`;
}

/** A rendered nginx include's line: `nginx include <path>: N server blocks`. */
export function includeLine(path: string, blocks: number): string {
  return `nginx include ${printable(path)}: ${blocks} server block${blocks === 1 ? "" : "s"}`;
}

/** What one sync did, in numbers. */
export interface SyncSummary {
  zone: string;
  edge: string;
  certificates: number;
  written: number;
  removed: number;
  reloaded: boolean;
  ms: number;
}

/** The last line of a sync: `edge sync: zone Z, edge E: N certificates, W written, U unchanged, R removed[, reloaded] (T ms)`. */
export function summaryLine(s: SyncSummary): string {
  return (
    `edge sync: zone ${s.zone}, edge ${s.edge}: ${s.certificates} certificate${s.certificates === 1 ? "" : "s"}, ${s.written} written, ` +
    `${s.certificates - s.written} unchanged, ${s.removed} removed${s.reloaded ? ", reloaded" : ""} (${s.ms.toFixed(0)} ms)`
  );
}
