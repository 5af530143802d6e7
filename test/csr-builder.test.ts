import { AsnConvert } from "@peculiar/asn1-schema";
import { describe, expect, it } from "vitest";
import { OID, buildCsr } from "../src/pki/csr-builder";
import { readTlv } from "../src/pki/der";
import { derToP1363, p1363ToDer } from "../src/pki/ec-signature";
import { generateKeyPair } from "../src/pki/keys";
import { parseCsr, verifyCsrSignature } from "./csr-parse";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

const PRINTABLE_STRING = 0x13;
const UTF8_STRING = 0x0c;

const subject = {
  country: "US",
  state: "California",
  locality: "San Francisco",
  organization: "Cloudflare, Inc.",
  organizational_unit: "Engineering",
  common_name: "app.customer-one.com",
  sans: ["app.customer-one.com", "*.customer-one.com", "www.customer-one.com"],
};

describe("PKCS#10 builder", () => {
  for (const keyType of ["rsa2048", "p256v1"] as const) {
    it(`builds a ${keyType} request that parses back field by field and verifies`, async () => {
      const keys = await generateKeyPair(keyType);
      const pem = await buildCsr({ ...subject, key_type: keyType }, keys);

      expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
      expect(pem).toMatch(/\n-----END CERTIFICATE REQUEST-----\n$/);
      const body = pem.split("\n").slice(1, -2);
      for (const line of body.slice(0, -1)) expect(line).toHaveLength(64);
      expect(body.at(-1)!.length).toBeLessThanOrEqual(64);

      const csr = parseCsr(pem);
      expect(csr.request.certificationRequestInfo.version).toBe(0);
      expect(csr.subject).toEqual([
        { oid: OID.country, tag: PRINTABLE_STRING, value: "US", count: 1 },
        { oid: OID.state, tag: UTF8_STRING, value: "California", count: 1 },
        { oid: OID.locality, tag: UTF8_STRING, value: "San Francisco", count: 1 },
        { oid: OID.organization, tag: UTF8_STRING, value: "Cloudflare, Inc.", count: 1 },
        { oid: OID.organizational_unit, tag: UTF8_STRING, value: "Engineering", count: 1 },
        { oid: OID.common_name, tag: UTF8_STRING, value: "app.customer-one.com", count: 1 },
      ]);
      expect(csr.sans).toEqual(subject.sans);
      expect(csr.attributesTag).toBe(0xa0);
      if (keyType === "rsa2048") {
        expect(csr.signatureOid).toBe("1.2.840.113549.1.1.11");
        // AlgorithmIdentifier with NULL parameters, as RFC 4055 §5 requires (the parser maps NULL to null).
        expect(hex(csr.der)).toContain("300d06092a864886f70d01010b050003820101");
        expect(csr.spkiAlgorithm).toBe("1.2.840.113549.1.1.1");
        expect(csr.request.signature.byteLength).toBe(256);
      } else {
        expect(csr.signatureOid).toBe("1.2.840.10045.4.3.2");
        // ecdsa-with-SHA256 with parameters absent (RFC 5758 §3.2).
        expect(hex(csr.der)).toMatch(/300a06082a8648ce3d04030203/);
        expect(csr.spkiAlgorithm).toBe("1.2.840.10045.2.1");
        expect(new Uint8Array(csr.request.signature)[0]).toBe(0x30);
      }
      expect(await verifyCsrSignature(csr)).toBe(true);

      // The signature covers the subject: one changed byte must fail it.
      const tampered = parseCsr(pem);
      tampered.request.certificationRequestInfo.subject[5]![0]!.value.utf8String = "evil.customer-one.com";
      expect(await verifyCsrSignature(tampered)).toBe(false);
    });
  }

  it("omits OU when absent and keeps a value beginning with # as text", async () => {
    const keys = await generateKeyPair("p256v1");
    const pem = await buildCsr(
      { ...subject, organizational_unit: null, organization: "#1 Widgets", key_type: "p256v1" },
      keys,
    );
    const csr = parseCsr(pem);
    expect(csr.subject.map((s) => s.oid)).toEqual([OID.country, OID.state, OID.locality, OID.organization, OID.common_name]);
    expect(csr.subject[3]).toEqual({ oid: OID.organization, tag: UTF8_STRING, value: "#1 Widgets", count: 1 });
    expect(await verifyCsrSignature(csr)).toBe(true);
  });

  it("encodes non-ASCII subject values as UTF-8", async () => {
    const keys = await generateKeyPair("p256v1");
    const pem = await buildCsr({ ...subject, locality: "Zürich", organization: "Ünïcödé ☃", key_type: "p256v1" }, keys);
    const csr = parseCsr(pem);
    expect(csr.subject[2]!.value).toBe("Zürich");
    expect(csr.subject[3]!.value).toBe("Ünïcödé ☃");
    expect(await verifyCsrSignature(csr)).toBe(true);
  });

  it("signs with SHA-256 and says so (no silent hash swap): the DER's algorithm and the signature's own hash agree", async () => {
    // What each key type's CSR must name in its DER, and the hashes its signature must (and must not) verify under.
    // The AlgorithmIdentifier's DER: sha256WithRSAEncryption with NULL parameters (RFC 4055 §5), ecdsa-with-SHA256 with none (RFC 5758 §3.2).
    const expected = {
      rsa2048: { oid: "1.2.840.113549.1.1.11", der: "300d06092a864886f70d01010b0500", verify: (spki: ArrayBuffer, hash: string) => crypto.subtle.importKey("spki", spki, { name: "RSASSA-PKCS1-v1_5", hash }, false, ["verify"]) },
      p256v1: { oid: "1.2.840.10045.4.3.2", der: "300a06082a8648ce3d040302", verify: (spki: ArrayBuffer) => crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]) },
    } as const;
    for (const keyType of ["rsa2048", "p256v1"] as const) {
      const parsed = parseCsr(await buildCsr({ ...subject, key_type: keyType }, await generateKeyPair(keyType)));
      // Read from the DER itself: the outer SEQUENCE, the CertificationRequestInfo, then the signatureAlgorithm.
      expect(parsed.signatureOid, keyType).toBe(expected[keyType].oid);
      const outer = readTlv(parsed.der, 0, 0x30);
      const info = readTlv(parsed.der, outer.start, 0x30);
      const algorithm = readTlv(parsed.der, info.end, 0x30);
      expect(hex(parsed.der.subarray(info.end, algorithm.end)), keyType).toBe(expected[keyType].der);
      const spki = AsnConvert.serialize(parsed.request.certificationRequestInfo.subjectPKInfo);
      const tbs = AsnConvert.serialize(parsed.request.certificationRequestInfo);
      const signature = parsed.request.signature;
      for (const hash of ["SHA-256", "SHA-384", "SHA-512"]) {
        const valid =
          keyType === "rsa2048"
            ? await crypto.subtle.verify("RSASSA-PKCS1-v1_5", await expected.rsa2048.verify(spki, hash), signature, tbs)
            : await crypto.subtle.verify({ name: "ECDSA", hash }, await expected.p256v1.verify(spki), derToP1363(signature, 32), tbs);
        // Only SHA-256 verifies: the bytes were signed over a SHA-256 digest, as the DER says.
        expect({ keyType, hash, valid }).toEqual({ keyType, hash, valid: hash === "SHA-256" });
      }
    }
  });

  it("DER-encodes ECDSA signatures across top-bit and leading-zero cases", async () => {
    const keys = await generateKeyPair("p256v1");
    let highBit = 0;
    let leadingZero = 0;
    // Sign until both cases have occurred (P(leading zero) ≈ 2/256 per signature).
    for (let i = 0; i < 5000 && (highBit === 0 || leadingZero === 0); i++) {
      const data = crypto.getRandomValues(new Uint8Array(32));
      const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, data));
      const r = raw.subarray(0, 32);
      const s = raw.subarray(32);
      if (r[0]! >= 0x80 || s[0]! >= 0x80) highBit++;
      if (r[0] === 0 || s[0] === 0) leadingZero++;
      const der = p1363ToDer(raw);
      // Each INTEGER is minimal and positive.
      const rLen = der[3]!;
      const rBody = der.subarray(4, 4 + rLen);
      expect(rBody[0]! & 0x80).toBe(0);
      if (rBody.length > 1) expect(rBody[0] === 0 && rBody[1]! < 0x80).toBe(false);
      expect(derToP1363(der, 32)).toEqual(raw);
    }
    expect(highBit).toBeGreaterThan(0);
    expect(leadingZero).toBeGreaterThan(0);
  });

  it("handles r or s with leading zero bytes exactly", () => {
    const raw = new Uint8Array(64);
    raw[31] = 1; // r = 1
    raw[32] = 0x80; // s has the top bit set
    const der = p1363ToDer(raw);
    expect([...der.subarray(0, 5)]).toEqual([0x30, 0x26, 0x02, 0x01, 0x01]);
    expect([...der.subarray(5, 8)]).toEqual([0x02, 0x21, 0x00]);
    expect(derToP1363(der, 32)).toEqual(raw);
  });
});
