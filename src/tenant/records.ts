import type { KeyType } from "../pki/csr-input";
import type { JsonText } from "../storage/page";

export type { JsonText, Page } from "../storage/page";

/** A custom CSR as the API returns it (the seeds' CustomCsr object). */
export interface CsrRecord {
  id: string;
  created_at: string;
  key_type: KeyType;
  account_tag?: string;
  common_name: string;
  country: string;
  csr: string;
  description?: string;
  locality: string;
  name?: string;
  organization: string;
  organizational_unit?: string;
  sans: string[];
  state: string;
}

export type CsrRow = {
  id: string;
  created_at: string;
  key_type: string;
  account_tag: string | null;
  common_name: string;
  country: string;
  csr: string;
  description: string | null;
  locality: string;
  name: string | null;
  organization: string;
  organizational_unit: string | null;
  sans: string;
  state: string;
};

export const CSR_COLUMNS =
  "id, created_at, key_type, account_tag, common_name, country, csr, description, locality, name, organization, organizational_unit, sans, state";

/** Row to API object, in the seeds' field order; absent optional fields are left out. */
export function toRecord(row: CsrRow): CsrRecord {
  const record: CsrRecord = {
    id: row.id,
    created_at: row.created_at,
    key_type: row.key_type as KeyType,
    common_name: row.common_name,
    country: row.country,
    csr: row.csr,
    locality: row.locality,
    organization: row.organization,
    sans: JSON.parse(row.sans) as string[],
    state: row.state,
  };
  if (row.account_tag !== null) record.account_tag = row.account_tag;
  if (row.description !== null) record.description = row.description;
  if (row.name !== null) record.name = row.name;
  if (row.organizational_unit !== null) record.organizational_unit = row.organizational_unit;
  return orderFields(record);
}

/** The columns in the seeds' field order, which is also the API's. */
export const CSR_COLUMN_NAMES = CSR_COLUMNS.split(", ") as Array<keyof CsrRow>;


const SANS = CSR_COLUMN_NAMES.indexOf("sans");
const KEYS = CSR_COLUMN_NAMES.map((column) => `${JSON.stringify(column)}:`);

/**
 * A row read with `.raw()` (values in CSR_COLUMNS order) as the record's
 * JSON, the same text as JSON.stringify(toRecord(row)) without building
 * the object: reads are the API's hot path (bench/PROFILE.md).
 */
export function recordJson(values: readonly unknown[]): JsonText {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null) continue;
    // sans is stored as JSON by createCsr: spliced as it is.
    out += `${out.length > 1 ? "," : ""}${KEYS[i]}${i === SANS ? String(value) : JSON.stringify(value)}`;
  }
  return `${out}}` as JsonText;
}


function orderFields(record: CsrRecord): CsrRecord {
  const out: Record<string, unknown> = {};
  for (const key of CSR_COLUMN_NAMES) {
    const value = (record as unknown as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as unknown as CsrRecord;
}

/** One page request, already validated by the Worker. */
export interface ListQuery {
  page: number;
  per_page: number;
  order: "name" | "account_tag" | "created_at";
  direction: "asc" | "desc";
}
