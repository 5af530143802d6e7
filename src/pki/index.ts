// The PKI floor's public surface: CSRs, keys and their wraps, PEM and DER.
export { buildCsr, buildSubject } from "./csr-builder";
export { type CsrInput, parseCsrInput } from "./csr-input";
export { tlv } from "./der";
export { p1363ToDer } from "./ec-signature";
export { unwrapPrivateKey, wrapContext, wrapPrivateKey } from "./key-wrap";
export { type Keyring, loadKeyring } from "./keyring";
export { KEY_ALGORITHMS, generateKeyPair } from "./keys";
export { toPem } from "./pem";
