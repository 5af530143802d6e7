import { type Scope, parseScopeName, scopeName } from "../core/scope";
import type { Sql } from "../storage/sql";

/**
 * An object serves exactly one scope, recorded in `meta` on first use (the
 * only writer of its `scope` key). A call naming another scope is a routing
 * bug, and must not read or write this tenant's data.
 */
export class ScopeBinding {
  #bound: string | null = null;

  constructor(private readonly sql: Sql) {}

  /** The scope's name (`zones:<id>`), after checking this object holds it; throws otherwise. */
  check(scope: Scope): string {
    const name = scopeName(scope);
    if (this.#bound === null) {
      const stored = this.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'scope'`)?.value;
      if (stored === undefined) this.sql.run(`INSERT INTO meta (key, value) VALUES ('scope', ?)`, name);
      this.#bound = stored ?? name;
    }
    if (this.#bound !== name) throw new Error("Durable Object called for a scope it does not hold");
    return name;
  }

  /** The scope this object holds, once any call has named it (for work no call starts: the alarm). */
  bound(): Scope | null {
    this.#bound ??= this.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'scope'`)?.value ?? null;
    return this.#bound === null ? null : parseScopeName(this.#bound);
  }
}
