// Test-side reading of a PKCS#10 request: parse with the asn1 packages and
// verify the signature with WebCrypto against the request's own public key.
import { AsnConvert, AsnParser } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { Extensions, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { derToP1363 } from "../src/pki/ec-signature";
import { fromPemBlocks } from "../src/pki/pem";

export interface ParsedCsr {
  der: Uint8Array;
  request: CertificationRequest;
  /** [oid, ASN.1 string tag, value] per RDN, in order. */
  subject: Array<{ oid: string; tag: number; value: string; count: number }>;
  sans: string[];
  signatureOid: string;
  spkiAlgorithm: string;
  attributesTag: number;
}

/** Parses a CSR PEM, requiring exactly one block. */
export function parseCsr(pem: string): ParsedCsr {
  const blocks = fromPemBlocks("CERTIFICATE REQUEST", pem);
  if (!blocks || blocks.length !== 1) throw new Error("expected one CERTIFICATE REQUEST block");
  const der = blocks[0]!;
  const request = AsnParser.parse(der, CertificationRequest);
  const info = request.certificationRequestInfo;
  const subject = info.subject.map((rdn) => {
    const atv = rdn[0]!;
    const raw = new Uint8Array(AsnConvert.serialize(atv.value));
    return { oid: atv.type, tag: raw[0]!, value: atv.value.toString(), count: rdn.length };
  });
  const sans: string[] = [];
  for (const attribute of info.attributes) {
    if (attribute.type !== "1.2.840.113549.1.9.14") continue;
    const extensions = AsnParser.parse(attribute.values[0]!, Extensions);
    for (const ext of extensions) {
      if (ext.extnID !== "2.5.29.17") continue;
      const names = AsnParser.parse(ext.extnValue.buffer, SubjectAlternativeName);
      for (const name of names) if (name.dNSName) sans.push(name.dNSName);
    }
  }
  const infoDer = new Uint8Array(AsnConvert.serialize(info));
  // The tag of the attributes field, read from the encoding itself: [0] constructed.
  const attributesTag = findAttributesTag(infoDer);
  return {
    der,
    request,
    subject,
    sans,
    signatureOid: request.signatureAlgorithm.algorithm,
    spkiAlgorithm: info.subjectPKInfo.algorithm.algorithm,
    attributesTag,
  };
}

function skipTlv(bytes: Uint8Array, at: number): number {
  let length = bytes[at + 1]!;
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = (length << 8) | bytes[at + 2 + i]!;
    header = 2 + n;
  }
  return at + header + length;
}

function findAttributesTag(infoDer: Uint8Array): number {
  // SEQUENCE header, then version, subject, SPKI, then attributes.
  let at = skipTlv(infoDer, 0) === infoDer.length ? headerLength(infoDer, 0) : 0;
  at = skipTlv(infoDer, at); // version
  at = skipTlv(infoDer, at); // subject
  at = skipTlv(infoDer, at); // subjectPKInfo
  return infoDer[at] ?? -1;
}

function headerLength(bytes: Uint8Array, at: number): number {
  const length = bytes[at + 1]!;
  return length & 0x80 ? 2 + (length & 0x7f) : 2;
}

/** Verifies the CSR's signature with WebCrypto against its own SubjectPublicKeyInfo. */
export async function verifyCsrSignature(parsed: ParsedCsr): Promise<boolean> {
  const info = parsed.request.certificationRequestInfo;
  const spki = AsnConvert.serialize(info.subjectPKInfo);
  const tbs = AsnConvert.serialize(info);
  if (parsed.signatureOid === "1.2.840.113549.1.1.11") {
    const key = await crypto.subtle.importKey("spki", spki, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
    return crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, parsed.request.signature, tbs);
  }
  if (parsed.signatureOid === "1.2.840.10045.4.3.2") {
    const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, derToP1363(parsed.request.signature, 32), tbs);
  }
  throw new Error(`unexpected signature algorithm ${parsed.signatureOid}`);
}
