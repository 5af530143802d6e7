import { type ChainFields, auditId, hex } from "./audit-chain";

/**
 * One entry as Cloudflare's account audit-log API returns it (the SDK's
 * `AuditLog`): action, actor, resource, when, metadata, owner and interface.
 */
export interface AuditLogRecord {
  id: string;
  action: { type: string; result: boolean; info?: string };
  actor: { id: string; type: string; email?: string; ip?: string };
  interface: string;
  metadata: Record<string, unknown>;
  owner: { id: string };
  resource: { id?: string; type: string };
  when: string;
}

/**
 * A stored row: the chained fields, both hashes, and the entry's MAC under
 * the KEK `mac_kek` (both NULL for entries written before trails were
 * keyed; the first keyed entry's MAC covers them through its hash).
 */
export type AuditRow = ChainFields & { prev_hash: ArrayBuffer; hash: ArrayBuffer; mac: ArrayBuffer | null; mac_kek: string | null };

export const AUDIT_COLUMNS =
  "seq, at, action, result, info, actor_type, actor_id, actor_email, actor_ip, resource_type, resource_id, metadata, prev_hash, hash, mac, mac_kek";

/** Row to API object; `owner` is the scope's id. */
export function toAuditRecord(row: AuditRow, ownerId: string): AuditLogRecord {
  const action: AuditLogRecord["action"] = { type: row.action, result: row.result === 1 };
  if (row.info !== null) action.info = row.info;
  const actor: AuditLogRecord["actor"] = { id: row.actor_id, type: row.actor_type };
  if (row.actor_email !== null) actor.email = row.actor_email;
  if (row.actor_ip !== null) actor.ip = row.actor_ip;
  const resource: AuditLogRecord["resource"] = { type: row.resource_type };
  if (row.resource_id !== null) resource.id = row.resource_id;
  return {
    id: auditId(Date.parse(row.at), row.seq, new Uint8Array(row.hash)),
    action,
    actor,
    interface: "API",
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    owner: { id: ownerId },
    resource,
    when: row.at,
  };
}

/**
 * An export line: the API object plus what a verifier needs to rebuild the
 * chain (docs/audit.md): the entry's position, the stored metadata text,
 * both hashes, and the MAC with the id of the KEK its key derives from.
 */
export function toExportLine(row: AuditRow, ownerId: string): string {
  return JSON.stringify({
    ...toAuditRecord(row, ownerId),
    chain: {
      seq: row.seq,
      metadata: row.metadata,
      prev_hash: hex(new Uint8Array(row.prev_hash)),
      hash: hex(new Uint8Array(row.hash)),
      mac: row.mac === null ? null : hex(new Uint8Array(row.mac)),
      mac_kek: row.mac_kek,
    },
  });
}
