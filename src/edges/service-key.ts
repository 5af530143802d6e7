import { CompactSign, calculateJwkThumbprint } from "jose";
import { type Keyring, KeyringError } from "../pki/keyring";
import type { Storage } from "../storage/storage";

/** The service's signing key as edges pin it: an Ed25519 public JWK with its `kid` (RFC 7638 thumbprint). */
export interface ServiceJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  alg: "EdDSA";
  use: "sig";
}

/** The JWS `typ` of everything the service signs for edges (RFC 7515 §4.1.9). */
export const DELIVERY_JWS_TYPE = "custom-csr-delivery+jws";

const ED25519 = { name: "Ed25519" };
const context = (kid: string) => new TextEncoder().encode(`custom-csr-service-key:v1:${kid}`);

type KeyRow = { kid: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer; public_jwk: string };

/**
 * The service's own signing key (issue 19, item 4): what delivery listings
 * and bundles are signed with, so an edge that pinned its public half accepts
 * nothing another server sealed to it. Made once per deployment, on first
 * use; the private key is only ever stored as its AES-GCM wrap under a KEK
 * (custody material, like every private key here), bound to its kid. The
 * only writer of `service_keys`.
 */
export class ServiceKeys {
  // The unwrapped signing key, per keyring (a KEK change unwraps it again).
  #cached: { keyring: Keyring; kid: string; privateKey: CryptoKey } | null = null;

  constructor(private readonly storage: Storage) {}

  /** The public key edges pin, making the key pair first if there is none. */
  async publicKey(keyring: Keyring): Promise<ServiceJwk> {
    await this.#signer(keyring);
    return JSON.parse(this.#row()!.public_jwk) as ServiceJwk;
  }

  /** A compact JWS (EdDSA) of `payload` under the service key, with its kid and DELIVERY_JWS_TYPE. */
  async sign(keyring: Keyring, payload: string): Promise<string> {
    const { kid, privateKey } = await this.#signer(keyring);
    return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: "EdDSA", kid, typ: DELIVERY_JWS_TYPE }).sign(privateKey);
  }

  /** The KEK ids the key is wrapped under (at most one). */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT DISTINCT kek_id FROM service_keys`).map((r) => r.kek_id);
  }

  /** Whether the key wrapped under `kekId` unwraps with `keyring` (null: none is). */
  async opens(kekId: string, keyring: Keyring): Promise<boolean | null> {
    const row = this.#row();
    if (!row || row.kek_id !== kekId) return null;
    try {
      await this.#unwrap(row, keyring, false);
      return true;
    } catch {
      return false;
    }
  }

  /** Re-wraps the key under the current KEK when it is under another; true when it moved. */
  async rewrap(keyring: Keyring): Promise<boolean> {
    const row = this.#row();
    if (!row || row.kek_id === keyring.currentId) return false;
    const privateKey = await this.#unwrap(row, keyring, true);
    const wrap = await this.#wrap(privateKey, keyring, row.kid);
    return this.storage.sql.run(`UPDATE service_keys SET kek_id = ?, iv = ?, wrapped = ? WHERE kid = ? AND kek_id = ?`, keyring.currentId, wrap.iv, wrap.wrapped, row.kid, row.kek_id) > 0;
  }

  async #signer(keyring: Keyring): Promise<{ kid: string; privateKey: CryptoKey }> {
    if (this.#cached?.keyring === keyring) return this.#cached;
    let row = this.#row();
    if (!row) {
      const pair = (await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"])) as CryptoKeyPair;
      const { x } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
      const kid = await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: x! }, "sha256");
      const jwk: ServiceJwk = { kty: "OKP", crv: "Ed25519", x: x!, kid, alg: "EdDSA", use: "sig" };
      const wrap = await this.#wrap(pair.privateKey, keyring, kid);
      // Two first uses at once: the first row stands, the other key is dropped.
      this.storage.sql.run(
        `INSERT INTO service_keys (kid, kek_id, iv, wrapped, public_jwk, created_on) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        kid,
        keyring.currentId,
        wrap.iv,
        wrap.wrapped,
        JSON.stringify(jwk),
        new Date().toISOString(),
      );
      row = this.#row()!;
    }
    const privateKey = await this.#unwrap(row, keyring, false);
    this.#cached = { keyring, kid: row.kid, privateKey };
    return this.#cached;
  }

  #row(): KeyRow | null {
    return this.storage.sql.one<KeyRow>(`SELECT kid, kek_id, iv, wrapped, public_jwk FROM service_keys ORDER BY created_on LIMIT 1`);
  }

  async #wrap(privateKey: CryptoKey, keyring: Keyring, kid: string): Promise<{ iv: ArrayBuffer; wrapped: ArrayBuffer }> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const kek = keyring.keys.get(keyring.currentId)!;
    const wrapped = await crypto.subtle.wrapKey("pkcs8", privateKey, kek, { name: "AES-GCM", iv, additionalData: context(kid) });
    return { iv: iv.buffer, wrapped };
  }

  #unwrap(row: KeyRow, keyring: Keyring, extractable: boolean): Promise<CryptoKey> {
    const kek = keyring.keys.get(row.kek_id);
    if (!kek) throw new KeyringError(`key-encryption key ${row.kek_id} is not configured`);
    return crypto.subtle.unwrapKey("pkcs8", row.wrapped, kek, { name: "AES-GCM", iv: row.iv, additionalData: context(row.kid) }, ED25519, extractable, ["sign"]);
  }
}
