// What the ACME end-to-end tests stand around the service: a DNS-over-HTTPS
// resolver (RFC 8484's JSON form) that looks names up in pebble-challtestsrv's
// DNS, so the service can see when a dns-01 record is published, as it would
// ask a public resolver; and the edge's plain-HTTP listener that pebble's
// validator dials for http-01, which forwards /.well-known/acme-challenge/ to
// the API with the Host header, as docs/nginx-edge.conf does.
import { execFileSync } from "node:child_process";
import { promises as dns } from "node:dns";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { OPENSSL } from "./checkers";

export interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

const closing = (server: Server) => () => new Promise<void>((done) => server.close(() => done()));

/** A TLS certificate for 127.0.0.1 from a throwaway CA (its file is what `npm start --ca-file` is given). */
export function loopbackCertificate(dir: string): { caFile: string; cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const run = (args: string[]) => execFileSync(OPENSSL, args, { stdio: "pipe" });
  const p = (name: string) => join(dir, name);
  run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=e2e resolver CA"]);
  run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=127.0.0.1"]);
  writeFileSync(p("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  run(["x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2", "-out", p("leaf.pem"), "-extfile", p("ext.cnf")]);
  return { caFile: p("ca.pem"), cert: readFileSync(p("leaf.pem"), "utf8"), key: readFileSync(p("leaf.key"), "utf8") };
}

/**
 * A DoH JSON resolver on https://127.0.0.1:PORT/dns-query answering TXT
 * questions from the DNS server at 127.0.0.1:`dnsPort`.
 */
export async function startDohResolver(dir: string, dnsPort: number): Promise<Listening & { caFile: string }> {
  const tls = loopbackCertificate(dir);
  const resolver = new dns.Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "https://127.0.0.1");
    const name = url.searchParams.get("name") ?? "";
    const reply = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/dns-json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== "/dns-query" || url.searchParams.get("type") !== "TXT" || name === "") {
      res.writeHead(400).end();
      return;
    }
    resolver.resolveTxt(name).then(
      (records) => reply({ Status: 0, Answer: records.map((chunks) => ({ name, type: 16, TTL: 0, data: `"${chunks.join("")}"` })) }),
      () => reply({ Status: 3, Answer: [] }),
    );
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/dns-query`, caFile: tls.caFile, close: closing(server) };
}

/** The edge's HTTP listener on 127.0.0.1:`port`: /.well-known/acme-challenge/* forwarded to `api` with the request's Host; anything else 404. */
export async function startChallengeProxy(port: number, api: () => string): Promise<Listening> {
  const server = createServer((req, res) => {
    if (!(req.url ?? "").startsWith("/.well-known/acme-challenge/")) {
      res.writeHead(404).end();
      return;
    }
    const target = new URL(req.url!, api());
    const forward = request(target, { method: "GET", headers: { host: req.headers.host ?? "" } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { "content-type": answer.headers["content-type"] ?? "text/plain" });
      answer.pipe(res);
    });
    forward.on("error", () => res.writeHead(502).end());
    forward.end();
  });
  await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
  return { url: `http://127.0.0.1:${port}`, close: closing(server) };
}
