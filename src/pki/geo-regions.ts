// The region codes of Cloudflare's Geo Key Manager v2 (developers.cloudflare.com,
// ssl/edge-certificates/geokey-manager/supported-options, "Available regions"),
// used as an edge's `region` label and in `region: CODE` policy terms.
export const REGION_CODES = [
  "AFR", // Africa
  "APAC", // Asia Pacific
  "EEUR", // Eastern Europe
  "ENAM", // Eastern North America
  "EU", // European Union
  "ME", // Middle East
  "OC", // Oceania
  "SAM", // South America
  "WEUR", // Western Europe
  "WNAM", // Western North America
] as const;

export type RegionCode = (typeof REGION_CODES)[number];

const REGIONS: ReadonlySet<string> = new Set(REGION_CODES);

/** Whether `code` (upper case) is one of Geo Key Manager's region codes. */
export function isRegionCode(code: string): code is RegionCode {
  return REGIONS.has(code);
}

// The 27 member states of the European Union (ISO 3166-1 alpha-2; Greece is
// GR). An edge in one of them is in region EU whatever its own region label
// (WEUR, EEUR): the EU is a political union that cuts across Cloudflare's
// geographic regions, and that is what `region: EU` and the `eu`
// geo_restrictions label are about.
const EU_MEMBERS: ReadonlySet<string> = new Set(
  "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split(" "),
);

/** Whether the country (ISO 3166-1 alpha-2, upper case) is an EU member state. */
export function isEuMember(country: string): boolean {
  return EU_MEMBERS.has(country);
}
