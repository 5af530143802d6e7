// One delivered bundle, opened: the sealed key decrypted with this edge's
// key, after checking everything the bundle and its JWE header claim.
import { type KeyObject, X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { compactDecrypt } from "jose";
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";
import { printable } from "./output.ts";

/** Which bundle is expected: the zone, the certificate, and this edge with its key. */
export interface BundleFor {
  zone: string;
  id: string;
  /** A custom hostname's name, as the signed listing gave it; undefined for a custom certificate. */
  hostname: string | undefined;
  /** `rsa2048` for a custom hostname's RSA twin, as the signed listing gave it; undefined for every other certificate. */
  key_type: string | undefined;
  edge: string;
  /** The RFC 7638 thumbprint of this edge's public key: the `kid` the JWE must carry. */
  thumbprint: string;
  privateKey: KeyObject;
  /** Now, in milliseconds since the epoch: the leaf must not have expired. */
  now: number;
}

/** The files a bundle makes, and what is printed about it. */
export interface OpenedBundle {
  /** The certificate chain, PEM, leaf first, ending in a newline. */
  crt: string;
  /** The private key, PKCS#8 PEM. */
  key: string;
  hosts: unknown[];
  expires_on: string;
  modified_on: string;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** X509Certificate.validTo as OpenSSL prints it (ASN1_TIME_print): "Dec 31 23:59:59 2030 GMT", a day under 10 space-padded. */
const OPENSSL_TIME = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d+)? (\d{4}) GMT$/;

/**
 * A certificate's notAfter in milliseconds since the epoch, or null when it
 * does not read. Node 20's X509Certificate has only the printed validTo
 * (validToDate came in Node 22), read here field by field rather than through
 * Date.parse's implementation-defined forms.
 */
export function notAfter(certificate: X509Certificate): number | null {
  const match = OPENSSL_TIME.exec(certificate.validTo);
  if (!match) return null;
  const [, month, day, hour, minute, second, year] = match;
  const index = MONTHS.indexOf(month ?? "");
  if (index < 0) return null;
  return Date.UTC(Number(year), index, Number(day), Number(hour), Number(minute), Number(second));
}

/**
 * Opens one bundle (the signed `result` of a delivery reply) after checking
 * everything it claims: it is for this certificate, zone and edge (and, for
 * a custom hostname, of the hostname the listing named; none for a custom
 * certificate); the
 * JWE's protected header (authenticated by AES-GCM) names this zone, this
 * certificate, this edge, this edge's key and the bundle's modified_on; the
 * plaintext is a PKCS#8 key whose public half is the leaf certificate's;
 * and the leaf has not expired.
 */
export async function openBundle(bundle: unknown, expected: BundleFor): Promise<OpenedBundle> {
  const where = `certificate ${expected.id}`;
  if (!isRecord(bundle) || bundle.id !== expected.id || bundle.zone_id !== expected.zone || bundle.edge_id !== expected.edge) {
    throw new EdgeError(`${where}: the bundle is for another certificate, zone or edge`);
  }
  // The hostname names the files: the listing's (checked there) and the bundle's must be one.
  if (bundle.hostname !== expected.hostname) {
    const named = (hostname: unknown) => (hostname === undefined ? "none" : `"${printable(hostname)}"`);
    throw new EdgeError(`${where}: the bundle is of hostname ${named(bundle.hostname)}, the listing of ${named(expected.hostname)}: refused`);
  }
  if (bundle.key_type !== expected.key_type) {
    throw new EdgeError(`${where}: the bundle is of key_type ${printable(bundle.key_type ?? "none")}, the listing of ${printable(expected.key_type ?? "none")}: refused`);
  }
  const { certificate, sealed_key: sealed, modified_on: modifiedOn } = bundle;
  if (typeof certificate !== "string" || typeof sealed !== "string" || typeof modifiedOn !== "string") {
    throw new EdgeError(`${where}: the bundle is incomplete`);
  }
  let opened;
  try {
    opened = await compactDecrypt(sealed, expected.privateKey, { keyManagementAlgorithms: ["ECDH-ES"], contentEncryptionAlgorithms: ["A256GCM"] });
  } catch {
    throw new EdgeError(`${where}: the sealed key does not open with this edge's key (sealed to another edge, or altered)`);
  }
  const header: Record<string, unknown> = { ...opened.protectedHeader };
  const context = { cty: "pkcs8", kid: expected.thumbprint, zone_id: expected.zone, certificate_id: expected.id, edge_id: expected.edge, modified_on: modifiedOn };
  for (const [name, value] of Object.entries(context)) {
    if (header[name] !== value) throw new EdgeError(`${where}: the sealed key's header has ${name} ${JSON.stringify(header[name])}, expected ${JSON.stringify(value)}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(opened.plaintext), format: "der", type: "pkcs8" });
  } catch {
    throw new EdgeError(`${where}: the sealed key is not a PKCS#8 private key`);
  }
  const blocks = certificate.match(CERTIFICATE) ?? [];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0] ?? "");
    for (const block of blocks.slice(1)) new X509Certificate(block);
  } catch {
    throw new EdgeError(`${where}: the certificate chain does not parse`);
  }
  const spki = (key: KeyObject) => key.export({ format: "der", type: "spki" });
  if (!leaf.checkPrivateKey(privateKey) || !spki(createPublicKey(privateKey)).equals(spki(leaf.publicKey))) {
    throw new EdgeError(`${where}: the delivered key is not the certificate's`);
  }
  // An expired leaf is never installed: the service refuses to deliver one (1476), so offering it is a replay
  // or a clock gone wrong. notAfter is inclusive (RFC 5280 §4.1.2.5).
  const expiry = notAfter(leaf);
  if (expiry === null) throw new EdgeError(`${where}: the leaf certificate's notAfter does not read`);
  if (expected.now > expiry) throw new EdgeError(`${where}: the leaf certificate expired at ${new Date(expiry).toISOString()}: refused, not installed`);
  return {
    crt: certificate.endsWith("\n") ? certificate : `${certificate}\n`,
    key: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    hosts: Array.isArray(bundle.hosts) ? bundle.hosts : [],
    expires_on: String(bundle.expires_on),
    modified_on: modifiedOn,
  };
}
