// The service as the agent sees it, played by a local node:http server: a
// signed listing and signed bundles whose keys are sealed (ECDH-ES, A256GCM)
// to the edge's real public key, as src/http/delivery-routes.ts and
// src/pki/seal.ts make them. Tests change what it says to play a server that
// is not the service, a replay, a refusal.
import { type KeyObject, createPublicKey, generateKeyPairSync, randomUUID } from "node:crypto";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { CompactEncrypt, CompactSign, type JWK, calculateJwkThumbprint } from "jose";
import { type Issued, type Period, createCa, issueLeaf } from "./certificates.ts";

/** What the server answers to one request. */
export interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** A certificate the service delivers to the edge: a custom certificate, or a custom hostname's (with `hostname`). */
export interface Served {
  id: string;
  /** A custom hostname's name: listed and in the bundle, as src/tenant/key-delivery.ts makes them. */
  hostname?: string;
  /** A custom hostname's RSA twin (dual certificates): listed and in the bundle with `key_type: "rsa2048"`. */
  key_type?: "rsa2048";
  hosts: string[];
  expires_on: string;
  modified_on: string;
  /** The chain as uploaded: leaf, then the CA. */
  certificate: string;
  key: KeyObject;
}

/** A token of these claims, as the agent reads one (it reads edge_id and exp; the service would verify the signature). */
export function tokenWith(claims: Record<string, unknown>): string {
  return ["eyJhbGciOiJub25lIn0", Buffer.from(JSON.stringify(claims)).toString("base64url"), "sig"].join(".");
}

/** The version clock: every change is a second later than the last. */
let tick = Date.parse("2030-01-01T00:00:00.000Z");
const nextVersion = () => new Date((tick += 1000)).toISOString();

/** A fake delivery service for one zone and one edge. */
export class FakeService {
  zone = "zone-1";
  readonly edge = "edge-1";
  /** A delivery token naming the edge (the agent reads its edge_id claim; the service would verify it). */
  readonly token = tokenWith({ edge_id: "edge-1", zones: ["zone-1"] });
  readonly ca: Issued = createCa();
  readonly certificates = new Map<string, Served>();
  /** Every request's path, in order. */
  readonly requests: string[] = [];
  /** Every request's Authorization header, in order (which token each sync sent). */
  readonly authorizations: string[] = [];
  /** The service's signing key (Ed25519). */
  signer: KeyObject;
  /** The public JWK edges pin, as JSON. */
  serviceKey: string;
  /** Bundle fetches answered with an error instead: status and code by certificate id. */
  readonly refusals = new Map<string, { status: number; code: number }>();
  /** The iat the next replies are signed with (seconds); default now. */
  iat: (() => number) | null = null;
  /** When set, answers a path instead of the service (undefined: the service answers). */
  override: ((path: string) => Answer | undefined | Promise<Answer | undefined>) | null = null;
  url = "";
  #server: Server | null = null;

  /** The edge's registered public key: bundles are sealed to it. */
  readonly edgeJwk: JWK;

  constructor(edgeJwk: JWK) {
    this.edgeJwk = edgeJwk;
    const pair = generateKeyPairSync("ed25519");
    this.signer = pair.privateKey;
    this.serviceKey = JSON.stringify(pair.publicKey.export({ format: "jwk" }));
  }

  /** Listens on 127.0.0.1 on a free port. */
  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const path = req.url ?? "";
      this.requests.push(path);
      this.authorizations.push(req.headers.authorization ?? "");
      void (async () => (await this.override?.(path)) ?? (await this.answer(path)))().then(
        (a) => res.writeHead(a.status, { "content-type": "application/json", ...a.headers }).end(a.body),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((done) => this.#server!.listen(0, "127.0.0.1", done));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((done) => (this.#server ? this.#server.close(() => done()) : done()));
  }

  /** Uploads a new certificate for host (a fresh key, issued by the CA; its leaf valid for period, default current). */
  add(host: string, period?: Period): Served {
    const leaf = issueLeaf(this.ca, host, undefined, period);
    const served = { id: randomUUID(), hosts: [host], expires_on: "2030-12-31T00:00:00.000Z", modified_on: nextVersion(), certificate: leaf.pem + this.ca.pem, key: leaf.key };
    this.certificates.set(served.id, served);
    return served;
  }

  /** Creates a custom hostname with a certificate for it (a fresh key, issued by the CA), listed by its name. */
  addHostname(hostname: string, period?: Period): Served {
    const leaf = issueLeaf(this.ca, hostname, undefined, period);
    const served = { id: randomUUID(), hostname, hosts: [hostname], expires_on: "2030-12-31T00:00:00.000Z", modified_on: nextVersion(), certificate: leaf.pem + this.ca.pem, key: leaf.key };
    this.certificates.set(served.id, served);
    return served;
  }

  /** Adds the RSA-2048 twin of a custom hostname's certificate (dual certificates): an RSA key, its own id, listed by the same name. */
  addTwin(hostname: string): Served {
    const leaf = issueLeaf(this.ca, hostname, generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
    const served: Served = { id: randomUUID(), hostname, key_type: "rsa2048", hosts: [hostname], expires_on: "2030-12-31T00:00:00.000Z", modified_on: nextVersion(), certificate: leaf.pem + this.ca.pem, key: leaf.key };
    this.certificates.set(served.id, served);
    return served;
  }

  /** Renews a certificate: a new leaf for the same key (valid for period, default current), a new version. */
  renew(id: string, period?: Period): Served {
    const served = this.#get(id);
    const renewed = { ...served, certificate: issueLeaf(this.ca, served.hosts[0]!, served.key, period).pem + this.ca.pem, modified_on: nextVersion() };
    this.certificates.set(id, renewed);
    return renewed;
  }

  /** A policy-only edit: a new version, the same files. */
  touch(id: string): Served {
    const edited = { ...this.#get(id), modified_on: nextVersion() };
    this.certificates.set(id, edited);
    return edited;
  }

  #get(id: string): Served {
    const served = this.certificates.get(id);
    if (!served) throw new Error(`no certificate ${id}`);
    return served;
  }

  /** The service's own answer to a path: the signed listing, a signed bundle, or 404. */
  async answer(path: string): Promise<Answer> {
    const listing = `/client/v4/zones/${this.zone}/key_delivery/certificates`;
    if (path === listing) {
      const result = [...this.certificates.values()].map(({ id, hostname, key_type, hosts, expires_on, modified_on }) => ({
        id,
        ...(hostname === undefined ? {} : { hostname }),
        ...(key_type === undefined ? {} : { key_type }),
        hosts,
        expires_on,
        modified_on,
      }));
      return this.envelope("list", result);
    }
    const id = path.startsWith(`${listing}/`) ? path.slice(listing.length + 1) : "";
    const refusal = this.refusals.get(id);
    if (refusal) return { status: refusal.status, body: JSON.stringify({ success: false, errors: [{ code: refusal.code, message: "refused" }], messages: [], result: null }) };
    const served = this.certificates.get(id);
    if (!served) return { status: 404, body: JSON.stringify({ success: false, errors: [{ code: 7000, message: "No route for that URI" }], messages: [], result: null }) };
    return this.envelope("bundle", await this.bundle(served));
  }

  /**
   * A bundle as the service makes it: the key sealed to the edge, its
   * context in the JWE's protected header (header: members to change there).
   */
  async bundle(served: Served, edgeJwk: JWK = this.edgeJwk, header: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const sealed = await new CompactEncrypt(new Uint8Array(served.key.export({ format: "der", type: "pkcs8" })))
      .setProtectedHeader({
        alg: "ECDH-ES",
        enc: "A256GCM",
        cty: "pkcs8",
        kid: await calculateJwkThumbprint(edgeJwk, "sha256"),
        zone_id: this.zone,
        certificate_id: served.id,
        edge_id: this.edge,
        modified_on: served.modified_on,
        ...header,
      })
      .encrypt(createPublicKey({ key: edgeJwk, format: "jwk" }));
    const { id, hostname, key_type, hosts, expires_on, modified_on, certificate } = served;
    return { id, ...(hostname === undefined ? {} : { hostname }), ...(key_type === undefined ? {} : { key_type }), zone_id: this.zone, edge_id: this.edge, hosts, expires_on, modified_on, certificate, sealed_key: sealed };
  }

  /** A v4 envelope with the result and its signature in `signed`. */
  async envelope(what: "list" | "bundle", result: unknown, payload: Record<string, unknown> = {}): Promise<Answer> {
    const signed = await this.sign({ typ: `custom-csr-delivery/${what}`, zone_id: this.zone, edge_id: this.edge, iat: this.iat?.() ?? Math.floor(Date.now() / 1000), result, ...payload });
    return { status: 200, body: JSON.stringify({ success: true, errors: [], messages: [], result, signed }) };
  }

  /** A compact JWS of payload, as the service signs (EdDSA, typ custom-csr-delivery+jws). */
  async sign(payload: unknown, signer: KeyObject = this.signer, typ = "custom-csr-delivery+jws"): Promise<string> {
    return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: "EdDSA", typ }).sign(signer);
  }
}

