import type { KeyType } from "./csr-input";

/**
 * WebCrypto parameters per key type. The hash is fixed here, with the key,
 * because WebCrypto's RSASSA-PKCS1-v1_5 signs with the hash bound at
 * generation and silently ignores any other: the CSR's signature algorithm
 * must name the same one.
 */
export const KEY_ALGORITHMS = {
  rsa2048: {
    generate: {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    } satisfies SubtleCryptoGenerateKeyAlgorithm,
    import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } satisfies SubtleCryptoImportKeyAlgorithm,
    sign: { name: "RSASSA-PKCS1-v1_5" } satisfies SubtleCryptoSignAlgorithm,
    // sha256WithRSAEncryption (RFC 4055 §5), parameters NULL.
    signatureOid: "1.2.840.113549.1.1.11",
  },
  p256v1: {
    generate: { name: "ECDSA", namedCurve: "P-256" } satisfies SubtleCryptoGenerateKeyAlgorithm,
    import: { name: "ECDSA", namedCurve: "P-256" } satisfies SubtleCryptoImportKeyAlgorithm,
    sign: { name: "ECDSA", hash: "SHA-256" } satisfies SubtleCryptoSignAlgorithm,
    // ecdsa-with-SHA256 (RFC 5758 §3.2), parameters absent.
    signatureOid: "1.2.840.10045.4.3.2",
  },
} as const;

/**
 * A fresh key pair. The private key is extractable only so it can be wrapped
 * (WebCrypto's wrapKey requires it); it never leaves the Durable Object.
 */
export async function generateKeyPair(keyType: KeyType, subtle: SubtleCrypto = crypto.subtle): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(KEY_ALGORITHMS[keyType].generate, true, ["sign", "verify"])) as CryptoKeyPair;
}
