// One zone's view of managed certificates in the ACME end-to-end tests: its
// hostnames polled through the SDK until a state is reached, its audit
// trail, and what a registered edge receives for a hostname (the chain, and
// the key opened with the edge's private key), checked against pebble's root.
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type Cloudflare from "cloudflare";
import type { CustomHostnameGetResponse } from "cloudflare/resources/custom-hostnames/custom-hostnames";
import { compactDecrypt } from "jose";
import { expect } from "vitest";
import { admin, call } from "./api";
import { OPENSSL } from "./checkers";
import { mintToken } from "./credentials";
import type { Pebble } from "./pebble";
import { sdkClient } from "./sdk-client";
import type { TestServer } from "./server";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export type Hostname = CustomHostnameGetResponse;

/** An audit entry as the zone's audit-log route returns it (the fields these tests read). */
export interface AuditEntry {
  action: { type: string; result: boolean; info?: string };
  resource: { type: string; id: string };
  metadata?: Record<string, unknown>;
}

export class AcmeZone {
  readonly client: Cloudflare;
  readonly #edgeKey = generateKeyPairSync("ec", { namedCurve: "P-256" });

  constructor(
    private readonly server: TestServer,
    private readonly pebble: Pebble,
    readonly zone: string,
    readonly edge: string,
  ) {
    // The server keeps its port across restarts (startServer's `port`), so one client serves the whole file.
    this.client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] }) });
  }

  /** Registers this zone's edge (its P-256 public key) with the operator's secret. */
  async registerEdge(): Promise<void> {
    const jwk = this.#edgeKey.publicKey.export({ format: "jwk" });
    const registered = await admin(this.server.origin, this.server.secrets.ADMIN_SECRET, "PUT", `/edges/${this.edge}`, {
      public_key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
      labels: { country: "DE", region: "EU" },
    });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  }

  /** The hostname, read through the SDK. */
  get(id: string): Promise<Hostname> {
    return this.client.customHostnames.get(id, { zone_id: this.zone });
  }

  /** Polls the hostname until `done` holds (or fails with its last state and the logs). */
  async until(id: string, what: string, done: (h: Hostname) => boolean, timeoutMs = 60_000, everyMs = 500): Promise<Hostname> {
    const end = Date.now() + timeoutMs;
    let last: Hostname | null = null;
    while (Date.now() < end) {
      last = await this.get(id);
      if (done(last)) return last;
      await sleep(everyMs);
    }
    throw new Error(`${what}: not reached in ${timeoutMs} ms; last ${JSON.stringify(last)}\n${this.server.logTail(30)}\n${this.pebble.logTail(20)}`);
  }

  /** The certificate and key the edge receives for a hostname: the chain, and the key opened with the edge's private key (PKCS#8 PEM and DER). */
  async delivered(id: string): Promise<{ chain: string; key: string; der: Buffer }> {
    const token = mintToken(this.server.secrets.API_TOKEN_SECRET, { zones: [this.zone], edge: this.edge });
    const reply = await call<{ certificate: string; sealed_key: string }>(this.server.origin, "GET", `/client/v4/zones/${this.zone}/key_delivery/certificates/${id}`, { token });
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    const bundle = reply.body!.result!;
    const der = Buffer.from((await compactDecrypt(bundle.sealed_key, this.#edgeKey.privateKey)).plaintext);
    return { chain: bundle.certificate, key: createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString(), der };
  }

  /** Every audit entry of the zone, oldest first. */
  async audit(): Promise<AuditEntry[]> {
    const token = mintToken(this.server.secrets.API_TOKEN_SECRET, { zones: [this.zone] });
    const entries: AuditEntry[] = [];
    for (let page = 1; ; page++) {
      const reply = await call<AuditEntry[]>(this.server.origin, "GET", `/client/v4/zones/${this.zone}/audit_logs?per_page=100&direction=asc&page=${page}`, { token });
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      entries.push(...reply.body!.result!);
      if (reply.body!.result!.length < 100) return entries;
    }
  }

  /** The audit entries of one hostname's certificate (orders, validations, finalizes, installations), without the notification events it raised (`alert`). */
  async certificateSteps(id: string): Promise<AuditEntry[]> {
    return (await this.audit()).filter((e) => e.resource.id === id && e.resource.type === "custom_hostname_certificate" && e.action.type !== "alert");
  }

  /** The notification events the zone raised for one hostname's certificate (`alert` entries), by event type. */
  async alerts(id: string): Promise<string[]> {
    return (await this.audit()).filter((e) => e.resource.id === id && e.action.type === "alert").map((e) => String(e.metadata?.event_type));
  }

  /** openssl verify of the leaf against pebble's root, with the delivered chain's intermediates, for `name`. */
  async verifyChain(chain: string, name: string): Promise<string> {
    const dir = this.server.dir;
    const blocks = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    writeFileSync(join(dir, "leaf.pem"), `${blocks[0]}\n`);
    writeFileSync(join(dir, "chain.pem"), `${blocks.slice(1).join("\n")}\n`);
    writeFileSync(join(dir, "root.pem"), await this.pebble.rootPem());
    const { stdout } = await run(OPENSSL, ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "chain.pem"), "-verify_hostname", name, join(dir, "leaf.pem")]);
    return stdout;
  }
}

/** Whether the private key is the leaf's. */
export function keyMatches(chain: string, keyPem: string): boolean {
  const leaf = new X509Certificate(chain);
  const fromKey = createPublicKey(keyPem).export({ format: "der", type: "spki" });
  return Buffer.compare(leaf.publicKey.export({ format: "der", type: "spki" }), fromKey) === 0;
}
