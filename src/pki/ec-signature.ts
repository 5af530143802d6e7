import { concat, readTlv, tlv } from "./der";

/**
 * WebCrypto's ECDSA signs as IEEE P1363 (r‖s, fixed width); PKCS#10 and X.509
 * want the DER ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 3279
 * §2.2.3). Each INTEGER is minimal (leading zero bytes stripped) and positive
 * (0x00 prepended when the top bit is set).
 */
export function p1363ToDer(signature: ArrayBuffer | Uint8Array): Uint8Array {
  const raw = signature instanceof Uint8Array ? signature : new Uint8Array(signature);
  if (raw.length === 0 || raw.length % 2 !== 0) throw new Error("ECDSA signature must be r||s of equal halves");
  const half = raw.length / 2;
  const r = derInteger(raw.subarray(0, half));
  const s = derInteger(raw.subarray(half));
  return tlv(0x30, r, s);
}

/** The inverse, for verifying a DER signature with WebCrypto: r‖s, each `size` bytes. */
export function derToP1363(der: ArrayBuffer | Uint8Array, size: number): Uint8Array {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  const seq = readTlv(bytes, 0, 0x30);
  const r = readTlv(bytes, seq.start, 0x02);
  const s = readTlv(bytes, r.end, 0x02);
  if (s.end !== seq.end || seq.end !== bytes.length) throw new Error("trailing bytes in ECDSA-Sig-Value");
  const out = new Uint8Array(size * 2);
  out.set(fixedWidth(bytes.subarray(r.start, r.end), size), 0);
  out.set(fixedWidth(bytes.subarray(s.start, s.end), size), size);
  return out;
}

function derInteger(unsigned: Uint8Array): Uint8Array {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  let body = unsigned.subarray(i);
  if ((body[0] ?? 0) & 0x80) body = concat(Uint8Array.of(0), body);
  return tlv(0x02, body);
}

function fixedWidth(integer: Uint8Array, size: number): Uint8Array {
  let i = 0;
  while (i < integer.length - 1 && integer[i] === 0) i++;
  const body = integer.subarray(i);
  if (body.length > size) throw new Error("ECDSA integer wider than the curve");
  const out = new Uint8Array(size);
  out.set(body, size - body.length);
  return out;
}
