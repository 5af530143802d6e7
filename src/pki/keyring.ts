import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { fromBase64 } from "./pem";

/**
 * The key-encryption keys (KEKs) by id, from the KEY_ENCRYPTION_KEYS secret;
 * `currentId` wraps new records. Beside each AES key the keyring holds two
 * values derived from the same 32 bytes with HKDF-SHA256 (RFC 5869), so that
 * no second secret has to be kept:
 *
 * - its check value (`checks`), which the data records once for every KEK it
 *   is wrapped under: a KEK replaced under the same id, or lost, is noticed
 *   before anything is wrapped or refused with a bare failure;
 * - its integrity root (`integrity`), from which the MAC keys of the audit
 *   trail and of stored rows are derived (macKey below; src/pki/row-seal.ts): a data
 *   directory without the secret cannot forge them.
 */
export interface Keyring {
  readonly currentId: string;
  readonly keys: ReadonlyMap<string, CryptoKey>;
  /** Hex of HKDF(kek, info "custom-csr-kek-check:v1:<id>"): public, safe to store. */
  readonly checks: ReadonlyMap<string, string>;
  /** HKDF(kek, info "custom-csr-integrity:v1"): never stored, never leaves the isolate. */
  readonly integrity: ReadonlyMap<string, Uint8Array>;
}

/**
 * Why stored keys cannot be used (ours: 1501, 1505, 1506): the secret is
 * missing or malformed, it lacks a KEK the data needs, it holds another key
 * under a recorded id, or a wrap does not open. Nothing is written when one
 * of these is returned.
 */
export type KeyRefusal =
  | { readonly reason: "key_encryption_unavailable" }
  | { readonly reason: "key_encryption_key_missing"; readonly kek_id: string }
  | { readonly reason: "key_encryption_mismatch"; readonly kek_id: string }
  | { readonly reason: "key_unwrap_failed" };

export class KeyringError extends Error {
  override readonly name = "KeyringError";
}

/** A KEK id: what KEY_ENCRYPTION_KEYS entries are named by, safe to log. */
export const KEK_ID = /^[A-Za-z0-9_.-]{1,32}$/;

const encoder = new TextEncoder();
const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The check value of a KEK: hex of HKDF-SHA256 with no salt, the KEK's 32
 * bytes as input keying material and `custom-csr-kek-check:v1:<id>` as info,
 * 32 bytes long. It names the key without revealing it; scripts/data-keys.mjs
 * computes the same value in Node for `npm start`'s check before it serves.
 */
export function kekCheckValue(id: string, raw: Uint8Array): string {
  return hex(hkdf(sha256, raw, undefined, encoder.encode(`custom-csr-kek-check:v1:${id}`), 32));
}

/**
 * Parses the KEY_ENCRYPTION_KEYS secret: `id:base64` entries separated by
 * commas, each a 256-bit AES key; the first is current. Ids let an operator
 * rotate: add a new first entry and keep the old ones to read older records.
 * The raw bytes are used here and dropped; WebCrypto holds the AES keys
 * non-extractable.
 */
export async function loadKeyring(secret: string | undefined, subtle: SubtleCrypto = crypto.subtle): Promise<Keyring> {
  const entries = (secret ?? "").split(",").map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new KeyringError("KEY_ENCRYPTION_KEYS is not set");
  const keys = new Map<string, CryptoKey>();
  const checks = new Map<string, string>();
  const integrity = new Map<string, Uint8Array>();
  for (const entry of entries) {
    const at = entry.indexOf(":");
    const id = entry.slice(0, at);
    if (at < 1 || !KEK_ID.test(id) || keys.has(id)) {
      throw new KeyringError("KEY_ENCRYPTION_KEYS entries must be unique id:base64");
    }
    let raw: Uint8Array;
    try {
      raw = fromBase64(entry.slice(at + 1));
    } catch {
      throw new KeyringError(`key-encryption key ${id} is not base64`);
    }
    if (raw.length !== 32) throw new KeyringError(`key-encryption key ${id} must be 32 bytes`);
    keys.set(id, await subtle.importKey("raw", raw, "AES-GCM", false, ["wrapKey", "unwrapKey"]));
    checks.set(id, kekCheckValue(id, raw));
    integrity.set(id, hkdf(sha256, raw, undefined, encoder.encode("custom-csr-integrity:v1"), 32));
    raw.fill(0);
  }
  return { currentId: entries[0]!.slice(0, entries[0]!.indexOf(":")), keys, checks, integrity };
}

/**
 * The MAC key for one purpose and one context (a scope, the edge registry)
 * under the KEK `kekId`: HMAC-SHA256(integrity root, "<purpose>:<context>").
 * Synchronous, so it can be used inside a SQLite transaction. Throws
 * KeyringError when the KEK is not configured.
 */
export function macKey(keyring: Keyring, kekId: string, purpose: string, context: string): Uint8Array {
  const root = keyring.integrity.get(kekId);
  if (!root) throw new KeyringError(`key-encryption key ${kekId} is not configured`);
  return hmac(sha256, root, encoder.encode(`${purpose}:${context}`));
}

/** HMAC-SHA256 of `message` under `key` (synchronous). */
export function macOf(key: Uint8Array, message: Uint8Array | string): Uint8Array {
  return hmac(sha256, key, typeof message === "string" ? encoder.encode(message) : message);
}
