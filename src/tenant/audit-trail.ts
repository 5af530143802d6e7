import { type Clock, systemClock } from "../core/clock";
import type { TenantCall } from "../core/call";
import { scopeName } from "../core/scope";
import { type Keyring, KeyringError, macKey, macOf } from "../pki/keyring";
import { AUDIT_MAC_PURPOSE, type ChainFields, GENESIS_HASH, auditId, entryHash, hex, macBytes, seqOfAuditId } from "./audit-chain";
import { AUDIT_COLUMNS, type AuditRow, toAuditRecord, toExportLine } from "./audit-records";
import type { Counters } from "./counters";
import { readPage } from "../storage/paging";
import type { JsonText, Page } from "../storage/paging";
import type { Sql } from "../storage/sql";

/** What happened, in Cloudflare's audit-log words (docs/audit.md lists every pair). */
export type AuditAction = "create" | "update" | "delete" | "generate" | "rewrap" | "verify" | "deliver" | "seal" | "order" | "validate" | "finalize" | "alert" | "notify";
export type AuditResourceType =
  | "custom_csr"
  | "custom_certificate"
  | "entitlement"
  | "private_key"
  | "pooled_key"
  | "key_pool"
  | "zone_account"
  | "audit_log"
  | "custom_hostname"
  | "custom_hostname_certificate"
  | "hostname_quota"
  | "fallback_origin"
  | "hostname_key"
  | "acme_account"
  | "alert_webhook"
  | "alert_policy"
  | "edge";

/** One event to record: the actor comes from the call. */
export interface AuditEvent {
  action: AuditAction;
  resource: { type: AuditResourceType; id: string | null };
  /** false for a refused write (quota, entitlement, 1420, another key's certificate) or a failed self-check. */
  result: boolean;
  /** Why it failed, in a few words, with the API's code. */
  info?: string;
  /** Never a key, a token or a secret: only names, counts and public fields. */
  metadata?: Record<string, unknown>;
}

/** A page request, validated by the Worker. Times are Unix milliseconds. */
export interface AuditQuery {
  page: number;
  per_page: number;
  direction: "asc" | "desc";
  since?: number;
  before?: number;
  action?: string;
  actor_email?: string;
  id?: string;
}

export interface AuditHead {
  /** How many entries the chain holds. */
  entries: number;
  /** SHA-256 of the last entry (hex); the genesis value (64 zeros) when empty. */
  head: string;
}

/** The actor of the entry that keys a trail whose last entry has no MAC (see `record`). */
export const AUDIT_ACTOR = { type: "system", id: "audit" } as const;

/**
 * A verification's outcome. `keyed_from` is the position of the first keyed
 * entry (null: none is keyed, a trail written entirely before trails were
 * keyed); every entry from it on carries a MAC that was checked, and its MAC
 * covers every entry before it.
 */
export type ChainCheck =
  | ({ ok: true; keyed_from: number | null } & AuditHead)
  | { ok: false; entries_checked: number; broken_at: { position: number; id: string | null; reason: string } };

/** A verification that could not be made: a KEK some entry's MAC is keyed under is not configured. */
export class MacKeyMissing extends Error {
  constructor(readonly kekId: string) {
    super(`key-encryption key ${kekId} is not configured`);
  }
}

// Rows read per statement while verifying; while exporting, fewer (a batch
// may stop at its byte budget after any row).
const BATCH = 1000;
const EXPORT_READ = 50;

/**
 * The scope's audit trail: an append-only, hash-chained table. The only
 * writer of `audit_log`. `record` is called by every module that changes the
 * scope, inside that change's transaction, so a change and its entry commit
 * together or not at all.
 */
export class AuditTrail {
  #keyring: Keyring | null = null;
  // MAC keys by KEK id and scope, derived once per keyring.
  #keys = new Map<string, Uint8Array>();

  constructor(
    private readonly sql: Sql,
    private readonly counters: Counters,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The checked keyring entries are keyed with (the object sets it whenever its gate opens one). */
  useKeyring(keyring: Keyring): void {
    if (this.#keyring === keyring) return;
    this.#keyring = keyring;
    this.#keys.clear();
  }

  /**
   * Appends one entry (synchronous: call it inside the transaction of the
   * change it records), keyed under the current KEK. Throws when no keyring
   * was given (every write opens one first), so the change is not made.
   *
   * A trail whose last entry carries no MAC (written before trails were
   * keyed, or stripped by someone who can write the data directory: nothing
   * there tells the two apart) is not keyed silently by the next change: an
   * entry of its own comes first (`seal` of `audit_log`, by `system/audit`),
   * naming how many entries before it carry none. After an upgrade there is
   * one such entry; any later one means MACs were stripped (docs/audit.md).
   */
  record(call: TenantCall, event: AuditEvent): void {
    const keyring = this.#keyring;
    if (!keyring) throw new Error("audit entry without a keyring: the write did not open one");
    const tail = this.sql.one<{ seq: number; mac: ArrayBuffer | null }>(`SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1`);
    if (tail !== null && tail.mac === null) {
      const unkeyed = this.sql.one<{ n: number }>(`SELECT count(*) AS n FROM audit_log WHERE mac IS NULL`)!.n;
      this.#append(keyring, { scope: call.scope, actor: AUDIT_ACTOR }, {
        action: "seal",
        resource: { type: "audit_log", id: null },
        result: true,
        info: "entries before this one carry no MAC (written before trails were keyed, or stripped): this entry's MAC covers them from here on",
        metadata: { unkeyed_entries: unkeyed, last_unkeyed: tail.seq },
      });
    }
    this.#append(keyring, call, event);
  }

  #append(keyring: Keyring, call: TenantCall, event: AuditEvent): void {
    const last = this.sql.one<{ seq: number; at: string; hash: ArrayBuffer }>(
      `SELECT seq, at, hash FROM audit_log ORDER BY seq DESC LIMIT 1`,
    );
    // Times never go backwards within a trail, so ids and `since`/`before`
    // follow the chain's order even if the clock steps back.
    const atMs = Math.max(this.clock().getTime(), last ? Date.parse(last.at) : 0);
    const fields: ChainFields = {
      seq: (last?.seq ?? 0) + 1,
      at: new Date(atMs).toISOString(),
      action: event.action,
      result: event.result ? 1 : 0,
      info: event.info ?? null,
      actor_type: call.actor.type,
      actor_id: call.actor.id,
      actor_email: call.actor.email ?? null,
      actor_ip: call.actor.ip ?? null,
      resource_type: event.resource.type,
      resource_id: event.resource.id,
      metadata: JSON.stringify(event.metadata ?? {}),
    };
    const prev = last ? new Uint8Array(last.hash) : GENESIS_HASH;
    const scope = scopeName(call.scope);
    const hash = entryHash(scope, fields, prev);
    const mac = macOf(this.#key(keyring, keyring.currentId, scope), macBytes(scope, fields.seq, hash));
    this.sql.run(
      `INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      fields.seq,
      fields.at,
      fields.action,
      fields.result,
      fields.info,
      fields.actor_type,
      fields.actor_id,
      fields.actor_email,
      fields.actor_ip,
      fields.resource_type,
      fields.resource_id,
      fields.metadata,
      prev.slice().buffer,
      hash.slice().buffer,
      mac.slice().buffer,
      keyring.currentId,
    );
    // Per action type, so a page filtered by action.type knows its total without counting.
    this.counters.bump(`audit:${event.action}`, 1);
  }

  /** The chain's length and last hash, for the stats route. */
  head(): AuditHead {
    const last = this.sql.one<{ seq: number; hash: ArrayBuffer }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
    return last ? { entries: last.seq, head: hex(new Uint8Array(last.hash)) } : { entries: 0, head: hex(GENESIS_HASH) };
  }

  /**
   * The position of the first entry with a MAC (null: none), as verify
   * reports it, for the operator to record beside the head: a later
   * `keyed_from` than the one recorded means MACs were stripped.
   */
  keyedFrom(): number | null {
    return this.sql.one<{ seq: number }>(`SELECT seq FROM audit_log WHERE mac IS NOT NULL ORDER BY seq LIMIT 1`)?.seq ?? null;
  }

  /**
   * One page, newest first unless `direction=asc`. Positions are dense (an
   * entry's seq is its predecessor's plus one, and entries are never
   * deleted) and times follow positions, so a time window is a seq range
   * found by binary search, and an unfiltered page is a rowid range: no
   * OFFSET, the same cost at any depth. A filter walks its own index within
   * that range, from whichever end is nearer the page; an action.type filter
   * over the whole trail takes its total from a counter, the others count
   * their index range.
   */
  list(ownerId: string, query: AuditQuery): Page<JsonText> {
    const empty = { items: "[]" as JsonText, count: 0, total: 0 };
    const last = this.head().entries;
    if (last === 0) return empty;
    const lo = query.since === undefined ? 1 : this.#firstAtOrAfter(query.since, last);
    const hi = query.before === undefined ? last : this.#firstAtOrAfter(query.before, last) - 1;
    if (lo > hi) return empty;
    const read = (statement: string, ...params: SqlStorageValue[]) => this.sql.all<AuditRow>(statement, ...params);

    const conditions: string[] = [];
    const params: SqlStorageValue[] = [];
    if (query.id !== undefined) {
      const seq = seqOfAuditId(query.id);
      if (seq === null) return empty;
      conditions.push("seq = ?");
      params.push(seq);
    }
    if (query.actor_email !== undefined) {
      conditions.push("actor_email = ? COLLATE NOCASE");
      params.push(query.actor_email);
    }
    if (query.action !== undefined) {
      conditions.push("action = ?");
      params.push(query.action);
    }

    let rows: AuditRow[];
    let total: number;
    if (conditions.length === 0) {
      total = hi - lo + 1;
      const offset = (query.page - 1) * query.per_page;
      if (offset >= total) return { ...empty, total };
      const n = Math.min(query.per_page, total - offset);
      const asc = query.direction === "asc";
      const [from, to] = asc ? [lo + offset, lo + offset + n - 1] : [hi - offset - n + 1, hi - offset];
      rows = read(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq BETWEEN ? AND ? ORDER BY seq ${asc ? "ASC" : "DESC"}`, from, to);
    } else {
      conditions.push("seq BETWEEN ? AND ?");
      params.push(lo, hi);
      const where = { clause: conditions.join(" AND "), params };
      const whole = lo === 1 && hi === last;
      total =
        whole && conditions.length === 2 && query.action !== undefined
          ? this.counters.get(`audit:${query.action}`)
          : (this.sql.one<{ n: number }>(`SELECT count(*) AS n FROM audit_log WHERE ${where.clause}`, ...params)?.n ?? 0);
      rows = readPage(read, {
        table: "audit_log",
        columns: AUDIT_COLUMNS,
        order: "seq",
        direction: query.direction,
        page: query.page,
        perPage: query.per_page,
        total,
        where,
      });
    }
    const records = rows.map((row) => toAuditRecord(row, ownerId));
    // An id names one entry: a lookalike whose other bits differ is not it.
    const items = query.id === undefined ? records : records.filter((r) => r.id === query.id!.toLowerCase());
    return { items: JSON.stringify(items) as JsonText, count: items.length, total: query.id === undefined ? total : items.length };
  }

  /**
   * Entries after the one with id `after` (from the start when null) as
   * JSON lines for an export, up to `limit` entries and about `maxBytes` of
   * text (at least one entry, however large: one entry is bounded by the
   * request body that made it), so that a batch always fits an RPC and the
   * export resumes past any entry; `next` resumes it, null at the end.
   */
  exportPage(ownerId: string, after: string | null, limit: number, maxBytes: number): { lines: string; next: string | null } | null {
    let from = 0;
    if (after !== null) {
      const seq = seqOfAuditId(after);
      const row = seq === null ? null : this.sql.one<AuditRow>(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq = ?`, seq);
      if (!row || toAuditRecord(row, ownerId).id !== after.toLowerCase()) return null;
      from = row.seq;
    }
    let lines = "";
    let count = 0;
    let lastRow: AuditRow | null = null;
    let exhausted = false;
    // A few rows at a time: the byte budget may end the batch after any of them.
    batch: while (count < limit) {
      const want = Math.min(EXPORT_READ, limit - count);
      const rows: AuditRow[] = this.sql.all<AuditRow>(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, lastRow?.seq ?? from, want);
      for (const row of rows) {
        const line = `${toExportLine(row, ownerId)}\n`;
        if (count > 0 && lines.length + line.length > maxBytes) break batch;
        lines += line;
        count++;
        lastRow = row;
      }
      if (rows.length < want) {
        exhausted = true;
        break;
      }
    }
    if (lastRow === null) return { lines: "", next: null };
    const more = !exhausted && this.sql.one(`SELECT 1 AS found FROM audit_log WHERE seq > ? LIMIT 1`, lastRow.seq) !== null;
    return { lines, next: more ? auditId(Date.parse(lastRow.at), lastRow.seq, new Uint8Array(lastRow.hash)) : null };
  }

  /**
   * Recomputes the whole chain: each entry must sit at the next position,
   * name its predecessor's hash, hash to its stored hash, and, from the first
   * keyed entry on, carry a MAC that matches under its KEK's key: rewriting
   * entries and their hashes without the key is found at the first entry
   * rewritten. Answers the first entry where that fails (a deleted entry is
   * reported at its position; an edited one at itself; a reordered pair at
   * the first of it). Cutting entries off the end leaves a valid shorter
   * chain: compare the head with one recorded elsewhere (the stats route
   * returns it). Throws MacKeyMissing when a MAC's KEK is not configured.
   */
  verify(scope: string, keyring: Keyring): ChainCheck {
    let expected = 1;
    let prev: Uint8Array = GENESIS_HASH;
    let keyedFrom: number | null = null;
    for (;;) {
      const rows = this.sql.all<AuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`,
        expected,
        BATCH,
      );
      for (const row of rows) {
        const stored = new Uint8Array(row.hash);
        const id = auditId(Date.parse(row.at) || 0, row.seq, stored);
        const broken = (reason: string, position = row.seq, at: string | null = id): ChainCheck => ({
          ok: false,
          entries_checked: expected - 1,
          broken_at: { position, id: at, reason },
        });
        if (row.seq !== expected) return broken("missing entry", expected, null);
        if (hex(new Uint8Array(row.prev_hash)) !== hex(prev)) return broken("previous hash does not match the entry before");
        if (hex(entryHash(scope, row, prev)) !== hex(stored)) return broken("hash does not match the entry's content");
        if (row.mac === null || row.mac_kek === null) {
          if (keyedFrom !== null) return broken("the entry has no MAC, after keyed entries");
        } else {
          keyedFrom ??= row.seq;
          if (!keyring.integrity.has(row.mac_kek)) throw new MacKeyMissing(row.mac_kek);
          const mac = macOf(this.#key(keyring, row.mac_kek, scope), macBytes(scope, row.seq, stored));
          if (hex(mac) !== hex(new Uint8Array(row.mac))) return broken("the MAC does not match: the entry or its chain was rewritten without the key");
        }
        prev = stored;
        expected++;
      }
      if (rows.length < BATCH) break;
    }
    return { ok: true, entries: expected - 1, head: hex(prev), keyed_from: keyedFrom };
  }

  /**
   * Re-keys up to `limit` entries whose MAC is under another KEK than the
   * current one (a rotation), after checking each MAC under its old key: an
   * entry whose MAC does not match is left as it is (re-keying it would
   * launder an edit) and counted in `failed`. Answers how many remain.
   */
  rekey(scope: string, keyring: Keyring, limit: number): { rekeyed: number; failed: number[]; remaining: number } {
    const current = keyring.currentId;
    const rows = this.sql.all<{ seq: number; hash: ArrayBuffer; mac: ArrayBuffer; mac_kek: string }>(
      `SELECT seq, hash, mac, mac_kek FROM audit_log WHERE mac_kek IS NOT NULL AND mac_kek != ? ORDER BY seq LIMIT ?`,
      current,
      limit,
    );
    const failed: number[] = [];
    let rekeyed = 0;
    for (const row of rows) {
      const hash = new Uint8Array(row.hash);
      let old: Uint8Array;
      try {
        old = macOf(this.#key(keyring, row.mac_kek, scope), macBytes(scope, row.seq, hash));
      } catch (error) {
        if (!(error instanceof KeyringError)) throw error;
        failed.push(row.seq);
        continue;
      }
      if (hex(old) !== hex(new Uint8Array(row.mac))) {
        failed.push(row.seq);
        continue;
      }
      const mac = macOf(this.#key(keyring, current, scope), macBytes(scope, row.seq, hash));
      rekeyed += this.sql.run(`UPDATE audit_log SET mac = ?, mac_kek = ? WHERE seq = ? AND mac_kek = ?`, mac.slice().buffer, current, row.seq, row.mac_kek) > 0 ? 1 : 0;
    }
    const remaining = this.sql.one<{ n: number }>(`SELECT count(*) AS n FROM audit_log WHERE mac_kek IS NOT NULL AND mac_kek != ?`, current)?.n ?? 0;
    return { rekeyed, failed, remaining };
  }

  /** Every KEK id an entry's MAC is keyed under. */
  kekIds(): string[] {
    return this.sql.all<{ mac_kek: string }>(`SELECT DISTINCT mac_kek FROM audit_log WHERE mac_kek IS NOT NULL`).map((r) => r.mac_kek);
  }

  #key(keyring: Keyring, kekId: string, scope: string): Uint8Array {
    const name = `${kekId}\n${scope}`;
    let key = this.#keys.get(name);
    if (!key) {
      key = macKey(keyring, kekId, AUDIT_MAC_PURPOSE, scope);
      this.#keys.set(name, key);
    }
    return key;
  }

  // The first position whose time is at or after `ms` (last + 1 when none):
  // a binary search over positions, since times never decrease along them.
  #firstAtOrAfter(ms: number, last: number): number {
    const target = new Date(ms).toISOString();
    let lo = 1;
    let hi = last + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = this.sql.one<{ at: string }>(`SELECT at FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT 1`, mid);
      if (row === null || row.at >= target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
