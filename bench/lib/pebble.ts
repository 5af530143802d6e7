// An ACME CA for the renewals scenario: Debian's `pebble` with
// `pebble-challtestsrv` (its mock DNS, answering every name with 127.0.0.1)
// on loopback, and the edge's port-80 listener that pebble's validator dials
// for http-01, forwarding /.well-known/acme-challenge/ to the API with the
// Host header (as docs/nginx-edge.conf does). The same setup as the e2e
// suite's test/e2e/pebble.ts and acme-support.ts, cut to what a bench needs:
// those files cannot be imported here (extensionless imports, which Node's
// type stripping does not resolve).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { errorMessage, type Log, onCleanup } from "./lifecycle.ts";
import { freePort } from "./net.ts";
import { ensureDebianTool } from "./peers.ts";

const PEBBLE = process.env.BENCH_PEBBLE ?? "/usr/bin/pebble";
const CHALLTESTSRV = process.env.BENCH_CHALLTESTSRV ?? "/usr/bin/pebble-challtestsrv";
const OPENSSL = "/usr/bin/openssl";

/** A running pebble, its mock DNS, and the challenge proxy in front of the API. */
export interface Pebble {
  /** `https://127.0.0.1:PORT/dir`. */
  directoryUrl: string;
  /** The CA of pebble's listener certificate (for `npm start --ca-file`). */
  listenerCaFile: string;
  /** pebble's pid, for its CPU time. */
  pid: number;
  /** The last lines of pebble's log. */
  logTail(lines?: number): string;
  /**
   * Connections to pebble's ACME port that the client closed and pebble has
   * not (CLOSE-WAIT): requests whose handler never finished. pebble 2.4's
   * in-memory store can deadlock under concurrent orders (bench/README.md);
   * then these pile up, one per timed-out request.
   */
  stuckRequests(): number;
  /** Opens the port-80 listener pebble's validator dials, forwarding challenges to `api` (an origin). */
  proxyTo(api: string): Promise<void>;
  stop(): Promise<void>;
}

/** Why the CA cannot be run here, or null when it can: Debian's pebble is installed with apt-get when missing and this runs as root. */
export function pebbleMissing(log: Log): string | null {
  if (!process.env.BENCH_PEBBLE && !existsSync(PEBBLE)) {
    const found = ensureDebianTool("pebble", "pebble", "the renewals rows", log);
    if ("note" in found) return found.note;
  }
  const missing = [PEBBLE, CHALLTESTSRV, OPENSSL].filter((file) => !existsSync(file));
  return missing.length ? `${missing.join(", ")} not found (Debian: \`apt-get install pebble openssl\`)` : null;
}

/** A listener CA and a leaf for 127.0.0.1 signed by it (the package ships none; /work/notes/pebble.md §1). */
function listenerCertificates(dir: string): void {
  const openssl = (args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench pebble listener CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  openssl(["req", ...ec, "-keyout", "listener.key", "-out", "listener.csr", "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "listener.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  openssl(["x509", "-req", "-in", "listener.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "listener.pem", "-days", "2", "-extfile", "listener.ext"]);
}

/** A child in its own process group, its output appended to `log`; stopped (the whole group) at cleanup. */
function spawnGroup(file: string, args: string[], env: NodeJS.ProcessEnv, log: string): { child: ChildProcess; stop: () => Promise<void> } {
  const fd = openSync(log, "a");
  const child = spawn(file, args, { env, stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      const kill = (signal: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, signal);
        } catch {}
      };
      kill("SIGTERM");
      setTimeout(() => kill("SIGKILL"), 5000).unref();
    });
  onCleanup(stop);
  return { child, stop };
}

/** Sockets in CLOSE-WAIT whose local port is `port`, from /proc/net/tcp (IPv4, loopback). */
function closeWaits(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hex}`) && f[3] === "08").length;
}

/** GET over https trusting `ca`: the status, or the error. */
function probe(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

/**
 * Starts challtestsrv and pebble in `dir`: certificates valid for
 * `validitySeconds`, the validator's random sleeps off (PEBBLE_VA_NOSLEEP),
 * no nonce rejected, no authorization reused (so every renewal is validated
 * anew, as a renewal months later would be), `-strict`.
 */
export async function startPebble({ dir, validitySeconds }: { dir: string; validitySeconds: number }): Promise<Pebble> {
  listenerCertificates(dir);
  const [acmePort, managementPort, httpPort, tlsPort, dnsPort, challPort] = (await Promise.all(Array.from({ length: 6 }, () => freePort()))) as [number, number, number, number, number, number];
  writeFileSync(
    join(dir, "pebble.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, "listener.pem"),
        privateKey: join(dir, "listener.key"),
        httpPort,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        certificateValidityPeriod: validitySeconds,
      },
    }),
  );
  const pebbleLog = join(dir, "pebble.log");
  const chall = spawnGroup(
    CHALLTESTSRV,
    ["-http01", "", "-https01", "", "-tlsalpn01", "", "-dns01", `127.0.0.1:${dnsPort}`, "-management", `127.0.0.1:${challPort}`, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
    process.env,
    join(dir, "challtestsrv.log"),
  );
  const env = { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" };
  const pebble = spawnGroup(PEBBLE, ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`, "-strict"], env, pebbleLog);
  const logTail = (lines = 30) => (existsSync(pebbleLog) ? readFileSync(pebbleLog, "utf8").split("\n").slice(-lines).join("\n") : "");
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const ca = readFileSync(join(dir, "ca.pem"), "utf8");
  const deadline = Date.now() + 15_000;
  for (let last = ""; ; await new Promise((r) => setTimeout(r, 50))) {
    if (pebble.child.exitCode !== null || chall.child.exitCode !== null) throw new Error(`pebble or challtestsrv exited:\n${logTail()}`);
    if (Date.now() > deadline) throw new Error(`pebble did not answer within 15 s (${last}):\n${logTail()}`);
    try {
      if ((await probe(directoryUrl, ca)) === 200) break;
    } catch (error) {
      last = errorMessage(error);
    }
  }
  let proxyClose: (() => Promise<void>) | null = null;
  return {
    directoryUrl,
    listenerCaFile: join(dir, "ca.pem"),
    pid: pebble.child.pid!,
    logTail,
    stuckRequests: () => closeWaits(acmePort),
    async proxyTo(api) {
      const server = createServer((req, res) => {
        if (!(req.url ?? "").startsWith("/.well-known/acme-challenge/")) return void res.writeHead(404).end();
        const forward = request(new URL(req.url!, api), { headers: { host: req.headers.host ?? "" } }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, { "content-type": answer.headers["content-type"] ?? "text/plain" });
          answer.pipe(res);
        });
        forward.on("error", () => res.writeHead(502).end());
        forward.end();
      });
      await new Promise<void>((done) => server.listen(httpPort, "127.0.0.1", done));
      proxyClose = () =>
        new Promise((done) => {
          server.close(() => done());
          server.closeAllConnections();
        });
      onCleanup(() => proxyClose?.());
    },
    async stop() {
      await proxyClose?.();
      proxyClose = null;
      await Promise.all([pebble.stop(), chall.stop()]);
    },
  };
}
