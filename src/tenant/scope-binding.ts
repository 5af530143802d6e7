import { type Failed, type Result, fail, ok } from "../core/result";
import type { ScopeMismatch } from "../core/refusals";
import { type Scope, parseScopeName, scopeName } from "../core/scope";
import type { Meta } from "./meta";

/**
 * An object serves exactly one scope, recorded in `meta` at its first write.
 * A call naming another scope is a routing bug, and must not read or write
 * this tenant's data: it is refused (`scope_mismatch`, an internal error,
 * logged) before anything is touched.
 */
export class ScopeBinding {
  constructor(private readonly meta: Meta) {}

  /** For a read: the scope's name, when this object holds that scope (or has recorded none yet). Writes nothing. */
  check(scope: Scope): Result<string, ScopeMismatch> {
    const name = scopeName(scope);
    const held = this.meta.get("scope");
    return held === null || held === name ? ok(name) : this.#refuse(name, held);
  }

  /** For a write: the scope's name, recording it as this object's scope if none is yet. */
  bind(scope: Scope): Result<string, ScopeMismatch> {
    const name = scopeName(scope);
    const held = this.meta.get("scope");
    if (held === null) {
      this.meta.set("scope", name);
      return ok(name);
    }
    return held === name ? ok(name) : this.#refuse(name, held);
  }

  /** The scope this object holds, once a write has recorded it (for work no call starts: the alarm). */
  bound(): Scope | null {
    const held = this.meta.get("scope");
    return held === null ? null : parseScopeName(held);
  }

  #refuse(asked: string, held: string): Failed<ScopeMismatch> {
    console.error(JSON.stringify({ level: "error", event: "scope_mismatch", asked, held }));
    return fail({ reason: "scope_mismatch" });
  }
}
