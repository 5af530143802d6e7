import { type Result, fail, ok } from "../core/result";
import type { BodyShapeRefusal } from "../core/refusals";
import { isCountryCode } from "./countries";
import { MAX_SANS, type SanRefusal, checkSan } from "./san";

export const KEY_TYPES = ["rsa2048", "p256v1"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** A create request that passed every check: what the Durable Object signs. */
export interface CsrInput {
  key_type: KeyType;
  common_name: string;
  country: string;
  state: string;
  locality: string;
  organization: string;
  organizational_unit: string | null;
  name: string | null;
  description: string | null;
  sans: string[];
}

// Upper bounds of RFC 5280 Appendix A (ub-common-name 64, ub-state-name and
// ub-locality-name 128, ub-organization-name and ub-organizational-unit-name
// 64); name and description are ours.
const LIMITS = {
  common_name: 64,
  state: 128,
  locality: 128,
  organization: 64,
  organizational_unit: 64,
  name: 255,
  description: 1024,
} as const;

type TextField = keyof typeof LIMITS;

type Missing = "missing_country" | "missing_state" | "missing_locality" | "missing_organization" | "missing_common_name";

/** Why a create body is refused (the seeds' 1400, 1405–1417; ours 1430–1437). */
export type CsrInputRefusal =
  | BodyShapeRefusal
  | { readonly reason: Missing; readonly pointer: string }
  | { readonly reason: "common_name_too_long" | "field_too_long"; readonly pointer: string; readonly max: number }
  | { readonly reason: "invalid_field_characters"; readonly pointer: string }
  | { readonly reason: "invalid_country"; readonly pointer: string }
  | { readonly reason: "missing_sans"; readonly pointer: string }
  | { readonly reason: "too_many_sans"; readonly pointer: string; readonly max: number }
  | SanRefusal
  | { readonly reason: "invalid_key_type"; readonly pointer: string };

const REQUIRED: ReadonlyArray<[TextField, Missing]> = [
  ["state", "missing_state"],
  ["locality", "missing_locality"],
  ["organization", "missing_organization"],
  ["common_name", "missing_common_name"],
];

// C0 and C1 controls, DEL, and line/paragraph separators have no place in a
// certificate subject.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

// Lone UTF-16 surrogates are not text: they have no UTF-8 encoding to put in a certificate.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Whitespace and the invisible format characters trim() keeps: a value of only these is blank.
const INVISIBLE = /[\s\u200B-\u200D\u2060\uFEFF]/g;

const isBlank = (v: unknown): boolean =>
  v === undefined || v === null || (typeof v === "string" && v.replace(INVISIBLE, "") === "");

/** A text field: absent, null or blank is null; a non-string is 1430. */
function text(body: Record<string, unknown>, field: TextField): Result<string | null, CsrInputRefusal> {
  const raw = body[field];
  const pointer = `/${field}`;
  if (raw === undefined || raw === null) return ok(null);
  if (typeof raw !== "string") return fail({ reason: "invalid_field_type", pointer });
  const value = raw.trim();
  if (value.replace(INVISIBLE, "") === "") return ok(null);
  if (CONTROL.test(value) || LONE_SURROGATE.test(value)) return fail({ reason: "invalid_field_characters", pointer });
  if (value.length > LIMITS[field]) {
    return fail({ reason: field === "common_name" ? "common_name_too_long" : "field_too_long", pointer, max: LIMITS[field] });
  }
  return { ok: true, value };
}

/**
 * Validates a create body in the order of the seeds' error table (1400,
 * 1405–1417), answering with the first refusal. Strings are trimmed; the
 * country is upper-cased; SANs keep their order with exact duplicates dropped.
 */
export function parseCsrInput(body: unknown): Result<CsrInput, CsrInputRefusal> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail({ reason: "invalid_json" });
  const b = body as Record<string, unknown>;

  const country = b.country;
  if (isBlank(country)) return fail({ reason: "missing_country", pointer: "/country" });
  if (typeof country !== "string") return fail({ reason: "invalid_field_type", pointer: "/country" });
  const countryCode = country.trim().toUpperCase();
  if (!isCountryCode(countryCode)) return fail({ reason: "invalid_country", pointer: "/country" });

  // Required-ness first, in the table's order, so a missing field is named
  // even when another field is also malformed.
  for (const [field, reason] of REQUIRED) {
    if (isBlank(b[field])) return fail({ reason, pointer: `/${field}` });
  }
  const values: Partial<Record<TextField, string | null>> = {};
  for (const field of Object.keys(LIMITS) as TextField[]) {
    const t = text(b, field);
    if (!t.ok) return t;
    values[field] = t.value;
  }

  const sans = b.sans;
  if (sans === undefined || sans === null) return fail({ reason: "missing_sans", pointer: "/sans" });
  if (!Array.isArray(sans)) return fail({ reason: "invalid_field_type", pointer: "/sans" });
  if (sans.length === 0) return fail({ reason: "missing_sans", pointer: "/sans" });
  if (sans.length > MAX_SANS) return fail({ reason: "too_many_sans", pointer: "/sans", max: MAX_SANS });
  const unique: string[] = [];
  for (const [i, san] of sans.entries()) {
    if (typeof san !== "string") return fail({ reason: "invalid_field_type", pointer: `/sans/${i}` });
    const refusal = checkSan(san, i);
    if (refusal) return fail(refusal);
    if (!unique.includes(san)) unique.push(san);
  }

  const keyType = b.key_type ?? "rsa2048";
  if (typeof keyType !== "string" || !(KEY_TYPES as readonly string[]).includes(keyType)) {
    return fail({ reason: "invalid_key_type", pointer: "/key_type" });
  }

  return ok({
    key_type: keyType as KeyType,
    common_name: values.common_name as string,
    country: countryCode,
    state: values.state as string,
    locality: values.locality as string,
    organization: values.organization as string,
    organizational_unit: values.organizational_unit ?? null,
    name: values.name ?? null,
    description: values.description ?? null,
    sans: unique,
  });
}
