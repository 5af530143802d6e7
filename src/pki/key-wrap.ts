import type { KeyType } from "./csr-input";
import { KEY_ALGORITHMS } from "./keys";
import { type Keyring, KeyringError } from "./keyring";

/** A private key as stored: never the key itself, only its AES-GCM wrap. */
export interface WrappedKey {
  kekId: string;
  iv: ArrayBuffer;
  wrapped: ArrayBuffer;
}

/**
 * Additional data binding a wrapped key to its scope and CSR id, so a wrap
 * copied to another row or another tenant fails to unwrap.
 */
export function wrapContext(scope: string, csrId: string): Uint8Array {
  return new TextEncoder().encode(`custom-csr-key:v1:${scope}:${csrId}`);
}

/**
 * Additional data binding a pooled key (generated ahead of demand, not yet
 * any CSR's) to its scope and its pool id, which is random and never reused:
 * a pooled wrap copied elsewhere, or restored into the pool after use, does
 * not unwrap as anything else.
 */
export function poolWrapContext(scope: string, poolKeyId: string): Uint8Array {
  return new TextEncoder().encode(`custom-csr-pool:v1:${scope}:${poolKeyId}`);
}

/**
 * Additional data binding a managed custom hostname's key, or an ACME
 * account key, to its scope and its own random id (never reused): a wrap
 * copied to another row or scope does not unwrap there.
 */
export function namedWrapContext(purpose: "hostname-key" | "acme-account", scope: string, keyId: string): Uint8Array {
  return new TextEncoder().encode(`custom-csr-${purpose}:v1:${scope}:${keyId}`);
}

/** Wraps a private key as PKCS#8 under the current KEK with AES-256-GCM. */
export async function wrapPrivateKey(
  privateKey: CryptoKey,
  keyring: Keyring,
  context: Uint8Array,
  subtle: SubtleCrypto = crypto.subtle,
): Promise<WrappedKey> {
  const kek = keyring.keys.get(keyring.currentId)!;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const wrapped = await subtle.wrapKey("pkcs8", privateKey, kek, { name: "AES-GCM", iv, additionalData: context });
  return { kekId: keyring.currentId, iv: iv.buffer, wrapped };
}

/** Why a stored wrap was not moved under the current KEK: its KEK is not configured (it stays), or it does not open. */
export type RewrapFailure = { id: string; kek_id: string; reason: "kek_not_configured" | "unwrap_failed" };

/**
 * Moves wrapped keys under the keyring's current KEK, each unwrapped
 * (extractable for this only) and wrapped again with the same context, one
 * at a time. Answers the new wraps by row, and the rows that failed.
 */
export async function rewrapUnderCurrent<R extends { kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer }>(
  rows: readonly R[],
  keyring: Keyring,
  describe: (row: R) => { id: string; keyType: KeyType; context: Uint8Array },
): Promise<{ moved: Array<{ row: R; wrap: WrappedKey }>; failures: RewrapFailure[] }> {
  const moved: Array<{ row: R; wrap: WrappedKey }> = [];
  const failures: RewrapFailure[] = [];
  for (const row of rows) {
    const { id, keyType, context } = describe(row);
    try {
      const key = await unwrapPrivateKey({ kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped }, keyType, keyring, context, { extractable: true });
      moved.push({ row, wrap: await wrapPrivateKey(key, keyring, context) });
    } catch (error) {
      failures.push({ id, kek_id: row.kek_id, reason: error instanceof KeyringError ? "kek_not_configured" : "unwrap_failed" });
    }
  }
  return { moved, failures };
}

/**
 * Unwraps a stored key into a signing key, non-extractable unless it is
 * being re-wrapped under another KEK. Throws
 * KeyringError when its KEK is not configured; WebCrypto's OperationError
 * when the wrap, its context or the KEK is wrong.
 */
export async function unwrapPrivateKey(
  stored: WrappedKey,
  keyType: KeyType,
  keyring: Keyring,
  context: Uint8Array,
  { extractable = false, subtle = crypto.subtle }: { extractable?: boolean; subtle?: SubtleCrypto } = {},
): Promise<CryptoKey> {
  const kek = keyring.keys.get(stored.kekId);
  if (!kek) throw new KeyringError(`key-encryption key ${stored.kekId} is not configured`);
  return subtle.unwrapKey(
    "pkcs8",
    stored.wrapped,
    kek,
    { name: "AES-GCM", iv: stored.iv, additionalData: context },
    KEY_ALGORITHMS[keyType].import,
    extractable,
    ["sign"],
  );
}

// A secret that is not a key (a webhook destination's) is wrapped as the raw bytes of an HMAC key: AES-GCM
// wrapKey is all a KEK may do, and an HMAC key takes bytes of any length.
const SECRET_AS_KEY = { name: "HMAC", hash: "SHA-256" } as const;

/** Additional data binding a wrapped secret to its scope and its owner's id (a webhook destination's). */
export function secretWrapContext(purpose: "webhook-secret", scope: string, id: string): Uint8Array {
  return new TextEncoder().encode(`custom-csr-${purpose}:v1:${scope}:${id}`);
}

/** Wraps a secret (non-empty text) under the current KEK with AES-256-GCM. */
export async function wrapSecret(secret: string, keyring: Keyring, context: Uint8Array, subtle: SubtleCrypto = crypto.subtle): Promise<WrappedKey> {
  const bytes = new TextEncoder().encode(secret);
  try {
    const key = await subtle.importKey("raw", bytes, SECRET_AS_KEY, true, ["sign"]);
    const kek = keyring.keys.get(keyring.currentId)!;
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const wrapped = await subtle.wrapKey("raw", key, kek, { name: "AES-GCM", iv, additionalData: context });
    return { kekId: keyring.currentId, iv: iv.buffer, wrapped };
  } finally {
    bytes.fill(0);
  }
}

/** The secret of a wrap made by wrapSecret; throws KeyringError when its KEK is not configured, and rejects when the wrap does not open. */
export async function unwrapSecret(stored: WrappedKey, keyring: Keyring, context: Uint8Array, subtle: SubtleCrypto = crypto.subtle): Promise<string> {
  const kek = keyring.keys.get(stored.kekId);
  if (!kek) throw new KeyringError(`key-encryption key ${stored.kekId} is not configured`);
  const key = await subtle.unwrapKey("raw", stored.wrapped, kek, { name: "AES-GCM", iv: stored.iv, additionalData: context }, SECRET_AS_KEY, true, ["sign"]);
  const bytes = new Uint8Array((await subtle.exportKey("raw", key)) as ArrayBuffer);
  try {
    return new TextDecoder().decode(bytes);
  } finally {
    bytes.fill(0);
  }
}
