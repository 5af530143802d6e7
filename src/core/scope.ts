/** An account or a zone: the unit of tenancy, one Durable Object each. */
export interface Scope {
  readonly kind: "accounts" | "zones";
  readonly id: string;
}

/** The Durable Object name, and the prefix of every wrap's additional data. */
export function scopeName(scope: Scope): string {
  return `${scope.kind}:${scope.id}`;
}

// Cloudflare's schema caps account and zone ids at 32 characters; ours are
// also restricted to a URL- and log-safe alphabet.
const SCOPE_ID = /^[A-Za-z0-9_-]{1,32}$/;

export function isScopeId(id: string): boolean {
  return SCOPE_ID.test(id);
}

/** The scope a Durable Object name (`zones:<id>`) names, or null. */
export function parseScopeName(name: string): Scope | null {
  const at = name.indexOf(":");
  const kind = name.slice(0, at);
  const id = name.slice(at + 1);
  return (kind === "accounts" || kind === "zones") && isScopeId(id) ? { kind, id } : null;
}
