// A throwaway certificate authority for the tests, built from WebCrypto keys
// and the asn1 packages: it issues CA and leaf certificates so uploads can be
// tested end to end without any outside service.
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
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
import { p1363ToDer } from "../src/pki/ec-signature";
import { KEY_ALGORITHMS, generateKeyPair } from "../src/pki/keys";
import { fromPemBlocks, toPem } from "../src/pki/pem";

export type CaKeyType = "rsa2048" | "p256v1";

export interface TestCa {
  keyType: CaKeyType;
  keys: CryptoKeyPair;
  name: Name;
  certificate: Certificate;
  pem: string;
}

const DAY = 86_400_000;
let serial = 1;

function nameOf(organization: string, commonName: string): Name {
  const rdn = (type: string, value: string) =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) })]);
  return new Name([rdn("2.5.4.10", organization), rdn("2.5.4.3", commonName)]);
}

async function sign(tbs: TBSCertificate, signer: TestCa | { keyType: CaKeyType; keys: CryptoKeyPair }): Promise<Certificate> {
  const algorithm = KEY_ALGORITHMS[signer.keyType];
  const signatureAlgorithm = new AlgorithmIdentifier({
    algorithm: algorithm.signatureOid,
    ...(signer.keyType === "rsa2048" ? { parameters: new Uint8Array([5, 0]).buffer } : {}),
  });
  tbs.signature = signatureAlgorithm;
  let signature = await crypto.subtle.sign(algorithm.sign, signer.keys.privateKey, AsnConvert.serialize(tbs));
  if (signer.keyType === "p256v1") signature = p1363ToDer(signature).slice().buffer;
  // Round-trip so the result carries tbsCertificateRaw, as a parsed certificate does.
  return AsnConvert.parse(AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm, signatureValue: signature })), Certificate);
}

function tbsFor(subject: Name, issuer: Name, spki: SubjectPublicKeyInfo, extensions: Extension[], notBefore: Date, notAfter: Date) {
  return new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array([0x01, serial++ & 0xff, (Math.random() * 255) | 0]).buffer,
    issuer,
    subject,
    validity: new Validity({ notBefore, notAfter }),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
}

const caConstraints = () =>
  new Extension({ extnID: "2.5.29.19", critical: true, extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: true }))) });

/** A CA: self-signed (a root) or, given `parent`, an intermediate issued by it. */
export async function createCa(keyType: CaKeyType, organization = "Test CA Inc", parent?: TestCa): Promise<TestCa> {
  const keys = await generateKeyPair(keyType);
  const name = nameOf(organization, `${organization} ${parent ? "Intermediate" : "Root"}`);
  const spki = AsnConvert.parse((await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer, SubjectPublicKeyInfo);
  const now = Date.now();
  const tbs = tbsFor(name, parent?.name ?? name, spki, [caConstraints()], new Date(now - DAY), new Date(now + 365 * DAY));
  const certificate = await sign(tbs, parent ?? { keyType, keys });
  return { keyType, keys, name, certificate, pem: toPem("CERTIFICATE", AsnConvert.serialize(certificate)) };
}

/**
 * Issues a leaf for a CSR: its subject, SANs and public key, valid from
 * `notBefore` to `notAfter` (default: yesterday to 90 days on).
 */
export async function issueLeaf(
  ca: TestCa,
  csrPem: string,
  validity: { notBefore?: Date; notAfter?: Date } = {},
  /** dNSNames other than the CSR's, or the subjectAltName extension's raw value (a malformed one). */
  names: { dnsNames?: string[]; sanValue?: ArrayBuffer } = {},
): Promise<string> {
  const csr = AsnConvert.parse(fromPemBlocks("CERTIFICATE REQUEST", csrPem)![0]!, CertificationRequest).certificationRequestInfo;
  const sans: GeneralName[] = [];
  for (const attribute of csr.attributes) {
    for (const ext of AsnConvert.parse(attribute.values[0]!, Extensions)) {
      if (ext.extnID === "2.5.29.17") sans.push(...AsnConvert.parse(ext.extnValue.buffer, SubjectAlternativeName));
    }
  }
  const now = Date.now();
  const altNames = names.dnsNames ? names.dnsNames.map((dNSName) => new GeneralName({ dNSName })) : sans;
  const sanValue = names.sanValue ?? AsnConvert.serialize(new SubjectAlternativeName(altNames));
  const tbs = tbsFor(
    csr.subject,
    ca.name,
    csr.subjectPKInfo,
    [new Extension({ extnID: "2.5.29.17", critical: false, extnValue: new OctetString(sanValue) })],
    validity.notBefore ?? new Date(now - DAY),
    validity.notAfter ?? new Date(now + 90 * DAY),
  );
  return toPem("CERTIFICATE", AsnConvert.serialize(await sign(tbs, ca)));
}
