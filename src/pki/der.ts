/**
 * The few DER envelopes (X.690 §8.1) this code assembles by hand around
 * structures the asn1 packages encode: definite lengths, short form below
 * 128 bytes, long form above.
 */
export function derLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** tag ‖ length ‖ the parts, concatenated. */
export function tlv(tag: number, ...parts: Array<Uint8Array | ArrayBuffer>): Uint8Array {
  const views = parts.map((p) => (p instanceof Uint8Array ? p : new Uint8Array(p)));
  const body = concat(...views);
  return concat(Uint8Array.of(tag), derLength(body.length), body);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Reads one TLV header at `offset`: where its value starts and ends. */
export function readTlv(bytes: Uint8Array, offset: number, tag: number): { start: number; end: number } {
  if (bytes[offset] !== tag) throw new Error("unexpected DER tag");
  let length = bytes[offset + 1] ?? 0;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3) throw new Error("unsupported DER length");
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | (bytes[offset + 2 + i] ?? 0);
    start += count;
  }
  const end = start + length;
  if (end > bytes.length) throw new Error("DER length beyond input");
  return { start, end };
}
