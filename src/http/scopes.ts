import { DEPLOYMENT_REGISTRY_NAME } from "../core/objects";
import { type Scope, scopeName } from "../core/scope";
import type { DeploymentRegistry } from "../deployment/deployment-registry";
import type { TenantStore } from "../tenant/tenant-store";
import { tenant } from "./csr-routes";
import { unwrap } from "./results";

/** The deployment registry's one object. */
export function deploymentRegistry(env: Env): DurableObjectStub<DeploymentRegistry> {
  return env.DEPLOYMENT.get(env.DEPLOYMENT.idFromName(DEPLOYMENT_REGISTRY_NAME));
}

// Scopes known to have data, by name: a scope never loses its data, so a
// yes is kept for the isolate's life (bounded, oldest first out). A no is
// never kept: another isolate may be writing the scope's first CSR now.
const KNOWN_MAX = 100_000;
const known = new Set<string>();

/**
 * The scope's object for a read, or null when the scope has no data: then
 * the caller answers as for an empty scope, and no object is woken, so a read
 * (by any token, for any scope id) never creates storage. A scope the
 * registry does not list is empty only when its list is complete (a fresh
 * deployment, or npm start's import of an older data directory); before
 * that the object is asked, and an object that was never written answers
 * as empty without writing anything (src/tenant/tenant-store.ts).
 */
export async function readableTenant(env: Env, scope: Scope): Promise<DurableObjectStub<TenantStore> | null> {
  const name = scopeName(scope);
  if (!known.has(name)) {
    const found = unwrap(await deploymentRegistry(env).lookupScope(name));
    if (!found.exists && found.complete) return null;
    if (found.exists) {
      if (known.size >= KNOWN_MAX) known.delete(known.values().next().value!);
      known.add(name);
    }
  }
  return tenant(env, scope);
}
