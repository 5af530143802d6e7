import { type Result, fail, ok } from "../core/result";
import { GEO_LABELS, type GeoLabel, type PlacementRule, type PolicyRefusal, parsePolicy } from "../pki/geo-policy";
import type { PlacementChange } from "../tenant/certificate-records";

/** Why a placement is refused: a policy that does not parse (1450–1457), geo_restrictions (1458), both (1459), a wrong type (1430). */
export type PlacementRefusal =
  | PolicyRefusal
  | { readonly reason: "invalid_field_type"; readonly pointer: string }
  | { readonly reason: "invalid_geo_restrictions"; readonly pointer: string }
  | { readonly reason: "policy_with_geo_restrictions"; readonly pointer: string };

/** One of the two fields as sent: absent (leave it), cleared (null, blank, `{}`), or set. */
type Field<T> = { given: false } | { given: true; value: T | null };

/**
 * `policy`, or `policy_restrictions` when `policy` is absent (the SDK: "The
 * API accepts this field as either"): a string; blank or null clears it.
 */
function policyField(body: Record<string, unknown>): Result<Field<string>, PlacementRefusal> {
  const name = body.policy !== undefined ? "policy" : "policy_restrictions";
  const raw = body[name];
  if (raw === undefined) return ok({ given: false });
  if (raw === null) return ok({ given: true, value: null });
  if (typeof raw !== "string") return fail({ reason: "invalid_field_type", pointer: `/${name}` });
  const text = raw.trim();
  if (text === "") return ok({ given: true, value: null });
  const parsed = parsePolicy(text);
  if (!parsed.ok) return fail({ ...parsed, pointer: `/${name}` });
  return ok({ given: true, value: text });
}

/** `geo_restrictions`: `{"label": "us" | "eu" | "highest_security"}`; null or a label-less object clears it. */
function geoField(body: Record<string, unknown>): Result<Field<GeoLabel>, PlacementRefusal> {
  const raw = body.geo_restrictions;
  if (raw === undefined) return ok({ given: false });
  if (raw === null) return ok({ given: true, value: null });
  if (typeof raw !== "object" || Array.isArray(raw)) return fail({ reason: "invalid_geo_restrictions", pointer: "/geo_restrictions" });
  const label = (raw as Record<string, unknown>).label;
  if (label === undefined || label === null) return ok({ given: true, value: null });
  if (typeof label !== "string" || !(GEO_LABELS as readonly string[]).includes(label)) {
    return fail({ reason: "invalid_geo_restrictions", pointer: "/geo_restrictions/label" });
  }
  return ok({ given: true, value: label as GeoLabel });
}

/**
 * The placement a create body asks for: nothing sent means no restriction.
 * `policy` and `geo_restrictions` are mutually exclusive, as on Cloudflare
 * (Geo Key Manager setup: "mutually exclusive"): both set is 1459.
 */
export function parsePlacement(body: Record<string, unknown>): Result<PlacementRule, PlacementRefusal> {
  const change = parsePlacementChange(body);
  if (!change.ok) return change;
  return ok({ policy: change.value.policy ?? null, geo_restriction: change.value.geo_restriction ?? null });
}

/**
 * What an edit body changes of the placement: each member present is set
 * (or cleared, when null); setting one of the two clears the other (the
 * store applies it). Both set is 1459, as on a create.
 */
export function parsePlacementChange(body: Record<string, unknown>): Result<PlacementChange, PlacementRefusal> {
  const policy = policyField(body);
  if (!policy.ok) return policy;
  const geo = geoField(body);
  if (!geo.ok) return geo;
  const p = policy.value;
  const g = geo.value;
  if (p.given && p.value !== null && g.given && g.value !== null) {
    return fail({ reason: "policy_with_geo_restrictions", pointer: "/geo_restrictions" });
  }
  const change: { policy?: string | null; geo_restriction?: GeoLabel | null } = {};
  if (p.given) change.policy = p.value;
  if (g.given) change.geo_restriction = g.value;
  return ok(change);
}
