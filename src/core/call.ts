import type { Scope } from "./scope";

/**
 * Who made a call, as the audit trail records it: never a credential, only
 * what names one.
 */
export interface Actor {
  /**
   * `user`: an API token or a global API key; `admin`: the operator's
   * ADMIN_SECRET; `system`: the service's own background work (the key pool);
   * `edge`: a registered edge fetching keys with its delivery token
   * (docs/auth.md, "SSL and Certificates Key Delivery").
   */
  readonly type: "user" | "admin" | "system" | "edge";
  /** The token's `jti` (else `sub`), the global key's email, `admin`, the system task (`key-pool`), or the edge's id. */
  readonly id: string;
  /** The global API key's email, when that is the credential. */
  readonly email?: string;
  /** The caller's address, where the Worker knows it (`CF-Connecting-IP`). */
  readonly ip?: string;
}

/** What every tenant RPC carries: the scope it is for, and who asks. */
export interface TenantCall {
  readonly scope: Scope;
  readonly actor: Actor;
}
