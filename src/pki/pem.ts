/** Base64 of bytes, without relying on Node's Buffer (workerd has btoa). */
export function toBase64(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (let i = 0; i < view.length; i += 0x8000) {
    binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** PEM armour with 64-character lines (RFC 7468 §2). */
export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * Every PEM block with the given label, decoded, in order. Text outside the
 * blocks is ignored (RFC 7468 §2 allows explanatory text); a block whose body
 * is not base64 makes the whole input invalid, so returns null.
 */
export function fromPemBlocks(label: string, pem: string): Uint8Array[] | null {
  const pattern = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const blocks: Uint8Array[] = [];
  for (const match of pem.matchAll(pattern)) {
    const body = (match[1] ?? "").replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0 || body.length === 0) return null;
    blocks.push(fromBase64(body));
  }
  return blocks;
}
