import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
} from "@peculiar/asn1-x509";
import type { CsrInput, KeyType } from "./csr-input";
import { tlv } from "./der";
import { p1363ToDer } from "./ec-signature";
import { KEY_ALGORITHMS } from "./keys";
import { toPem } from "./pem";

// X.520 attribute types (RFC 5280 Appendix A) in the subject order C, ST, L, O, OU, CN.
export const OID = {
  country: "2.5.4.6",
  state: "2.5.4.8",
  locality: "2.5.4.7",
  organization: "2.5.4.10",
  organizational_unit: "2.5.4.11",
  common_name: "2.5.4.3",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectAltName: "2.5.29.17",
} as const;

// DER NULL: sha256WithRSAEncryption carries NULL parameters (RFC 4055 §5).
const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;

export type Subject = Pick<CsrInput, "country" | "state" | "locality" | "organization" | "organizational_unit" | "common_name">;

/**
 * The subject as an RDNSequence with one attribute per RDN: a multi-valued
 * RDN would need DER SET ordering, which the asn1 serializer does not do and
 * strict parsers reject. countryName is a PrintableString (RFC 5280 App. A),
 * the rest UTF8String (RFC 5280 §4.1.2.6); values are text, so one starting
 * with `#` stays text.
 */
export function buildSubject(subject: Subject): Name {
  // An ACME order's CSR carries its names in the SANs only (RFC 8555 §7.4): no country then.
  const rdns: RelativeDistinguishedName[] = subject.country ? [rdn(OID.country, new AttributeValue({ printableString: subject.country }))] : [];
  const utf8Fields = ["state", "locality", "organization", "organizational_unit", "common_name"] as const;
  for (const field of utf8Fields) {
    const value = subject[field];
    if (value) rdns.push(rdn(OID[field], new AttributeValue({ utf8String: value })));
  }
  return new Name(rdns);
}

function rdn(type: string, value: AttributeValue): RelativeDistinguishedName {
  return new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
}

/** The extensionRequest attribute (RFC 2985 §5.4.2) carrying subjectAltName dNSNames. */
function sanAttribute(sans: readonly string[]): Uint8Array {
  const altNames = new SubjectAlternativeName(sans.map((dNSName) => new GeneralName({ dNSName })));
  const extensions = new Extensions([
    new Extension({ extnID: OID.subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(altNames)) }),
  ]);
  // Attribute ::= SEQUENCE { type OID, values SET OF ANY }, written around the
  // encoded Extensions: the schema's ANY would parse them back first.
  return tlv(0x30, EXTENSION_REQUEST_OID, tlv(0x31, AsnConvert.serialize(extensions)));
}

// DER of the OID 1.2.840.113549.1.9.14 (pkcs-9-at-extensionRequest).
const EXTENSION_REQUEST_OID = Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e);

// AlgorithmIdentifier DER per key type, encoded once per isolate.
const SIGNATURE_ALGORITHMS: Partial<Record<KeyType, Uint8Array>> = {};

function signatureAlgorithm(keyType: KeyType): Uint8Array {
  return (SIGNATURE_ALGORITHMS[keyType] ??= new Uint8Array(
    AsnConvert.serialize(
      new AlgorithmIdentifier({
        algorithm: KEY_ALGORITHMS[keyType].signatureOid,
        ...(keyType === "rsa2048" ? { parameters: DER_NULL } : {}),
      }),
    ),
  ));
}

// version INTEGER 0 (RFC 2986 §4.1: v1).
const VERSION_1 = Uint8Array.of(0x02, 0x01, 0x00);

/**
 * Builds and signs a PKCS#10 request (RFC 2986 §4). The asn1 packages encode
 * the subject Name and the extensionRequest Attribute; the SPKI is
 * WebCrypto's own DER export, used as is; and the SEQUENCE envelopes are
 * written around them here, so that nothing is parsed back or encoded twice
 * (the to-be-signed bytes are also the bytes sent). For ECDSA the signature
 * is re-encoded from r‖s to DER. Returns the PEM.
 */
export async function buildCsr(
  input: Subject & { sans: readonly string[]; key_type: KeyType },
  keys: CryptoKeyPair,
  subtle: SubtleCrypto = crypto.subtle,
): Promise<string> {
  const spki = (await subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer;
  // CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes [0] IMPLICIT SET OF Attribute }
  const info = tlv(
    0x30,
    VERSION_1,
    AsnConvert.serialize(buildSubject(input)),
    spki,
    tlv(0xa0, sanAttribute(input.sans)),
  );
  let signature: Uint8Array = new Uint8Array(await subtle.sign(KEY_ALGORITHMS[input.key_type].sign, keys.privateKey, info));
  if (input.key_type === "p256v1") signature = p1363ToDer(signature);
  // CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature BIT STRING (no unused bits) }
  const request = tlv(0x30, info, signatureAlgorithm(input.key_type), tlv(0x03, Uint8Array.of(0), signature));
  return toPem("CERTIFICATE REQUEST", request);
}
