// Everything bench/ takes from src/, in one place, and only through what
// src/ exports: its entry point (the Durable Object classes, which the slice
// Worker serves as the API does) and each floor's index (the pieces the
// slice Worker times one by one).
export { DeploymentRegistry, EdgeRegistry, FleetMetrics, ReadinessProbe, TenantStore, ZoneDirectory } from "../../src/index";
export { authenticate, authorize, verifyJwt } from "../../src/auth/index";
export { handle, pageOf, readJson, success } from "../../src/http/index";
export {
  KEY_ALGORITHMS,
  buildCsr,
  buildSubject,
  generateKeyPair,
  loadKeyring,
  p1363ToDer,
  parseCsrInput,
  tlv,
  toPem,
  unwrapPrivateKey,
  wrapContext,
  wrapPrivateKey,
} from "../../src/pki/index";
export { type JsonText, Sql, migrate, readPage } from "../../src/storage/index";
export { CSR_COLUMNS, CSR_COLUMN_NAMES, type CsrRow, TENANT_MIGRATIONS, recordJson, toRecord } from "../../src/tenant/index";
