// Test certificates made here, full circle: P-256 keys from node:crypto, the
// certificate built with the asn1 packages and signed (ECDSA, DER) by a
// throwaway CA, so a bundle can carry a real chain and its leaf's key.
import { type KeyObject, createPublicKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from "@peculiar/asn1-x509";

const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const DAY = 86_400_000;

/** When a certificate is valid: notBefore through notAfter, inclusive (RFC 5280 §4.1.2.5). */
export interface Period {
  notBefore: Date;
  notAfter: Date;
}

/** The default: from yesterday to 30 days from now. */
function current(): Period {
  const now = Date.now();
  return { notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) };
}

/** A CA, or a leaf with its private key. */
export interface Issued {
  pem: string;
  key: KeyObject;
  name: Name;
}

function nameOf(commonName: string): Name {
  return new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: "2.5.4.3", value: new AttributeValue({ utf8String: commonName }) })])]);
}

function pem(der: ArrayBuffer): string {
  const lines = Buffer.from(der).toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

function issue(subject: Name, publicKey: KeyObject, issuer: { name: Name; key: KeyObject }, extensions: Extension[], period: Period = current()): string {
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  // A positive serial whose first byte is not zero: DER's INTEGER is minimal (X.690 §8.3.2).
  const serial = randomBytes(8);
  serial[0] = 1 + (serial[0]! % 0x7f);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(serial).buffer,
    signature: algorithm,
    issuer: issuer.name,
    subject,
    validity: new Validity(period),
    subjectPublicKeyInfo: AsnConvert.parse(publicKey.export({ format: "der", type: "spki" }), SubjectPublicKeyInfo),
    extensions: new Extensions(extensions),
  });
  // node:crypto signs ECDSA as DER, the encoding X.509 wants (RFC 5480 §2.2.3).
  const signature = sign("sha256", Buffer.from(AsnConvert.serialize(tbs)), issuer.key);
  return pem(AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer })));
}

/** A self-signed CA. */
export function createCa(commonName = "edge agent test CA"): Issued {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const name = nameOf(commonName);
  const basic = new Extension({ extnID: "2.5.29.19", critical: true, extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: true }))) });
  return { pem: issue(name, publicKey, { name, key: privateKey }, [basic]), key: privateKey, name };
}

/** A leaf for host, issued by ca, for key (default: a fresh P-256 key), valid for period (default: yesterday to 30 days on). */
export function issueLeaf(ca: Issued, host: string, key: KeyObject = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, period?: Period): Issued {
  const privateKey = key;
  const publicKey = createPublicKey(key);
  const name = nameOf(host);
  const san = new Extension({ extnID: "2.5.29.17", critical: false, extnValue: new OctetString(AsnConvert.serialize(new SubjectAlternativeName([new GeneralName({ dNSName: host })]))) });
  return { pem: issue(name, publicKey, ca, [san], period), key: privateKey, name };
}
