import { type Result, fail, ok } from "../core/result";
import { type Scope, parseScopeName, scopeName } from "../core/scope";
import type { Sql } from "../storage/sql";

/**
 * An object serves exactly one scope, recorded in `meta` at its first write
 * (the only writer of its `scope` key). A call naming another scope is a
 * routing bug, and must not read or write this tenant's data: it is refused
 * (`scope_mismatch`, an internal error, logged) before anything is touched.
 */
export class ScopeBinding {
  #bound: string | null = null;

  constructor(private readonly sql: Sql) {}

  /** For a read: the scope's name, when this object holds that scope (or has recorded none yet). Writes nothing. */
  check(scope: Scope): Result<string> {
    const name = scopeName(scope);
    const held = this.#held();
    return held === null || held === name ? ok(name) : this.#refuse(name, held);
  }

  /** For a write: the scope's name, recording it as this object's scope if none is yet. */
  bind(scope: Scope): Result<string> {
    const name = scopeName(scope);
    const held = this.#held();
    if (held === null) {
      this.sql.run(`INSERT INTO meta (key, value) VALUES ('scope', ?)`, name);
      this.#bound = name;
      return ok(name);
    }
    return held === name ? ok(name) : this.#refuse(name, held);
  }

  /** The scope this object holds, once a write has recorded it (for work no call starts: the alarm). */
  bound(): Scope | null {
    const held = this.#held();
    return held === null ? null : parseScopeName(held);
  }

  #held(): string | null {
    this.#bound ??= this.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'scope'`)?.value ?? null;
    return this.#bound;
  }

  #refuse(asked: string, held: string): Result<string> {
    console.error(JSON.stringify({ level: "error", event: "scope_mismatch", asked, held }));
    return fail("scope_mismatch");
  }
}
