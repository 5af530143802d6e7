import { type Result, fail, ok } from "../core/result";
import { isCountryCode } from "../pki/countries";
import { parseEdgePublicKey } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";
import { isRegionCode } from "../pki/geo-regions";
import type { EdgeRegistration } from "./edge-records";

const LABELS = ["country", "region", "highest_security"];

const refuse = (member: string, detail: string) => fail("invalid_edge_labels", { pointer: `/labels/${member}`, detail });

/**
 * An edge's labels: `country` (ISO 3166-1 alpha-2) and `region` (a Geo Key
 * Manager region code) are required, in either case and stored upper case;
 * `highest_security` is an optional boolean (default false). Nothing else.
 */
export function parseEdgeLabels(input: unknown): Result<EdgeLabels> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return fail("invalid_edge_labels", { pointer: "/labels", detail: "labels must be an object" });
  }
  const labels = input as Record<string, unknown>;
  for (const member of Object.keys(labels)) {
    if (!LABELS.includes(member)) {
      return fail("invalid_edge_labels", { pointer: "/labels", detail: `${JSON.stringify(member.slice(0, 32))} is not a label` });
    }
  }
  const country = typeof labels.country === "string" ? labels.country.trim().toUpperCase() : "";
  if (!isCountryCode(country)) return refuse("country", "country must be an ISO 3166-1 alpha-2 code");
  const region = typeof labels.region === "string" ? labels.region.trim().toUpperCase() : "";
  if (!isRegionCode(region)) return refuse("region", "region must be a Geo Key Manager region code");
  const highest = labels.highest_security ?? false;
  if (typeof highest !== "boolean") return refuse("highest_security", "highest_security must be true or false");
  return ok({ country, region, highest_security: highest });
}

/** The body of `PUT /admin/v1/edges/{edge_id}`: `{"public_key": JWK, "labels": {…}}`. */
export async function parseEdgeRegistration(body: unknown): Promise<Result<EdgeRegistration>> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail("invalid_json");
  const b = body as Record<string, unknown>;
  const key = await parseEdgePublicKey(b.public_key);
  if (!key.ok) return key;
  const labels = parseEdgeLabels(b.labels);
  if (!labels.ok) return labels;
  return ok({ public_key: key.value.key, thumbprint: key.value.thumbprint, labels: labels.value });
}
