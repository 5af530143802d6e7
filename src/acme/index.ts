// The ACME floor's public surface (RFC 8555): a client library with no
// storage and no Durable Object of its own. Everything reaches the CA through
// an injected fetch; every step returns a Result; nothing is thrown across it.
export { createAccount, findAccount, type AcmeAccountRef, type NewAccountOptions } from "./account";
export {
  AcmeAccountKey,
  generateAccountKey,
  importAccountKey,
  jwkThumbprint,
  type AcmePublicJwk,
  type FlattenedJws,
  type GeneratedAccountKey,
} from "./account-key";
export { authorizationProblem, getAuthorization, respondToChallenge, selectChallenge } from "./authorization";
export { type AcmeCertificateChain, parsePemChain } from "./certificate-chain";
export { challengeProof, type ChallengeProof, dns01RecordName, dns01TxtValue, http01Path, keyAuthorization } from "./challenges";
export type { AcmeDirectory, AcmeDirectoryMeta } from "./directory";
export { decodeEabKey, type ExternalAccountBinding, externalAccountBinding } from "./eab";
export type {
  AcmeAccount,
  AcmeAccountStatus,
  AcmeAuthorization,
  AcmeAuthorizationStatus,
  AcmeChallenge,
  AcmeChallengeStatus,
  AcmeOrder,
  AcmeOrderStatus,
} from "./objects";
export { downloadCertificate, finalize, getOrder, newOrder, type NewOrderOptions } from "./order";
export { type AcmeIdentifier, type AcmeProblem, type AcmeSubproblem, parseProblem } from "./problem";
export {
  type AcmeBadInput,
  type AcmeBadResponse,
  type AcmeNoChallenge,
  type AcmeProblemRefusal,
  type AcmeRefusal,
  type AcmeRequestRefusal,
  type AcmeUnreachable,
  isRetryable,
} from "./refusals";
export { parseHttpDate, parseRetryAfter } from "./retry-after";
export { AcmeSession, type AcmeSigner, openDirectory } from "./session";
export { type AcmeFetch, type AcmeOptions, type AcmeRequestInit } from "./transport";
