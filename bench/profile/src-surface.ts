// Everything bench/ takes from src/, in one place. The Durable Object
// classes come from src's entry point (the slice Worker serves them as the
// API does); the rest are src's internal modules, by path, since the slice
// Worker times them one by one. Once src/ exports them, only this file
// changes. Types of src/ the bench names (TenantStore's, for the seeder
// Worker's RPC) come from here too.
export { DeploymentRegistry, EdgeRegistry, ReadinessProbe, TenantStore, ZoneDirectory } from "../../src/index";
export { authenticate, authorize } from "../../src/auth/authenticate";
export { verifyJwt } from "../../src/auth/jwt";
export { readJson } from "../../src/http/body";
export { pageOf, success } from "../../src/http/envelope";
export { handle } from "../../src/http/router";
export { buildCsr, buildSubject } from "../../src/pki/csr-builder";
export { parseCsrInput } from "../../src/pki/csr-input";
export { tlv } from "../../src/pki/der";
export { p1363ToDer } from "../../src/pki/ec-signature";
export { unwrapPrivateKey, wrapContext, wrapPrivateKey } from "../../src/pki/key-wrap";
export { loadKeyring } from "../../src/pki/keyring";
export { KEY_ALGORITHMS, generateKeyPair } from "../../src/pki/keys";
export { toPem } from "../../src/pki/pem";
export { readPage } from "../../src/tenant/paging";
export { CSR_COLUMNS, CSR_COLUMN_NAMES, type CsrRow, type JsonText, recordJson, toRecord } from "../../src/tenant/records";
export { migrate } from "../../src/storage/migrate";
export { TENANT_MIGRATIONS } from "../../src/tenant/schema";
export { Sql } from "../../src/storage/sql";
