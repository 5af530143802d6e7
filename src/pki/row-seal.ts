import { type Keyring, macKey, macOf } from "./keyring";

/**
 * A stored row's MAC (issue 19): HMAC-SHA256, under a key derived from a
 * key-encryption key for one purpose and context (src/pki/keyring.ts), over
 * the UTF-8 of a JSON array of a version tag and the row's fields that
 * decide where a key may go. Someone who can write the data directory but
 * does not hold KEY_ENCRYPTION_KEYS cannot make a changed row pass.
 */
/** A stored row that fails its MAC: which record (ours: 1477). */
export type IntegrityFailed = { readonly reason: "record_integrity_failed"; readonly record: "edge" | "certificate" | "service_key"; readonly id: string };

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
