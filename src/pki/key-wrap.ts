import type { KeyType } from "./csr-input";
import { KEY_ALGORITHMS } from "./keys";
import { fromBase64 } from "./pem";

/** The key-encryption keys (KEKs) by id; `currentId` wraps new records. */
export interface Keyring {
  readonly currentId: string;
  readonly keys: ReadonlyMap<string, CryptoKey>;
}

/** A private key as stored: never the key itself, only its AES-GCM wrap. */
export interface WrappedKey {
  kekId: string;
  iv: ArrayBuffer;
  wrapped: ArrayBuffer;
}

export class KeyringError extends Error {
  override readonly name = "KeyringError";
}

/**
 * Parses the KEY_ENCRYPTION_KEYS secret: `id:base64` entries separated by
 * commas, each a 256-bit AES key; the first is current. Ids let an operator
 * rotate: add a new first entry and keep the old ones to read older records.
 */
export async function loadKeyring(secret: string | undefined, subtle: SubtleCrypto = crypto.subtle): Promise<Keyring> {
  const entries = (secret ?? "").split(",").map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new KeyringError("KEY_ENCRYPTION_KEYS is not set");
  const keys = new Map<string, CryptoKey>();
  for (const entry of entries) {
    const at = entry.indexOf(":");
    const id = entry.slice(0, at);
    if (at < 1 || !/^[A-Za-z0-9_.-]{1,32}$/.test(id) || keys.has(id)) {
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
  }
  return { currentId: entries[0]!.slice(0, entries[0]!.indexOf(":")), keys };
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
