import { type Keyring, macKey, macOf } from "./keyring";

/**
 * A stored row's MAC (issue 19): HMAC-SHA256, under a key derived from a
 * key-encryption key for one purpose and context (src/pki/keyring.ts), over
 * the UTF-8 of a JSON array of a version tag and the row's fields that
 * decide where a key may go. Someone who can write the data directory but
 * does not hold KEY_ENCRYPTION_KEYS cannot make a changed row pass.
 */
/** A stored row that fails its MAC: which record (ours: 1477). */
export type IntegrityFailed = { readonly reason: "record_integrity_failed"; readonly record: "edge" | "certificate" | "service_key" | "custom_hostname"; readonly id: string };

/** A row refused by its seal: changed (1477), or keyed under a KEK that is not configured (1501). */
export type SealRefusal = IntegrityFailed | { readonly reason: "key_encryption_key_missing"; readonly kek_id: string };

/**
 * Why a row that fails its check is refused: 1501 naming the KEK when its MAC
 * is keyed under one that is not configured (the operator can fix that),
 * otherwise 1477 (the row was changed, or its MAC removed).
 */
export function sealRefusal(keyring: Keyring, macKek: string | null, record: IntegrityFailed["record"], id: string): SealRefusal {
  return macKek !== null && !keyring.integrity.has(macKek) ? { reason: "key_encryption_key_missing", kek_id: macKek } : { reason: "record_integrity_failed", record, id };
}

export interface RowSeal {
  mac: ArrayBuffer;
  kekId: string;
}

/** The MAC of `fields` (in a fixed order) under the current KEK. */
export function sealRow(keyring: Keyring, purpose: string, context: string, fields: readonly unknown[]): RowSeal {
  const mac = macOf(macKey(keyring, keyring.currentId, purpose, context), JSON.stringify([`custom-csr-${purpose}:v1`, ...fields]));
  return { mac: mac.slice().buffer, kekId: keyring.currentId };
}

/**
 * Whether a stored MAC matches `fields` under its KEK: false for a changed
 * row, a missing MAC, or a KEK that is not configured (the caller refuses
 * the row either way, and logs it).
 */
export function rowSealed(keyring: Keyring, purpose: string, context: string, fields: readonly unknown[], stored: { mac: ArrayBuffer | null; kekId: string | null }): boolean {
  if (stored.mac === null || stored.kekId === null || !keyring.integrity.has(stored.kekId)) return false;
  const expected = macOf(macKey(keyring, stored.kekId, purpose, context), JSON.stringify([`custom-csr-${purpose}:v1`, ...fields]));
  const actual = new Uint8Array(stored.mac);
  if (actual.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff |= actual[i]! ^ expected[i]!;
  return diff === 0;
}
