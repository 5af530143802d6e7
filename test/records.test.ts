import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonArray } from "../src/storage/paging";
import { CSR_COLUMN_NAMES, type CsrRow, recordJson, toRecord } from "../src/tenant/records";

// Any text SQLite could hand back, including quotes, backslashes, controls and astral characters.
const text = fc.string({ unit: "binary", maxLength: 40 });
const optional = fc.option(text, { nil: null });

const row: fc.Arbitrary<CsrRow> = fc.record({
  id: fc.uuid(),
  created_at: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  key_type: fc.constantFrom("rsa2048", "p256v1"),
  account_tag: optional,
  common_name: text,
  country: text,
  csr: text,
  description: optional,
  locality: text,
  name: optional,
  organization: text,
  organizational_unit: optional,
  sans: fc.array(text, { maxLength: 5 }).map((sans) => JSON.stringify(sans)),
  state: text,
});

const raw = (r: CsrRow) => CSR_COLUMN_NAMES.map((column) => r[column]);

describe("records rendered as JSON text in the tenant object", () => {
  it("are exactly JSON.stringify of the API object (same fields, order and escaping)", () => {
    fc.assert(
      fc.property(row, (r) => {
        expect(recordJson(raw(r))).toBe(JSON.stringify(toRecord(r)));
      }),
      { numRuns: 500 },
    );
  });

  it("a page is a JSON array of them", () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 6 }), (rows) => {
        expect(jsonArray(rows.map((r) => recordJson(raw(r))))).toBe(JSON.stringify(rows.map(toRecord)));
      }),
      { numRuns: 100 },
    );
  });
});
