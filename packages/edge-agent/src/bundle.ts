// One delivered bundle, opened: the sealed key decrypted with this edge's
// key, after checking everything the bundle and its JWE header claim.
import { type KeyObject, X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { compactDecrypt } from "jose";
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";

/** Which bundle is expected: the zone, the certificate, and this edge with its key. */
export interface BundleFor {
  zone: string;
  id: string;
  edge: string;
  /** The RFC 7638 thumbprint of this edge's public key: the `kid` the JWE must carry. */
  thumbprint: string;
  privateKey: KeyObject;
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

/**
 * Opens one bundle (the signed `result` of a delivery reply) after checking
 * everything it claims: it is for this certificate, zone and edge; the
 * JWE's protected header (authenticated by AES-GCM) names this zone, this
 * certificate, this edge, this edge's key and the bundle's modified_on; the
 * plaintext is a PKCS#8 key whose public half is the leaf certificate's.
 */
export async function openBundle(bundle: unknown, expected: BundleFor): Promise<OpenedBundle> {
  const where = `certificate ${expected.id}`;
  if (!isRecord(bundle) || bundle.id !== expected.id || bundle.zone_id !== expected.zone || bundle.edge_id !== expected.edge) {
    throw new EdgeError(`${where}: the bundle is for another certificate, zone or edge`);
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
  return {
    crt: certificate.endsWith("\n") ? certificate : `${certificate}\n`,
    key: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    hosts: Array.isArray(bundle.hosts) ? bundle.hosts : [],
    expires_on: String(bundle.expires_on),
    modified_on: modifiedOn,
  };
}
