import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { Attributes, CertificationRequest, CertificationRequestInfo } from "@peculiar/asn1-csr";
import {
  AlgorithmIdentifier,
  Attribute,
  AttributeTypeAndValue,
  AttributeValue,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from "@peculiar/asn1-x509";
import type { CsrInput, KeyType } from "./csr-input";
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
  const rdns: RelativeDistinguishedName[] = [
    rdn(OID.country, new AttributeValue({ printableString: subject.country })),
  ];
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
function sanAttribute(sans: readonly string[]): Attribute {
  const altNames = new SubjectAlternativeName(sans.map((dNSName) => new GeneralName({ dNSName })));
  const extensions = new Extensions([
    new Extension({ extnID: OID.subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(altNames)) }),
  ]);
  return new Attribute({ type: OID.extensionRequest, values: [AsnConvert.serialize(extensions)] });
}

/**
 * Builds and signs a PKCS#10 request (RFC 2986 §4): SPKI from the public key,
 * CertificationRequestInfo, signature over its DER, and, for ECDSA, the
 * signature re-encoded from r‖s to DER. Returns the PEM.
 */
export async function buildCsr(
  input: Subject & { sans: readonly string[]; key_type: KeyType },
  keys: CryptoKeyPair,
  subtle: SubtleCrypto = crypto.subtle,
): Promise<string> {
  const algorithm = KEY_ALGORITHMS[input.key_type];
  const spki = AsnConvert.parse((await subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer, SubjectPublicKeyInfo);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: buildSubject(input),
    subjectPKInfo: spki,
    attributes: new Attributes([sanAttribute(input.sans)]),
  });
  const toBeSigned = AsnConvert.serialize(info);
  let signature = await subtle.sign(algorithm.sign, keys.privateKey, toBeSigned);
  if (input.key_type === "p256v1") signature = p1363ToDer(signature).slice().buffer;

  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({
      algorithm: algorithm.signatureOid,
      ...(input.key_type === "rsa2048" ? { parameters: DER_NULL } : {}),
    }),
    signature,
  });
  return toPem("CERTIFICATE REQUEST", AsnConvert.serialize(csr));
}
