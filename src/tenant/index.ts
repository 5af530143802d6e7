// The tenant floor's public surface: the object, its schema, and its records.
export { CSR_COLUMNS, CSR_COLUMN_NAMES, type CsrRecord, type CsrRow, recordJson, toRecord } from "./records";
export { TENANT_MIGRATIONS } from "./schema";
export { TenantStore } from "./tenant-store";
