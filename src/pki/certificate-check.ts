import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { Certificate, type Name, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { type Result, fail, ok } from "../core/result";
import { derToP1363 } from "./ec-signature";
import { fromPemBlocks, toPem } from "./pem";

/** Why an uploaded certificate is refused (ours: 1439–1444). */
export type CertificateRefusal =
  | { readonly reason: "invalid_certificate"; readonly pointer: string }
  /** `host`: the offending name, at most 64 characters, as it was in the certificate. */
  | { readonly reason: "invalid_certificate_host"; readonly pointer: string; readonly host: string }
  | { readonly reason: "certificate_key_mismatch"; readonly pointer: string }
  | { readonly reason: "certificate_expired"; readonly pointer: string }
  | { readonly reason: "certificate_not_yet_valid"; readonly pointer: string }
  | { readonly reason: "invalid_chain"; readonly pointer: string };

/** What the API records of an uploaded certificate. */
export interface CheckedCertificate {
  hosts: string[];
  issuer: string;
  signature: string;
  not_before: string;
  expires_on: string;
  /** Leaf then chain, re-armoured with 64-character lines. */
  pem: string;
  /** The leaf's serial number, in decimal (as Cloudflare's `serial_number`). */
  serial_number: string;
  /** SHA-256 of the leaf's DER, hex: the same certificate uploaded twice is found by it. */
  leaf_sha256: string;
  /** Whether any signature was checked: false for a lone leaf (no chain sent, so nothing to check it with). */
  chain_checked: boolean;
}

// A host a certificate names: DNS labels of letters, digits, '-' and '_',
// optionally under a leading "*." (RFC 6125 §6.4.3); nothing else (no
// control character, no '/', no space) reaches a record, a log or an edge.
const HOST = /^(?:\*\.)?[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*$/;

export const MAX_CHAIN = 10;

// Signature algorithms a CA may have used (RFC 4055 §5, RFC 5758 §3.2), with
// the names Cloudflare's API reports in `signature`.
const SIGNATURES: Record<string, { name: string; hash: string; kind: "rsa" | "ecdsa" }> = {
  "1.2.840.113549.1.1.11": { name: "SHA256WithRSA", hash: "SHA-256", kind: "rsa" },
  "1.2.840.113549.1.1.12": { name: "SHA384WithRSA", hash: "SHA-384", kind: "rsa" },
  "1.2.840.113549.1.1.13": { name: "SHA512WithRSA", hash: "SHA-512", kind: "rsa" },
  "1.2.840.10045.4.3.2": { name: "ECDSAWithSHA256", hash: "SHA-256", kind: "ecdsa" },
  "1.2.840.10045.4.3.3": { name: "ECDSAWithSHA384", hash: "SHA-384", kind: "ecdsa" },
  "1.2.840.10045.4.3.4": { name: "ECDSAWithSHA512", hash: "SHA-512", kind: "ecdsa" },
};
// Named curves by the DER of their OID, as found in an EC SPKI's parameters.
const CURVES: Record<string, { name: string; size: number }> = {
  "06082a8648ce3d030107": { name: "P-256", size: 32 }, // 1.2.840.10045.3.1.7
  "06052b81040022": { name: "P-384", size: 48 }, // 1.3.132.0.34
};
const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
const OID_SAN = "2.5.29.17";
const OID_CN = "2.5.4.3";
const OID_O = "2.5.4.10";

const bytesEqual = (a: ArrayBuffer, b: ArrayBuffer) => {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

function attribute(name: Name, oid: string): string | undefined {
  for (const rdn of name) for (const atv of rdn) if (atv.type === oid) return atv.value.toString();
  return undefined;
}

/** Verifies `cert`'s signature with `issuer`'s public key, or false if the algorithm is not one we know. */
async function signedBy(cert: Certificate, issuer: Certificate): Promise<boolean> {
  const algorithm = SIGNATURES[cert.signatureAlgorithm.algorithm];
  const spki = issuer.tbsCertificate.subjectPublicKeyInfo;
  if (!algorithm || !cert.tbsCertificateRaw) return false;
  const spkiDer = AsnConvert.serialize(spki);
  try {
    if (algorithm.kind === "rsa") {
      const key = await crypto.subtle.importKey("spki", spkiDer, { name: "RSASSA-PKCS1-v1_5", hash: algorithm.hash }, false, ["verify"]);
      return await crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, cert.signatureValue, cert.tbsCertificateRaw);
    }
    const curve = spki.algorithm.parameters ? CURVES[hex(spki.algorithm.parameters)] : undefined;
    if (!curve) return false;
    const key = await crypto.subtle.importKey("spki", spkiDer, { name: "ECDSA", namedCurve: curve.name }, false, ["verify"]);
    const signature = derToP1363(cert.signatureValue, curve.size);
    return await crypto.subtle.verify({ name: "ECDSA", hash: algorithm.hash }, key, signature, cert.tbsCertificateRaw);
  } catch {
    return false;
  }
}

/**
 * Checks an uploaded certificate (PEM: the leaf, then optionally its chain)
 * against the custom CSR it answers: it parses (RFC 5280 §4.1), the leaf's
 * SubjectPublicKeyInfo is the CSR's byte for byte, the leaf is valid now
 * (§4.1.2.5), and each chain certificate names and signs the one before it
 * (§6.1). The last certificate is not checked against a root: trust is the
 * CA's business, as on Cloudflare.
 */
export async function checkCertificate(text: unknown, csrPem: string, now: Date): Promise<Result<CheckedCertificate, CertificateRefusal>> {
  if (typeof text !== "string" || text.length === 0) return fail({ reason: "invalid_certificate", pointer: "/certificate" });
  // Only certificates: any other armoured block (a private key above all) is refused, never stored or echoed.
  const labels = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]);
  if (labels.length === 0 || labels.some((l) => l !== "CERTIFICATE")) return fail({ reason: "invalid_certificate", pointer: "/certificate" });
  const blocks = fromPemBlocks("CERTIFICATE", text);
  if (!blocks || blocks.length !== labels.length || blocks.length > MAX_CHAIN) {
    return fail({ reason: "invalid_certificate", pointer: "/certificate" });
  }
  const chain: Certificate[] = [];
  for (const der of blocks) {
    try {
      const cert = AsnConvert.parse(der, Certificate);
      // Trailing or re-encoded bytes mean this is not one DER certificate.
      if (!bytesEqual(AsnConvert.serialize(cert), der.slice().buffer)) throw new Error("not DER");
      chain.push(cert);
    } catch {
      return fail({ reason: "invalid_certificate", pointer: "/certificate" });
    }
  }
  const leaf = chain[0]!.tbsCertificate;

  const csrDer = fromPemBlocks("CERTIFICATE REQUEST", csrPem)![0]!;
  const csrSpki = AsnConvert.parse(csrDer, CertificationRequest).certificationRequestInfo.subjectPKInfo;
  if (!bytesEqual(AsnConvert.serialize(leaf.subjectPublicKeyInfo), AsnConvert.serialize(csrSpki))) {
    return fail({ reason: "certificate_key_mismatch", pointer: "/certificate" });
  }

  const notBefore = leaf.validity.notBefore.getTime();
  const notAfter = leaf.validity.notAfter.getTime();
  if (notAfter.getTime() < now.getTime()) return fail({ reason: "certificate_expired", pointer: "/certificate" });
  if (notBefore.getTime() > now.getTime()) return fail({ reason: "certificate_not_yet_valid", pointer: "/certificate" });

  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    const named = bytesEqual(AsnConvert.serialize(cert.tbsCertificate.issuer), AsnConvert.serialize(issuer.tbsCertificate.subject));
    if (!named || !(await signedBy(cert, issuer))) return fail({ reason: "invalid_chain", pointer: "/certificate" });
  }

  const hosts: string[] = [];
  for (const ext of leaf.extensions ?? []) {
    if (ext.extnID !== OID_SAN) continue;
    let names: SubjectAlternativeName;
    try {
      names = AsnConvert.parse(ext.extnValue.buffer, SubjectAlternativeName);
    } catch {
      // A subjectAltName extension that is not one: the certificate does not parse.
      return fail({ reason: "invalid_certificate", pointer: "/certificate" });
    }
    for (const name of names) if (name.dNSName !== undefined) hosts.push(name.dNSName);
  }
  const cn = attribute(leaf.subject, OID_CN);
  if (hosts.length === 0 && cn) hosts.push(cn);
  const invalid = hosts.find((host) => host.length > 253 || !HOST.test(host));
  if (invalid !== undefined) return fail({ reason: "invalid_certificate_host", pointer: "/certificate", host: invalid.slice(0, 64) });

  return ok({
    hosts,
    issuer: attribute(leaf.issuer, OID_O) ?? attribute(leaf.issuer, OID_CN) ?? "",
    signature: SIGNATURES[chain[0]!.signatureAlgorithm.algorithm]?.name ?? chain[0]!.signatureAlgorithm.algorithm,
    not_before: notBefore.toISOString(),
    expires_on: notAfter.toISOString(),
    pem: blocks.map((der) => toPem("CERTIFICATE", der)).join(""),
    serial_number: BigInt(`0x${hex(leaf.serialNumber) || "0"}`).toString(10),
    leaf_sha256: hex(await crypto.subtle.digest("SHA-256", blocks[0]!)),
    chain_checked: chain.length > 1,
  });
}
