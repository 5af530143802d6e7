// Fixtures for the edge and delivery tests: edges with real key pairs,
// registered through the admin API, and their delivery tokens.
import { expect } from "vitest";
import type { EdgeRecord } from "../src/edges/edge-records";
import type { DeliverableCertificate, DeliveryBundle } from "../src/tenant/key-delivery";
import { type Reply, adminHeaders, call } from "./shared";
import { mintToken } from "./tokens";

export type Curve = "X25519" | "P-256";

export interface TestEdge {
  id: string;
  privateKey: CryptoKey;
  /** The public JWK as WebCrypto exports it (what `edge init` prints). */
  jwk: JsonWebKey;
  record: EdgeRecord;
}

/** A unique edge id, so tests never share an edge in the deployment's one registry. */
export function edgeId(prefix = "edge"): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 13)}`;
}

export async function edgeKeyPair(curve: Curve): Promise<{ privateKey: CryptoKey; jwk: JsonWebKey }> {
  const algorithm = curve === "X25519" ? { name: "X25519" } : { name: "ECDH", namedCurve: "P-256" };
  const pair = (await crypto.subtle.generateKey(algorithm, true, ["deriveBits"])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, jwk: (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey };
}

export const admin = {
  put: (id: string, body: unknown) => call<EdgeRecord>("PUT", `/admin/v1/edges/${id}`, { body, headers: adminHeaders }),
  get: (id: string) => call<EdgeRecord>("GET", `/admin/v1/edges/${id}`, { headers: adminHeaders }),
  list: () => call<EdgeRecord[]>("GET", "/admin/v1/edges", { headers: adminHeaders }),
  remove: (id: string) => call<{ id: string }>("DELETE", `/admin/v1/edges/${id}`, { headers: adminHeaders }),
};

/** Generates a key pair and registers an edge with it. */
export async function registerEdge(
  labels: { country: string; region: string; highest_security?: boolean },
  curve: Curve = "X25519",
  id = edgeId(),
): Promise<TestEdge> {
  const { privateKey, jwk } = await edgeKeyPair(curve);
  const reply = await admin.put(id, { public_key: jwk, labels });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return { id, privateKey, jwk, record: reply.body.result };
}

/** An edge's delivery token for the zones. */
export function edgeToken(edge: string, zones: string[]): Promise<string> {
  return mintToken({ zones, edge });
}

/** The delivery routes of a zone, as an edge calls them. */
export function delivery(zone: string, token: string) {
  const base = `/client/v4/zones/${zone}/key_delivery/certificates`;
  return {
    list: (): Promise<Reply<DeliverableCertificate[]>> => call("GET", base, { token }),
    get: (id: string): Promise<Reply<DeliveryBundle>> => call("GET", `${base}/${id}`, { token }),
  };
}
