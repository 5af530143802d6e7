import { CompactEncrypt, importJWK } from "jose";
import type { EdgePublicKey } from "./edge-key";

/**
 * What a sealed key is bound to. These members travel in the JWE's protected
 * header, which is the AES-GCM additional data (RFC 7516 §5.1 step 14), so
 * they cannot be changed without the decryption failing; the edge agent
 * checks each against what it asked for before writing anything.
 */
export interface SealContext {
  /** The zone the certificate belongs to. */
  readonly zone_id: string;
  /** The custom certificate whose key this is. */
  readonly certificate_id: string;
  /** The edge the key is sealed to. */
  readonly edge_id: string;
  /** The certificate's modified_on when sealed: a bundle of another version does not pass. */
  readonly modified_on: string;
  /** The RFC 7638 thumbprint of the edge key sealed to (RFC 7516 §4.1.6 `kid`). */
  readonly kid: string;
}

/** The key-management and content-encryption algorithms of every sealed key. */
export const SEAL_ALG = "ECDH-ES";
export const SEAL_ENC = "A256GCM";
/** The plaintext's type: a PKCS#8 PrivateKeyInfo, DER (RFC 5958 §7, `application/pkcs8`). */
export const SEAL_CTY = "pkcs8";

/**
 * Seals `plaintext` (a PKCS#8 private key) to an edge's public key as a
 * compact JWE: ECDH-ES direct key agreement with a fresh ephemeral key on
 * the edge key's curve, the Concat KDF (RFC 7518 §4.6), and AES-256-GCM.
 * Only the holder of the edge's private key can open it; any change to the
 * header, the ephemeral key, the IV, the ciphertext or the tag fails the
 * GCM check.
 */
export async function sealToEdge(plaintext: Uint8Array, edgeKey: EdgePublicKey, context: SealContext): Promise<string> {
  const key = await importJWK({ ...edgeKey }, SEAL_ALG);
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({
      alg: SEAL_ALG,
      enc: SEAL_ENC,
      cty: SEAL_CTY,
      kid: context.kid,
      zone_id: context.zone_id,
      certificate_id: context.certificate_id,
      edge_id: context.edge_id,
      modified_on: context.modified_on,
    })
    .encrypt(key);
}
