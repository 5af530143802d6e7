// An edge's nginx as docs/nginx-edge.conf writes it: the doc's three files
// (split at its "# file:" lines) under a prefix of the test's own, with only
// the ports, API_HOST:8787 and the paths under /etc/nginx, /run and
// /var/log substituted (and nginx's temp paths added under the prefix), run
// by Debian's nginx in the foreground in its own process group, registered
// with the suite's reaper. Used by the files that prove the doc as written:
// edge-hostnames.e2e.ts and acme-edge.e2e.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NGINX } from "./checkers";
import { PID_DIR, REPO_ROOT, freePort } from "./server";
import { type Handshake, handshake, runAsync } from "./tls-edge";

/** The doc this module runs. */
export const NGINX_EDGE_DOC = join(REPO_ROOT, "docs", "nginx-edge.conf");

/** The paths the doc's "# file:" lines name, in its order; a doc that names others fails the start. */
const DOC_PATHS = ["/etc/nginx/nginx.conf", "/etc/nginx/snippets/csr-edge-site.conf", "/etc/nginx/snippets/acme-challenge.conf"];

/** The files of docs/nginx-edge.conf, by the path each "# file:" line names. */
export function docFiles(): Map<string, string> {
  const files = new Map<string, string>();
  let current: string | null = null;
  for (const line of readFileSync(NGINX_EDGE_DOC, "utf8").split("\n")) {
    const header = /^# file: (\/\S+)$/.exec(line);
    if (header) {
      current = header[1]!;
      files.set(current, "");
    } else if (current !== null) {
      files.set(current, `${files.get(current)}${line}\n`);
    }
  }
  return files;
}

/** An nginx master started from docs/nginx-edge.conf under its own prefix, on loopback ports. */
export interface DocNginx {
  prefix: string;
  /** The doc's `listen 443` (the default server and every rendered block). */
  tlsPort: number;
  /** The doc's `listen 80` (the http-01 location and the redirect). */
  httpPort: number;
  child: ChildProcess;
  /** The doc's include directory (/etc/nginx/csr-edge/ here): the agent's --nginx-include goes in it. */
  includeDir: string;
  /** The doc's site snippet (/etc/nginx/snippets/csr-edge-site.conf here): the agent's --nginx-site. */
  siteFile: string;
  /** The --reload command an operator would give, for this prefix. */
  reloadCommand: string;
  errorLog(): string;
  /** The doc's access log (combined format), "" before the first request. */
  accessLog(): string;
  /** Writes the doc's files again with another API upstream (a port on 127.0.0.1). */
  writeFiles(apiPort: number): void;
  stop(): Promise<void>;
}

/** Options for {@link startDocNginx}. */
export interface DocNginxOptions {
  /** The suite's temp root (`inject("e2eRoot")`), where the process group is registered for the teardown. */
  root: string;
  /** nginx's prefix: the doc's files, logs, pid and temp paths go under it. */
  prefix: string;
  /** The API that API_HOST:8787 becomes: a port on 127.0.0.1. */
  apiPort: number;
  /** The port the doc's `listen 80` becomes (pebble's `httpPort`, which its validator dials); default a free one. */
  httpPort?: number;
  /** The port the doc's `listen 443` becomes; default a free one. */
  tlsPort?: number;
  /** Changes the main file further, after the substitutions (the $ssl_server_name variant). */
  rewrite?: (main: string) => string;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

/**
 * Writes the doc's three files under the prefix, with only these
 * substituted (each must occur, so a changed doc fails here rather than
 * testing something else): /etc/nginx/{csr-edge,snippets}/ and /run,
 * /var/log paths into the prefix, ports 80 and 443 to loopback ports,
 * API_HOST:8787 to the API; plus the temp paths an nginx under its own
 * prefix needs, after `http {`. Then `nginx -t`, the start, and a wait until
 * both ports answer.
 */
export async function startDocNginx(options: DocNginxOptions): Promise<DocNginx> {
  const { root, prefix } = options;
  const rewrite = options.rewrite ?? ((main: string) => main);
  for (const dir of ["csr-edge", "snippets", "logs", "tmp"]) mkdirSync(join(prefix, dir), { recursive: true });
  const tlsPort = options.tlsPort ?? (await freePort());
  const httpPort = options.httpPort ?? (await freePort());
  const conf = join(prefix, "nginx.conf");
  const errorLog = join(prefix, "logs", "error.log");
  const accessLog = join(prefix, "logs", "access.log");
  const writeFiles = (api: number) => {
    const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((name) => `    ${name}_temp_path ${join(prefix, "tmp", name)};\n`).join("");
    const substitutions: Array<[string, string]> = [
      ["/etc/nginx/nginx.conf", conf],
      ["/etc/nginx/csr-edge/", `${join(prefix, "csr-edge")}/`],
      ["/etc/nginx/snippets/", `${join(prefix, "snippets")}/`],
      ["/run/nginx.pid", join(prefix, "nginx.pid")],
      ["/var/log/nginx/", `${join(prefix, "logs")}/`],
      ["listen 80 ", `listen 127.0.0.1:${httpPort} `],
      ["listen 443 ", `listen 127.0.0.1:${tlsPort} `],
      ["API_HOST:8787", `127.0.0.1:${api}`],
      ["\nhttp {\n", `\nhttp {\n${temp}`],
    ];
    const files = [...docFiles()];
    const paths = files.map(([path]) => path);
    if (paths.join("\n") !== DOC_PATHS.join("\n")) throw new Error(`docs/nginx-edge.conf names ${JSON.stringify(paths)}, not ${JSON.stringify(DOC_PATHS)}`);
    for (const [from] of substitutions) {
      if (!files.some(([path, text]) => path.includes(from) || text.includes(from))) throw new Error(`docs/nginx-edge.conf no longer has ${JSON.stringify(from)}`);
    }
    const place = (text: string) => substitutions.reduce((t, [from, to]) => t.replaceAll(from, to), text);
    for (const [path, text] of files) writeFileSync(place(path), path === DOC_PATHS[0] ? rewrite(place(text)) : place(text));
  };
  writeFiles(options.apiPort);
  const args = ["-p", prefix, "-c", conf, "-e", errorLog, "-g", "daemon off;"];
  const test = await runAsync(NGINX, [...args, "-t"]);
  if (test.code !== 0) throw new Error(`nginx -t failed:\n${test.stderr}`);
  const child = spawn(NGINX, args, { detached: true, stdio: "ignore" });
  if (child.pid === undefined) throw new Error("nginx did not start");
  const pidFile = join(root, PID_DIR, String(child.pid));
  mkdirSync(join(root, PID_DIR), { recursive: true });
  writeFileSync(pidFile, "");
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const stop = async () => {
    for (const signal of ["SIGQUIT", "SIGKILL"] as const) {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // gone
      }
      await Promise.race([exited, sleep(5_000)]);
    }
    rmSync(pidFile, { force: true });
  };
  for (let i = 0; i < 100 && !((await listening(tlsPort)) && (await listening(httpPort))); i++) await sleep(50);
  if (!((await listening(tlsPort)) && (await listening(httpPort)))) {
    await stop();
    throw new Error(`nginx is not listening on ${tlsPort} and ${httpPort}:\n${readFileSync(errorLog, "utf8")}`);
  }
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  return {
    prefix,
    tlsPort,
    httpPort,
    child,
    includeDir: join(prefix, "csr-edge"),
    siteFile: join(prefix, "snippets", "csr-edge-site.conf"),
    reloadCommand: [NGINX, "-p", prefix, "-c", conf, "-e", errorLog, "-g", "'daemon off;'", "-s", "reload"].join(" "),
    errorLog: () => read(errorLog),
    accessLog: () => read(accessLog),
    writeFiles,
    stop,
  };
}

/**
 * Handshakes with `host` (verifying against `caFile`) until `done` holds or
 * `timeoutMs` passes (a reload takes effect as new workers start); answers
 * the last handshake, which the caller asserts on.
 */
export async function handshakeUntil(
  port: number,
  host: string,
  caFile: string,
  done: (seen: Handshake) => boolean,
  timeoutMs = 20_000,
  everyMs = 100,
  /** More s_client flags (e.g. `-sigalgs`, to ask for the RSA or the ECDSA certificate of a dual pair). */
  extra: readonly string[] = [],
): Promise<Handshake> {
  let seen = await handshake(port, host, caFile, extra);
  for (const deadline = Date.now() + timeoutMs; !done(seen) && Date.now() < deadline; ) {
    await sleep(everyMs);
    seen = await handshake(port, host, caFile, extra);
  }
  return seen;
}
