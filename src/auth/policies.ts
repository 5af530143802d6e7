import type { Scope } from "../core/scope";
import { scopeName } from "../core/scope";

export type Permission = "read" | "write" | "deliver";

/** One allow or deny of a permission on a scope (`accounts:<id>`, `zones:<id>`, or `accounts:*`). */
export interface Grant {
  effect: "allow" | "deny";
  scope: string;
  permission: Permission;
}

// Cloudflare's permission group names for these endpoints (seeds). Write
// includes read, as on Cloudflare. Key Delivery is ours (issue 10): it lets a
// registered edge fetch the keys sealed to it, and nothing else; neither
// Read nor Write includes it.
const GROUPS: Record<string, Permission[]> = {
  "SSL and Certificates Read": ["read"],
  "SSL and Certificates Write": ["read", "write"],
  "SSL and Certificates Key Delivery": ["deliver"],
};

const ACCOUNT = "com.cloudflare.api.account.";
const ZONE = "com.cloudflare.api.account.zone.";

/** A token resource name as the scope it covers, or null for resources this API does not serve. */
function resourceScope(resource: string): string | null {
  if (resource.startsWith(ZONE)) return `zones:${resource.slice(ZONE.length)}`;
  if (resource.startsWith(ACCOUNT)) return `accounts:${resource.slice(ACCOUNT.length)}`;
  return null;
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
      if (value !== "*") continue;
      const scope = resourceScope(resource);
      if (!scope) continue;
      for (const permission of permissions) grants.push({ effect, scope, permission });
    }
  }
  return grants;
}

/** Grants of a global API key: full SSL and Certificates rights on its scopes (read and write; never delivery). */
export function fullGrants(accounts: readonly string[], zones: readonly string[]): Grant[] {
  return [...accounts.map((id) => `accounts:${id}`), ...zones.map((id) => `zones:${id}`)].flatMap((scope) => [
    { effect: "allow" as const, scope, permission: "read" as const },
    { effect: "allow" as const, scope, permission: "write" as const },
  ]);
}

/**
 * Whether the grants allow `permission` on `scope`: an exact account or zone
 * grant, or `*` for every account or every zone; any matching deny wins.
 */
export function allows(grants: readonly Grant[], scope: Scope, permission: Permission): boolean {
  const names = [scopeName(scope), `${scope.kind}:*`];
  const matching = grants.filter((g) => g.permission === permission && names.includes(g.scope));
  return matching.some((g) => g.effect === "allow") && !matching.some((g) => g.effect === "deny");
}
