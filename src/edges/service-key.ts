import { type Clock, systemClock } from "../core/clock";
import { CompactSign, calculateJwkThumbprint } from "jose";
import { fail, ok, type Result } from "../core/result";
import type { KeyRefusal, Keyring } from "../pki/keyring";
import type { IntegrityFailed } from "../pki/row-seal";
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

/** Why the service key cannot be used: its KEK is missing (1501), its wrap does not open (1506), or its public half is not its own (1477). */
export type ServiceKeyRefusal = KeyRefusal | IntegrityFailed;

type Signer = { keyring: Keyring; kid: string; privateKey: CryptoKey; jwk: ServiceJwk };

/**
 * The service's own signing key (issue 19, item 4): what delivery listings
 * and bundles are signed with, so an edge that pinned its public half accepts
 * nothing another server sealed to it. Made once per deployment, on first
 * use; the private key is only ever stored as its AES-GCM wrap under a KEK
 * (custody material, like every private key here), bound to its kid. The
 * public half edges pin is never taken from storage on trust: it must be the
 * thumbprint its kid names (the kid is bound to the wrap), and it must verify
 * a signature the unwrapped private key made, before it is shown or used. The
 * only writer of `service_keys`. The unwrapped key is kept in memory per
 * keyring (a KEK change unwraps and checks it again).
 */
export class ServiceKeys {
  #cached: Signer | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The public key edges pin, making the key pair first if there is none. */
  async publicKey(keyring: Keyring): Promise<Result<ServiceJwk, ServiceKeyRefusal>> {
    const signer = await this.#signer(keyring);
    return signer.ok ? ok(signer.value.jwk) : signer;
  }

  /** A compact JWS (EdDSA) of `payload` under the service key, with its kid and DELIVERY_JWS_TYPE. */
  async sign(keyring: Keyring, payload: string): Promise<Result<string, ServiceKeyRefusal>> {
    const signer = await this.#signer(keyring);
    if (!signer.ok) return signer;
    const { kid, privateKey } = signer.value;
    return ok(await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: "EdDSA", kid, typ: DELIVERY_JWS_TYPE }).sign(privateKey));
  }

  /** The KEK ids the key is wrapped under (at most one). */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT DISTINCT kek_id FROM service_keys`).map((r) => r.kek_id);
  }

  /** Whether the key wrapped under `kekId` unwraps with `keyring` (null: none is). */
  async opens(kekId: string, keyring: Keyring): Promise<boolean | null> {
    const row = this.#row();
    if (!row || row.kek_id !== kekId) return null;
    return (await this.#unwrap(row, keyring, false)).ok;
  }

  /** Re-wraps the key under the current KEK when it is under another (and checks out); true when it moved. */
  async rewrap(keyring: Keyring): Promise<Result<boolean, ServiceKeyRefusal>> {
    const row = this.#row();
    if (!row || row.kek_id === keyring.currentId) return ok(false);
    const checked = await this.#signer(keyring);
    if (!checked.ok) return checked;
    const privateKey = await this.#unwrap(row, keyring, true);
    if (!privateKey.ok) return privateKey;
    const wrap = await this.#wrap(privateKey.value, keyring, row.kid);
    return ok(this.storage.sql.run(`UPDATE service_keys SET kek_id = ?, iv = ?, wrapped = ? WHERE kid = ? AND kek_id = ?`, keyring.currentId, wrap.iv, wrap.wrapped, row.kid, row.kek_id) > 0);
  }

  async #signer(keyring: Keyring): Promise<Result<Signer, ServiceKeyRefusal>> {
    if (this.#cached?.keyring === keyring) return ok(this.#cached);
    let row = this.#row();
    if (!row) {
      const pair = (await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"])) as CryptoKeyPair;
      const { x } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
      const kid = await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: x! }, "sha256");
      const jwk: ServiceJwk = { kty: "OKP", crv: "Ed25519", x: x!, kid, alg: "EdDSA", use: "sig" };
      const wrap = await this.#wrap(pair.privateKey, keyring, kid);
      // Only when there is still none: two first uses at once cannot both
      // insert (no await between this check and the insert), and #row reads
      // the oldest row should another have been written some other way.
      if (this.#row() === null) this.storage.sql.run(
        `INSERT INTO service_keys (kid, kek_id, iv, wrapped, public_jwk, created_on) VALUES (?, ?, ?, ?, ?, ?)`,
        kid,
        keyring.currentId,
        wrap.iv,
        wrap.wrapped,
        JSON.stringify(jwk),
        this.clock().toISOString(),
      );
      row = this.#row()!;
    }
    const privateKey = await this.#unwrap(row, keyring, false);
    if (!privateKey.ok) return privateKey;
    const jwk = await this.#checkedPublic(row, privateKey.value);
    if (jwk === null) {
      console.error(JSON.stringify({ level: "error", event: "service_key_tampered", kid: row.kid }));
      return fail({ reason: "record_integrity_failed", record: "service_key", id: row.kid });
    }
    this.#cached = { keyring, kid: row.kid, privateKey: privateKey.value, jwk };
    return ok(this.#cached);
  }

  // The stored public JWK, when it is the key pair's own: its thumbprint is
  // the kid the wrap is bound to, and it verifies a signature of the private key.
  async #checkedPublic(row: KeyRow, privateKey: CryptoKey): Promise<ServiceJwk | null> {
    let stored: ServiceJwk;
    try {
      stored = JSON.parse(row.public_jwk) as ServiceJwk;
      if (stored.kty !== "OKP" || stored.crv !== "Ed25519" || typeof stored.x !== "string") return null;
      const jwk: ServiceJwk = { kty: "OKP", crv: "Ed25519", x: stored.x, kid: row.kid, alg: "EdDSA", use: "sig" };
      if ((await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: jwk.x }, "sha256")) !== row.kid) return null;
      const publicKey = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, ED25519, false, ["verify"]);
      const challenge = crypto.getRandomValues(new Uint8Array(32));
      const signature = await crypto.subtle.sign(ED25519, privateKey, challenge);
      return (await crypto.subtle.verify(ED25519, publicKey, signature, challenge)) ? jwk : null;
    } catch {
      return null;
    }
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

  async #unwrap(row: KeyRow, keyring: Keyring, extractable: boolean): Promise<Result<CryptoKey, KeyRefusal>> {
    const kek = keyring.keys.get(row.kek_id);
    if (!kek) return fail({ reason: "key_encryption_key_missing", kek_id: row.kek_id });
    try {
      return ok(await crypto.subtle.unwrapKey("pkcs8", row.wrapped, kek, { name: "AES-GCM", iv: row.iv, additionalData: context(row.kid) }, ED25519, extractable, ["sign"]));
    } catch {
      console.error(JSON.stringify({ level: "error", event: "service_key_unwrap_failed", kid: row.kid, kek_id: row.kek_id }));
      return fail({ reason: "key_unwrap_failed" });
    }
  }
}
