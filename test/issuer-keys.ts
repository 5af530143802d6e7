// A throwaway external token issuer for the tests: its private keys sign
// ES256 and EdDSA tokens here; vitest.config.ts configures the public halves
// as API_TOKEN_JWKS. These keys guard nothing.
export const ISSUER_PRIVATE_JWKS = {
  "es256": {
    "kty": "EC",
    "x": "cnk8btffkT97dpKZUK-UMkv-4e-yLqvUF1Pi6_oXHGI",
    "y": "UXhqIjZlbkx76SnJ6MRUJIPTbVGnYGtxeKP4zewfZ88",
    "crv": "P-256",
    "d": "EtFinHfkvccA5DBeilLv1uRaO1Q2zyJIPIzrVB5siAg",
    "kid": "issuer-es256"
  },
  "ed25519": {
    "crv": "Ed25519",
    "d": "juJo0QP7wJCJ1f8eMh82kinOKZOiFcCe-_882K_I_fQ",
    "x": "QY4AYecSTJicCmFVCkaK_g1ihi17Ov7SbBXz_8_UgZk",
    "kty": "OKP",
    "kid": "issuer-ed25519"
  }
} as const satisfies Record<string, JsonWebKey & { kid: string }>;
