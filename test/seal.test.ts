// Sealing keys to edges inside workerd: jose's ECDH-ES (X25519 and P-256)
// with AES-256-GCM, full circle through a real decryption, and the strict
// registration check of an edge's public key.
import { base64url, calculateJwkThumbprint, compactDecrypt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { type EdgePublicKey, parseEdgePublicKey } from "../src/pki/edge-key";
import { type SealContext, sealToEdge } from "../src/pki/seal";

type Curve = "X25519" | "P-256";

/** A fresh edge key pair the way `edge init` makes one, and its public JWK as exported by WebCrypto. */
async function edgeKeys(curve: Curve): Promise<{ privateKey: CryptoKey; jwk: JsonWebKey }> {
  const algorithm = curve === "X25519" ? { name: "X25519" } : { name: "ECDH", namedCurve: "P-256" };
  const pair = (await crypto.subtle.generateKey(algorithm, true, ["deriveBits"])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, jwk: (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey };
}

async function registered(jwk: JsonWebKey): Promise<{ key: EdgePublicKey; thumbprint: string }> {
  const parsed = await parseEdgePublicKey(jwk);
  if (!parsed.ok) throw new Error(`${parsed.reason}: ${parsed.problem}`);
  return parsed.value;
}

const context = (kid: string): SealContext => ({
  zone_id: "zone-one",
  certificate_id: "0f6a3a1e-2b2c-4d4e-8f8f-1a2b3c4d5e6f",
  edge_id: "edge-fra-1",
  modified_on: "2026-11-23T10:00:00.000Z",
  kid,
});

const secret = () => crypto.getRandomValues(new Uint8Array(138)); // a P-256 PKCS#8 is 138 bytes

/** Flips one bit of one base64url segment of a compact JWE. */
function tamper(jwe: string, segment: number): string {
  const parts = jwe.split(".");
  const bytes = base64url.decode(parts[segment]!);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  parts[segment] = base64url.encode(bytes);
  return parts.join(".");
}

describe("sealToEdge (jose ECDH-ES + A256GCM in workerd)", () => {
  for (const curve of ["X25519", "P-256"] as const) {
    it(`${curve}: opens with the edge's private key, carrying its context in the protected header`, async () => {
      const edge = await edgeKeys(curve);
      const { key, thumbprint } = await registered(edge.jwk);
      const plaintext = secret();
      const jwe = await sealToEdge(plaintext, key, context(thumbprint));
      expect(jwe.split(".")).toHaveLength(5);
      // Direct key agreement: no encrypted key segment.
      expect(jwe.split(".")[1]).toBe("");
      const opened = await compactDecrypt(jwe, edge.privateKey);
      expect(new Uint8Array(opened.plaintext)).toEqual(plaintext);
      expect(opened.protectedHeader).toMatchObject({
        alg: "ECDH-ES",
        enc: "A256GCM",
        cty: "pkcs8",
        kid: thumbprint,
        zone_id: "zone-one",
        certificate_id: "0f6a3a1e-2b2c-4d4e-8f8f-1a2b3c4d5e6f",
        edge_id: "edge-fra-1",
        modified_on: "2026-11-23T10:00:00.000Z",
      });
      expect(opened.protectedHeader.epk).toMatchObject({ crv: curve });
      // A fresh ephemeral key per seal: the same plaintext never seals the same way twice.
      expect(await sealToEdge(plaintext, key, context(thumbprint))).not.toBe(jwe);
    });

    it(`${curve}: does not open with another edge's key, nor once any segment is changed`, async () => {
      const a = await edgeKeys(curve);
      const b = await edgeKeys(curve);
      const { key, thumbprint } = await registered(a.jwk);
      const jwe = await sealToEdge(secret(), key, context(thumbprint));
      await expect(compactDecrypt(jwe, b.privateKey)).rejects.toThrow();
      for (const segment of [2, 3, 4]) await expect(compactDecrypt(tamper(jwe, segment), a.privateKey)).rejects.toThrow();
      // The header is the cipher's additional data: re-encoding it with another zone fails the tag.
      const [header, ...rest] = jwe.split(".");
      const moved = { ...decodeProtectedHeader(jwe), zone_id: "zone-two" };
      const forged = [base64url.encode(JSON.stringify(moved)), ...rest].join(".");
      expect(header).not.toBe(forged.split(".")[0]);
      await expect(compactDecrypt(forged, a.privateKey)).rejects.toThrow();
    });
  }
});

describe("parseEdgePublicKey", () => {
  it("accepts WebCrypto's public JWKs of both curves, keeps only the public members, and thumbprints them (RFC 7638)", async () => {
    for (const curve of ["X25519", "P-256"] as const) {
      const { jwk } = await edgeKeys(curve);
      expect(jwk).toHaveProperty("key_ops");
      const { key, thumbprint } = await registered({ ...jwk, kid: "mine", use: "enc", alg: "ECDH-ES" } as JsonWebKey);
      expect(key).toEqual(curve === "X25519" ? { kty: "OKP", crv: "X25519", x: jwk.x } : { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y });
      expect(thumbprint).toBe(await calculateJwkThumbprint(key, "sha256"));
      expect(thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it("refuses private keys without echoing them, and anything that is not a usable public P-256 or X25519 key", async () => {
    const x25519 = await edgeKeys("X25519");
    const p256 = await edgeKeys("P-256");
    const privateJwk = (await crypto.subtle.exportKey("jwk", p256.privateKey)) as JsonWebKey;
    const zero = "A".repeat(43);
    const fromHex = (hex: string) => base64url.encode(new Uint8Array(hex.match(/../g)!.map((h) => Number.parseInt(h, 16))));
    const cases: Array<[string, unknown, RegExp]> = [
      ["a private P-256 JWK", privateJwk, /private key member/],
      ["a public JWK with d added", { ...x25519.jwk, d: "secret-material" }, /private key member/],
      ["an RSA private member", { ...x25519.jwk, p: "x" }, /private key member/],
      ["a symmetric key", { kty: "oct", k: "AAAA" }, /private key member/],
      ["not an object", "a string", /JWK object/],
      ["an array", [x25519.jwk], /JWK object/],
      ["null", null, /JWK object/],
      ["an unknown member", { ...x25519.jwk, x5c: ["MII"] }, /"x5c" is not a public JWK member/],
      ["use sig", { ...x25519.jwk, use: "sig" }, /"use"/],
      ["alg ES256", { ...p256.jwk, alg: "ES256" }, /"alg"/],
      ["key_ops sign", { ...p256.jwk, key_ops: ["sign"] }, /"key_ops"/],
      ["Ed25519", { kty: "OKP", crv: "Ed25519", x: x25519.jwk.x }, /"kty" and "crv"/],
      ["P-384", { kty: "EC", crv: "P-384", x: p256.jwk.x, y: p256.jwk.y }, /"kty" and "crv"/],
      ["RSA", { kty: "RSA", n: "AQAB", e: "AQAB" }, /not a public JWK member|"kty" and "crv"/],
      ["X25519 with y", { ...x25519.jwk, y: p256.jwk.y }, /has no y/],
      ["a short x", { kty: "OKP", crv: "X25519", x: x25519.jwk.x!.slice(0, 42) }, /32 bytes/],
      ["padding", { kty: "OKP", crv: "X25519", x: `${x25519.jwk.x}=` }, /32 bytes/],
      ["standard base64", { kty: "OKP", crv: "X25519", x: `${x25519.jwk.x!.slice(0, 42)}+` }, /32 bytes/],
      ["a non-canonical last character", { kty: "OKP", crv: "X25519", x: `${zero.slice(0, 42)}B` }, /32 bytes/],
      ["P-256 without y", { kty: "EC", crv: "P-256", x: p256.jwk.x }, /x and y/],
      ["a P-256 point off the curve", { kty: "EC", crv: "P-256", x: p256.jwk.x, y: p256.jwk.x }, /usable public key/],
      ["the P-256 point (0, 1)", { kty: "EC", crv: "P-256", x: zero, y: `${zero.slice(0, 42)}E` }, /usable public key/],
      ["X25519 u = 0", { kty: "OKP", crv: "X25519", x: zero }, /usable public key/],
      ["X25519 u = 1", { kty: "OKP", crv: "X25519", x: fromHex(`01${"00".repeat(31)}`) }, /usable public key/],
      [
        "an X25519 point of order 8",
        { kty: "OKP", crv: "X25519", x: fromHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800") },
        /usable public key/,
      ],
    ];
    for (const [name, input, detail] of cases) {
      const result = await parseEdgePublicKey(input);
      expect(result, name).toMatchObject({ ok: false, reason: "invalid_edge_key", pointer: "/public_key" });
      if (!result.ok) {
        expect(result.problem, name).toMatch(detail);
        expect(result.problem, name).not.toContain("secret-material");
        if (privateJwk.d) expect(result.problem, name).not.toContain(privateJwk.d);
      }
    }
  });
});
