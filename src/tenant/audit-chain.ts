import { sha256 } from "@noble/hashes/sha2.js";

/**
 * The hash chain of a scope's audit trail (docs/audit.md). Each entry's hash
 * is SHA-256 of its canonical bytes, which include the previous entry's
 * hash, its own position and the scope: editing, deleting, reordering or
 * moving an entry breaks the chain at that entry. SHA-256 runs synchronously
 * here (@noble/hashes) because an entry is written inside the SQLite
 * transaction of the change it records, where nothing may be awaited.
 */

/** Version tag of the canonical form; part of every hash. */
export const CHAIN_VERSION = "custom-csr-audit:v1";

/** The previous hash of the first entry. */
export const GENESIS_HASH = new Uint8Array(32);

/** An entry's fields as stored, in canonical order. */
export type ChainFields = {
  seq: number;
  at: string;
  action: string;
  result: number;
  info: string | null;
  actor_type: string;
  actor_id: string;
  actor_email: string | null;
  actor_ip: string | null;
  resource_type: string;
  resource_id: string | null;
  /** The metadata object's JSON text, exactly as stored. */
  metadata: string;
};

export const CHAIN_COLUMNS = [
  "seq",
  "at",
  "action",
  "result",
  "info",
  "actor_type",
  "actor_id",
  "actor_email",
  "actor_ip",
  "resource_type",
  "resource_id",
  "metadata",
] as const satisfies ReadonlyArray<keyof ChainFields>;

export const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The canonical bytes: the UTF-8 of a JSON array of the version, the scope,
 * every field in CHAIN_COLUMNS order (absent ones as null) and the previous
 * hash in hex. JSON.stringify of strings, integers and null is deterministic,
 * so any verifier can rebuild these bytes from an export.
 */
export function canonicalBytes(scope: string, fields: ChainFields, prevHash: Uint8Array): Uint8Array {
  const values: unknown[] = [CHAIN_VERSION, scope];
  for (const column of CHAIN_COLUMNS) values.push(fields[column]);
  values.push(hex(prevHash));
  return new TextEncoder().encode(JSON.stringify(values));
}

/** The entry's own hash. */
export function entryHash(scope: string, fields: ChainFields, prevHash: Uint8Array): Uint8Array {
  return sha256(canonicalBytes(scope, fields, prevHash));
}

/** Version tag of an entry's MAC; part of the MAC's input. */
export const MAC_VERSION = "custom-csr-audit-mac:v1";

/** What the MAC key is derived for (src/pki/keyring.ts `macKey`): purpose `audit`, context the scope. */
export const AUDIT_MAC_PURPOSE = "audit";

/**
 * The bytes an entry's MAC covers: the UTF-8 of a JSON array of the MAC's
 * version, the scope, the entry's position and its hash in hex. The hash
 * covers the entry and, through its predecessor's hash, every entry before
 * it, so a MAC keys the whole chain up to its entry: editing or rewriting
 * any entry needs the key to make the MACs agree again.
 */
export function macBytes(scope: string, seq: number, hash: Uint8Array): Uint8Array {
  return new TextEncoder().encode(JSON.stringify([MAC_VERSION, scope, seq, hex(hash)]));
}

// An id is laid out as a UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds,
// the version, then 74 bits that here hold the entry's position (40 bits, so
// ids sort in chain order within a scope, whose times never go backwards) and
// 34 bits of its hash (so ids differ across scopes). Nothing is stored for it.
const SEQ_BITS = 40;
const MAX_SEQ = 2 ** SEQ_BITS - 1;
const AUDIT_ID = /^([0-9a-f]{8})-([0-9a-f]{4})-7([0-9a-f]{3})-([89ab][0-9a-f]{3})-([0-9a-f]{12})$/;

/** The API id of the entry at `seq`, written at `atMs`, with hash `hash`. */
export function auditId(atMs: number, seq: number, hash: Uint8Array): string {
  if (!Number.isSafeInteger(seq) || seq < 1 || seq > MAX_SEQ) throw new RangeError("audit seq out of range");
  const time = atMs.toString(16).padStart(12, "0");
  const randA = Math.floor(seq / 2 ** 28); // the top 12 bits of seq
  const low = seq % 2 ** 28; // the other 28
  // rand_b: 2 variant bits, then 28 bits of seq and 34 of the hash (62).
  const h = hash;
  const hashBits = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0; // 32 bits
  const hashTop = ((h[4]! >> 6) & 0x3) >>> 0; // 2 more bits
  // Bits of rand_b after the variant: low(28) ‖ hashTop(2) ‖ hashBits(32).
  const group4 = 0x8000 | (low >>> 14); // variant 10 + top 14 bits of low
  const rest = (BigInt(low & 0x3fff) << 34n) | (BigInt(hashTop) << 32n) | BigInt(hashBits); // 48 bits
  return [
    time.slice(0, 8),
    time.slice(8, 12),
    `7${randA.toString(16).padStart(3, "0")}`,
    group4.toString(16).padStart(4, "0"),
    rest.toString(16).padStart(12, "0"),
  ].join("-");
}

/** The position an audit id names, or null when it is not one of ours (the caller checks it against the row). */
export function seqOfAuditId(id: string): number | null {
  const match = AUDIT_ID.exec(id.toLowerCase());
  if (!match) return null;
  const randA = Number.parseInt(match[3]!, 16);
  const group4 = Number.parseInt(match[4]!, 16) & 0x3fff;
  const rest = BigInt(`0x${match[5]}`);
  const low = (group4 << 14) | Number(rest >> 34n);
  const seq = randA * 2 ** 28 + low;
  return seq >= 1 ? seq : null;
}
