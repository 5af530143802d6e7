import { type Result, fail, ok } from "../core/result";
import type { BodyShapeRefusal } from "../core/refusals";
import { isCountryCode } from "../pki/countries";
import { type EdgeKeyRefusal, parseEdgePublicKey } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";
import { isRegionCode } from "../pki/geo-regions";
import type { EdgeRegistration } from "./edge-records";

const LABELS = ["country", "region", "highest_security"];

/** Why an edge's labels are refused (ours: 1472): `problem` says what is wrong, `pointer` where. */
export type EdgeLabelsRefusal = { readonly reason: "invalid_edge_labels"; readonly pointer: string; readonly problem: string };

/** Why an edge registration body is refused (1400, 1471, 1472). */
export type EdgeRegistrationRefusal = BodyShapeRefusal | EdgeKeyRefusal | EdgeLabelsRefusal;

const refuse = (member: string, problem: string) => fail({ reason: "invalid_edge_labels", pointer: `/labels/${member}`, problem });

/**
 * An edge's labels: `country` (ISO 3166-1 alpha-2) and `region` (a Geo Key
 * Manager region code) are required, in either case and stored upper case;
 * `highest_security` is an optional boolean (default false). Nothing else.
 */
export function parseEdgeLabels(input: unknown): Result<EdgeLabels, EdgeLabelsRefusal> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return fail({ reason: "invalid_edge_labels", pointer: "/labels", problem: "labels must be an object" });
  }
  const labels = input as Record<string, unknown>;
  for (const member of Object.keys(labels)) {
    if (!LABELS.includes(member)) {
      return fail({ reason: "invalid_edge_labels", pointer: "/labels", problem: `${JSON.stringify(member.slice(0, 32))} is not a label` });
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
export async function parseEdgeRegistration(body: unknown): Promise<Result<EdgeRegistration, EdgeRegistrationRefusal>> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail({ reason: "invalid_json" });
  const b = body as Record<string, unknown>;
  const key = await parseEdgePublicKey(b.public_key);
  if (!key.ok) return key;
  const labels = parseEdgeLabels(b.labels);
  if (!labels.ok) return labels;
  return ok({ public_key: key.value.key, thumbprint: key.value.thumbprint, labels: labels.value });
}
