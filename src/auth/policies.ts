import type { Scope } from "../core/scope";
import { scopeName } from "../core/scope";

/**
 * read: list and get; write: create, edit, delete; audit: read the scope's
 * audit trail; deliver: a registered edge fetches the keys sealed to it.
 */
export type Permission = "read" | "write" | "audit" | "deliver" | "notifications_read" | "notifications_write";

/**
 * One allow or deny of a permission on a scope: `accounts:<id>`,
 * `zones:<id>`, or `<kind>:*`. With `account`, a zone grant holds only for a
 * zone recorded under that account (`*`: under any account): the nested
 * resources of Cloudflare's token policies, and global keys listing an
 * account.
 */
export interface Grant {
  effect: "allow" | "deny";
  scope: string;
  permission: Permission;
  account?: string;
}

// Cloudflare's permission group names for these endpoints (seeds). Write
// includes read, as on Cloudflare. The audit trail is readable with either
// SSL and Certificates group, and with the groups Cloudflare's own audit-log
// API accepts (Account Settings), which grant nothing else here. Key
// Delivery is ours (issue 10): it lets a registered edge fetch the keys
// sealed to it, and nothing else; neither Read nor Write includes it.
const GROUPS: Record<string, Permission[]> = {
  "SSL and Certificates Read": ["read", "audit"],
  "SSL and Certificates Write": ["read", "write", "audit"],
  "Account Settings Read": ["audit"],
  "Account Settings Write": ["audit"],
  "SSL and Certificates Key Delivery": ["deliver"],
  // Cloudflare's Notifications groups (account-level): the alerting API (docs/notifications.md).
  "Notifications Read": ["notifications_read"],
  "Notifications Write": ["notifications_read", "notifications_write"],
};

const ACCOUNT = "com.cloudflare.api.account.";
const ZONE = "com.cloudflare.api.account.zone.";

/**
 * What one `resources` entry covers: `"<zone resource>": "*"` a zone (or
 * every zone); `"<account resource>": "*"` an account (or every account);
 * `"<account resource>": {"<zone resource>": "*", …}` the zones named
 * inside, each only while recorded under that account (the account itself is
 * not covered by the nested form). Anything else covers nothing.
 */
function covered(resource: string, value: unknown): Array<Pick<Grant, "scope" | "account">> {
  if (resource.startsWith(ZONE)) return value === "*" ? [{ scope: `zones:${resource.slice(ZONE.length)}` }] : [];
  if (!resource.startsWith(ACCOUNT)) return [];
  const account = resource.slice(ACCOUNT.length);
  if (value === "*") return [{ scope: `accounts:${account}` }];
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [];
  return Object.entries(value as Record<string, unknown>)
    .filter(([inner, innerValue]) => inner.startsWith(ZONE) && innerValue === "*")
    .map(([inner]) => ({ scope: `zones:${inner.slice(ZONE.length)}`, account }));
}

/**
 * Grants of a token's `policies` claim, Cloudflare's shape:
 * `[{effect, resources: {"com.cloudflare.api.account.<id>": "*", …},
 * permission_groups: [{name}]}]`. Returns null when the claim is not of that
 * shape (1004). Unknown permission groups and resources grant nothing.
 */
export function grantsFromPolicies(policies: unknown[]): Grant[] | null {
  const grants: Grant[] = [];
  for (const policy of policies) {
    if (typeof policy !== "object" || policy === null || Array.isArray(policy)) return null;
    const { effect, resources, permission_groups: groups } = policy as Record<string, unknown>;
    if (effect !== "allow" && effect !== "deny") return null;
    if (typeof resources !== "object" || resources === null || Array.isArray(resources)) return null;
    if (!Array.isArray(groups)) return null;
    const permissions = new Set<Permission>();
    for (const group of groups as unknown[]) {
      const name = (group as { name?: unknown } | null)?.name;
      if (typeof name !== "string") return null;
      for (const p of GROUPS[name] ?? []) permissions.add(p);
    }
    for (const [resource, value] of Object.entries(resources)) {
      for (const cover of covered(resource, value)) {
        // A deny that names a zone denies it whatever account it is under
        // (fail closed); a deny of an account's zones holds for that account's.
        const where = effect === "deny" && cover.scope !== "zones:*" ? { scope: cover.scope } : cover;
        for (const permission of permissions) grants.push({ effect, permission, ...where });
      }
    }
  }
  return grants;
}

/**
 * Grants of a global API key: full SSL and Certificates rights on its
 * scopes, and on every zone recorded under one of its accounts (never
 * delivery: a global key names no edge).
 */
export function fullGrants(accounts: readonly string[], zones: readonly string[]): Grant[] {
  const covers: Array<Pick<Grant, "scope" | "account">> = [
    ...accounts.map((id) => ({ scope: `accounts:${id}` })),
    ...accounts.map((id) => ({ scope: "zones:*", account: id })),
    ...zones.map((id) => ({ scope: `zones:${id}` })),
  ];
  return covers.flatMap((cover) =>
    (["read", "write", "audit", "notifications_read", "notifications_write"] as const).map((permission) => ({ effect: "allow" as const, permission, ...cover })),
  );
}

// An account no grant can name (not a valid id): a zone under an account the grants do not mention.
const UNNAMED_ACCOUNT = "\u0000";

/**
 * Whether the zone's account can change the decision. A zone is under no
 * account, under one no grant names, or under one a grant names: when every
 * such case decides alike, the account need not be looked up.
 */
export function needsZoneAccount(grants: readonly Grant[], scope: Scope, permission: Permission): boolean {
  if (scope.kind !== "zones") return false;
  const named = new Set<string>();
  for (const g of grants) if (g.account !== undefined && g.account !== "*" && g.permission === permission) named.add(g.account);
  const decisions = [null, UNNAMED_ACCOUNT, ...named].map((account) => allows(grants, scope, permission, account));
  return decisions.some((d) => d !== decisions[0]);
}

/**
 * Whether the grants allow `permission` on `scope`: an exact account or zone
 * grant, or `*` for every account or every zone, with a zone's account
 * condition met by `zoneAccount` (the account the zone is recorded under,
 * null when none: then no conditional grant applies); any matching deny wins.
 */
export function allows(grants: readonly Grant[], scope: Scope, permission: Permission, zoneAccount: string | null = null): boolean {
  const names = [scopeName(scope), `${scope.kind}:*`];
  const holds = (account: string | undefined) => account === undefined || (zoneAccount !== null && (account === "*" || account === zoneAccount));
  const matching = grants.filter((g) => g.permission === permission && names.includes(g.scope) && holds(g.account));
  return matching.some((g) => g.effect === "allow") && !matching.some((g) => g.effect === "deny");
}
