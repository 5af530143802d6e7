import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import { secretWrapContext, unwrapSecret, wrapSecret } from "../pki/key-wrap";
import { type Keyring, KeyringError } from "../pki/keyring";
import type { Storage } from "../storage/storage";
import type { AuditTrail } from "../tenant/audit-trail";
import { ALERT_FILTERS, type AlertEvent, EDGE_STALE_ALERT, REQUIRED_FILTERS } from "./alert-types";

/** A webhook destination as the API shows it (the SDK's `Webhooks`): never its secret. */
export type Webhook = {
  id: string;
  name: string;
  type: string;
  url: string;
  created_at: string;
  last_success: string | null;
  last_failure: string | null;
};

/** A notification policy as the API shows it (the SDK's `Policy`). */
export interface Policy {
  id: string;
  name: string;
  description: string;
  alert_type: string;
  enabled: boolean;
  mechanisms: { webhooks?: Array<{ id: string }> };
  filters: Record<string, string[]>;
  created: string;
  modified: string;
}

/** One history entry (the SDK's `History`): what was sent, when, to which destination, and how it went. */
export interface HistoryEntry {
  id: string;
  name: string;
  description: string;
  alert_type: string;
  alert_body: string;
  policy_id: string;
  mechanism: string;
  mechanism_type: "webhook";
  sent: string;
  /** Ours: `sent`, or `failed` (given up after every attempt), and the last answer. */
  outcome: { state: "sent" | "failed"; attempts: number; detail: string };
}

export type WebhookInput = { name: string; url: string; secret: string | null };
export type PolicyInput = Omit<Policy, "id" | "created" | "modified">;

export type AlertingNotFound = { readonly reason: "alert_webhook_not_found" } | { readonly reason: "alert_policy_not_found" };
export type AlertingRefusal =
  | AlertingNotFound
  | { readonly reason: "alert_webhook_test_failed"; readonly detail: string }
  | { readonly reason: "alert_webhook_in_use"; readonly detail: string }
  | { readonly reason: "alert_mechanism_unknown"; readonly pointer: string }
  | { readonly reason: "alert_filter_invalid"; readonly problem: string }
  | { readonly reason: "alert_filters_required"; readonly filters: string };

/** What a test message or an alert got from the destination: a status, or why there was none. */
export type Posted = { ok: true; status: number } | { ok: false; status: number | null; detail: string };

/** Sends one JSON body to a destination with its secret in `cf-webhook-auth`. */
export type PostWebhook = (url: string, secret: string | null, body: unknown) => Promise<Posted>;

// Attempts before a delivery is given up on, and the backoff between them (×2 each, at most an hour).
export const MAX_DELIVERY_ATTEMPTS = 8;
const RETRY_MAX_MS = 3_600_000;
// Days a delivery stays in the history (and an event while nothing refers to it).
export const HISTORY_DAYS = 30;
// Deliveries one alarm run sends at most (the rest are due at once, for the next run).
const DELIVERIES_PER_RUN = 25;

// Cloudflare's test body for a generic webhook.
export const TEST_MESSAGE = { text: "Hello World! This is a test message sent from the Custom CSR API. If you can see this, your webhook is configured properly." };

type WebhookRow = Webhook & { seq: number; secret_kek: string | null; secret_iv: ArrayBuffer | null; secret_wrapped: ArrayBuffer | null };
type PolicyRow = Omit<Policy, "enabled" | "mechanisms" | "filters"> & { enabled: number; mechanisms: string; filters: string };
const WEBHOOK_COLUMNS = "id, name, type, url, created_at, last_success, last_failure";
const POLICY_COLUMNS = "id, name, description, alert_type, enabled, mechanisms, filters, created, modified";

const toPolicy = (row: PolicyRow): Policy => ({
  id: row.id,
  name: row.name,
  description: row.description,
  alert_type: row.alert_type,
  enabled: row.enabled === 1,
  mechanisms: JSON.parse(row.mechanisms) as Policy["mechanisms"],
  filters: JSON.parse(row.filters) as Policy["filters"],
  created: row.created,
  modified: row.modified,
});

/** A destination's `type`, as Cloudflare infers it from the URL. */
function webhookType(url: string): string {
  const host = new URL(url).hostname;
  if (host === "hooks.slack.com") return "slack";
  if (host === "discord.com" || host === "discordapp.com") return "discord";
  if (host === "chat.googleapis.com") return "gchat";
  return "generic";
}

/**
 * An account's notifications (Cloudflare's alerting v3): the only writer of
 * `alert_webhooks`, `alert_policies`, `alert_events` and `alert_deliveries`.
 * Its zones hand it the events they raise (`receive`, idempotent by event
 * id); each event is matched to the enabled policies of its type whose
 * filters admit its zone, and one delivery per policy and destination is
 * written in the same transaction, so an event is delivered at most once
 * per policy and destination. The object's alarm sends what is due
 * (`run`), retrying with backoff; the outcome is the history.
 */
export class AlertingStore {
  constructor(
    private readonly storage: Storage,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly clock: Clock,
    /** Counts a delivery's outcome for the fleet's metrics, in the transaction that records it. */
    private readonly count: (name: "webhook_deliveries_sent" | "webhook_deliveries_failed") => void = () => {},
  ) {}

  // ---- webhook destinations

  /**
   * Creates a destination after its test message was answered with a 2xx
   * (as Cloudflare does; anything else refuses it, writing nothing). The
   * secret is stored only as its wrap under the current KEK.
   */
  createWebhook(call: TenantCall, input: WebhookInput, keyring: Keyring, post: PostWebhook): Promise<Result<{ id: string }, AlertingRefusal>> {
    return this.#save(call, crypto.randomUUID(), "create", input, keyring, post);
  }

  /** Replaces a destination's name, URL and secret (PUT), after a test message to the new URL was answered with a 2xx. */
  async updateWebhook(call: TenantCall, id: string, input: WebhookInput, keyring: Keyring, post: PostWebhook): Promise<Result<{ id: string }, AlertingRefusal>> {
    if (!this.getWebhook(id).ok) return fail({ reason: "alert_webhook_not_found" });
    return this.#save(call, id, "update", input, keyring, post);
  }

  // Tests the destination, wraps its secret, and writes it with its audit entry (an update only while it still exists).
  async #save(call: TenantCall, id: string, action: "create" | "update", input: WebhookInput, keyring: Keyring, post: PostWebhook): Promise<Result<{ id: string }, AlertingRefusal>> {
    const tested = await post(input.url, input.secret, TEST_MESSAGE);
    if (!tested.ok) return fail({ reason: "alert_webhook_test_failed", detail: tested.detail });
    const wrap = input.secret === null ? null : await wrapSecret(input.secret, keyring, secretWrapContext("webhook-secret", `${call.scope.kind}:${call.scope.id}`, id));
    const now = this.clock().toISOString();
    return this.storage.transaction((): Result<{ id: string }, AlertingRefusal> => {
      if (action === "update" && !this.getWebhook(id).ok) return fail({ reason: "alert_webhook_not_found" });
      this.storage.sql.run(
        `INSERT INTO alert_webhooks (id, name, url, type, secret_kek, secret_iv, secret_wrapped, created_at, last_success) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, type = excluded.type, secret_kek = excluded.secret_kek,
           secret_iv = excluded.secret_iv, secret_wrapped = excluded.secret_wrapped, last_success = excluded.last_success`,
        id,
        input.name,
        input.url,
        webhookType(input.url),
        wrap?.kekId ?? null,
        wrap?.iv ?? null,
        wrap?.wrapped ?? null,
        now,
        now,
      );
      // The URL's origin only: a Slack or Discord URL's path is itself a credential, and the trail is readable more widely.
      this.audit.record(call, { action, resource: { type: "alert_webhook", id }, result: true, metadata: { name: input.name, origin: new URL(input.url).origin, secret: input.secret !== null } });
      return ok({ id });
    });
  }

  listWebhooks(): Webhook[] {
    return this.storage.sql.all<Webhook>(`SELECT ${WEBHOOK_COLUMNS} FROM alert_webhooks ORDER BY seq`);
  }

  getWebhook(id: string): Result<Webhook, AlertingNotFound> {
    const row = this.storage.sql.one<Webhook>(`SELECT ${WEBHOOK_COLUMNS} FROM alert_webhooks WHERE id = ?`, id);
    return row ? ok(row) : fail({ reason: "alert_webhook_not_found" });
  }

  /** Deletes a destination no policy names (a policy that does is changed first: it would otherwise tell no one). */
  removeWebhook(call: TenantCall, id: string): Result<null, AlertingRefusal> {
    return this.storage.transaction((): Result<null, AlertingRefusal> => {
      if (!this.getWebhook(id).ok) return fail({ reason: "alert_webhook_not_found" });
      const users = this.#policies().filter((p) => (p.mechanisms.webhooks ?? []).some((w) => w.id === id));
      if (users.length > 0) return fail({ reason: "alert_webhook_in_use", detail: users.map((p) => p.id).join(", ") });
      this.storage.sql.run(`UPDATE alert_webhooks SET secret_iv = zeroblob(length(secret_iv)), secret_wrapped = zeroblob(length(secret_wrapped)) WHERE id = ?`, id);
      this.storage.sql.run(`DELETE FROM alert_webhooks WHERE id = ?`, id);
      this.audit.record(call, { action: "delete", resource: { type: "alert_webhook", id }, result: true, metadata: {} });
      return ok(null);
    });
  }

  /**
   * The operator's rewrap: every destination's secret not under the current
   * KEK is moved under it. One whose KEK is not configured stays (keeping
   * that KEK in use); one whose wrap does not open stays too, named in the
   * failures (its deliveries fail until the destination is sent again).
   */
  async rewrapSecrets(call: TenantCall, keyring: Keyring): Promise<{ rewrapped: number; failures: Array<{ id: string; kek_id: string; reason: "kek_not_configured" | "unwrap_failed" }>; remaining: number }> {
    const scope = `${call.scope.kind}:${call.scope.id}`;
    const rows = this.storage.sql.all<{ id: string; secret_kek: string; secret_iv: ArrayBuffer; secret_wrapped: ArrayBuffer }>(
      `SELECT id, secret_kek, secret_iv, secret_wrapped FROM alert_webhooks WHERE secret_kek IS NOT NULL AND secret_kek != ?`,
      keyring.currentId,
    );
    const failures: Array<{ id: string; kek_id: string; reason: "kek_not_configured" | "unwrap_failed" }> = [];
    let rewrapped = 0;
    for (const row of rows) {
      const context = secretWrapContext("webhook-secret", scope, row.id);
      let secret: string;
      try {
        secret = await unwrapSecret({ kekId: row.secret_kek, iv: row.secret_iv, wrapped: row.secret_wrapped }, keyring, context);
      } catch (error) {
        failures.push({ id: row.id, kek_id: row.secret_kek, reason: error instanceof KeyringError ? "kek_not_configured" : "unwrap_failed" });
        continue;
      }
      const wrap = await wrapSecret(secret, keyring, context);
      rewrapped += this.storage.sql.run(
        `UPDATE alert_webhooks SET secret_kek = ?, secret_iv = ?, secret_wrapped = ? WHERE id = ? AND secret_kek = ?`,
        wrap.kekId,
        wrap.iv,
        wrap.wrapped,
        row.id,
        row.secret_kek,
      );
    }
    const remaining = this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM alert_webhooks WHERE secret_kek IS NOT NULL AND secret_kek != ?`, keyring.currentId)!.n;
    return { rewrapped, failures, remaining };
  }

  /** Every KEK id a destination's secret is wrapped under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek: string }>(`SELECT DISTINCT secret_kek AS kek FROM alert_webhooks WHERE secret_kek IS NOT NULL`).map((r) => r.kek);
  }

  // ---- policies

  createPolicy(call: TenantCall, input: PolicyInput): Result<{ id: string }, AlertingRefusal> {
    return this.storage.transaction((): Result<{ id: string }, AlertingRefusal> => {
      const unknown = this.#unknownWebhook(input.mechanisms);
      if (unknown !== null) return fail(unknown);
      const id = crypto.randomUUID();
      const now = this.clock().toISOString();
      this.storage.sql.run(
        `INSERT INTO alert_policies (id, name, description, alert_type, enabled, mechanisms, filters, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        id,
        input.name,
        input.description,
        input.alert_type,
        input.enabled ? 1 : 0,
        JSON.stringify(input.mechanisms),
        JSON.stringify(input.filters),
        now,
        now,
      );
      this.audit.record(call, { action: "create", resource: { type: "alert_policy", id }, result: true, metadata: { ...input } });
      return ok({ id });
    });
  }

  /** PUT: the members sent replace the policy's; the rest stay. */
  updatePolicy(call: TenantCall, id: string, edit: Partial<PolicyInput>): Result<{ id: string }, AlertingRefusal> {
    return this.storage.transaction((): Result<{ id: string }, AlertingRefusal> => {
      const current = this.getPolicy(id);
      if (!current.ok) return current;
      const next = { ...current.value, ...edit };
      // The policy as it would be, checked whole: a PUT of some members cannot leave it with filters its type does not take.
      const allowed = ALERT_FILTERS.get(next.alert_type) ?? [];
      const foreign = Object.keys(next.filters).find((key) => !allowed.includes(key));
      if (foreign !== undefined) return fail({ reason: "alert_filter_invalid", problem: `${foreign} is not a filter of this alert type (${allowed.join(", ")})` });
      const missing = (REQUIRED_FILTERS.get(next.alert_type) ?? []).filter((key) => (next.filters[key] ?? []).length === 0);
      if (missing.length > 0) return fail({ reason: "alert_filters_required", filters: missing.join(", ") });
      const unknown = this.#unknownWebhook(next.mechanisms);
      if (unknown !== null) return fail(unknown);
      this.storage.sql.run(
        `UPDATE alert_policies SET name = ?, description = ?, alert_type = ?, enabled = ?, mechanisms = ?, filters = ?, modified = ? WHERE id = ?`,
        next.name,
        next.description,
        next.alert_type,
        next.enabled ? 1 : 0,
        JSON.stringify(next.mechanisms),
        JSON.stringify(next.filters),
        this.clock().toISOString(),
        id,
      );
      this.audit.record(call, { action: "update", resource: { type: "alert_policy", id }, result: true, metadata: { ...edit } });
      return ok({ id });
    });
  }

  listPolicies(): Policy[] {
    return this.#policies();
  }

  getPolicy(id: string): Result<Policy, AlertingNotFound> {
    const row = this.storage.sql.one<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM alert_policies WHERE id = ?`, id);
    return row ? ok(toPolicy(row)) : fail({ reason: "alert_policy_not_found" });
  }

  removePolicy(call: TenantCall, id: string): Result<null, AlertingNotFound> {
    return this.storage.transaction((): Result<null, AlertingNotFound> => {
      if (this.storage.sql.run(`DELETE FROM alert_policies WHERE id = ?`, id) === 0) return fail({ reason: "alert_policy_not_found" });
      // What it had not sent yet is not sent: the policy is gone.
      this.storage.sql.run(`DELETE FROM alert_deliveries WHERE policy_id = ? AND state = 'pending'`, id);
      this.storage.sql.run(`DELETE FROM alert_edge_episodes WHERE policy_id = ?`, id);
      this.audit.record(call, { action: "delete", resource: { type: "alert_policy", id }, result: true, metadata: {} });
      return ok(null);
    });
  }

  // ---- events, deliveries, history

  /**
   * Takes events a zone raised: each new one (by id; a second hand-over is a
   * no-op) gets a pending delivery per matching policy and destination, in
   * one transaction. Answers how many deliveries were made.
   */
  receive(events: readonly AlertEvent[]): number {
    return this.storage.transaction(() => {
      let made = 0;
      const now = this.clock().toISOString();
      this.#prune();
      const policies = this.#policies().filter((p) => p.enabled);
      for (const event of events) {
        const inserted = this.storage.sql.run(
          `INSERT INTO alert_events (id, alert_type, zone_id, body, raised_at, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
          event.id,
          event.alert_type,
          event.zone_id,
          JSON.stringify(event),
          event.raised_at,
          now,
        );
        if (inserted === 0) continue;
        for (const policy of policies) {
          // An edge's staleness is the watching policy's own (checkEdges); events arrive here from scopes.
          if (policy.alert_type !== event.alert_type || policy.alert_type === EDGE_STALE_ALERT) continue;
          const zones = policy.filters.zones;
          if (zones !== undefined && zones.length > 0 && !zones.includes(event.zone_id)) continue;
          for (const { id: webhookId } of policy.mechanisms.webhooks ?? []) {
            made += this.storage.sql.run(
              `INSERT INTO alert_deliveries (event_id, policy_id, webhook_id, state, next_at) VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING`,
              event.id,
              policy.id,
              webhookId,
              now,
            );
          }
        }
      }
      return made;
    });
  }

  /** Whether any enabled policy watches edges (the account's alarm then checks them). */
  watchesEdges(): boolean {
    return this.#policies().some((p) => p.enabled && p.alert_type === EDGE_STALE_ALERT);
  }

  /**
   * Checks the edges the account's enabled custom_csr_edge_stale policies
   * name against when each last synced: an edge past the policy's
   * max_age_minutes (default 60; one never synced counts from the policy's
   * creation) is told once to that policy's destinations, until it syncs
   * again. Answers when to check next (null: no such policy).
   */
  checkEdges(call: TenantCall, syncs: ReadonlyArray<{ id: string; last_sync_at: string | null }>): number | null {
    const policies = this.#policies().filter((p) => p.enabled && p.alert_type === EDGE_STALE_ALERT);
    if (policies.length === 0) return null;
    const now = this.clock();
    const last = new Map(syncs.map((e) => [e.id, e.last_sync_at]));
    let next = Number.POSITIVE_INFINITY;
    this.storage.transaction(() => {
      for (const policy of policies) {
        const maxAgeMs = Number(policy.filters.max_age_minutes?.[0] ?? "60") * 60_000;
        next = Math.min(next, now.getTime() + Math.max(60_000, maxAgeMs / 4));
        for (const edge of policy.filters.edges ?? []) {
          const seen = last.get(edge) ?? null;
          const since = Date.parse(seen ?? policy.created);
          const open = this.storage.sql.one(`SELECT 1 AS open FROM alert_edge_episodes WHERE policy_id = ? AND edge_id = ?`, policy.id, edge) !== null;
          if (now.getTime() - since <= maxAgeMs) {
            if (open) this.storage.sql.run(`DELETE FROM alert_edge_episodes WHERE policy_id = ? AND edge_id = ?`, policy.id, edge);
            next = Math.min(next, since + maxAgeMs + 1_000);
            continue;
          }
          if (open) continue;
          this.storage.sql.run(`INSERT INTO alert_edge_episodes (policy_id, edge_id, since) VALUES (?, ?, ?)`, policy.id, edge, now.toISOString());
          const minutes = Math.floor((now.getTime() - since) / 60_000);
          const event: AlertEvent = {
            id: crypto.randomUUID(),
            alert_type: EDGE_STALE_ALERT,
            zone_id: "",
            raised_at: now.toISOString(),
            text: seen === null ? `Edge ${edge} has never synced (watched for ${minutes} minutes).` : `Edge ${edge} has not synced for ${minutes} minutes (last at ${seen}).`,
            data: { metadata: { event: { type: "edge.stale", created_at: now.toISOString() } }, edge_id: edge, last_sync_at: seen, max_age_minutes: maxAgeMs / 60_000 },
          };
          this.storage.sql.run(
            `INSERT INTO alert_events (id, alert_type, zone_id, body, raised_at, received_at) VALUES (?, ?, '', ?, ?, ?)`,
            event.id,
            event.alert_type,
            JSON.stringify(event),
            event.raised_at,
            event.raised_at,
          );
          for (const { id: webhookId } of policy.mechanisms.webhooks ?? []) {
            this.storage.sql.run(`INSERT INTO alert_deliveries (event_id, policy_id, webhook_id, state, next_at) VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING`, event.id, policy.id, webhookId, event.raised_at);
          }
          this.audit.record(call, { action: "alert", resource: { type: "edge", id: edge }, result: true, metadata: { event_id: event.id, alert_type: event.alert_type, event_type: "edge.stale", text: event.text, policy_id: policy.id } });
        }
      }
    });
    return next === Number.POSITIVE_INFINITY ? null : next;
  }

  /** When the alarm should next send (a pending delivery's time), or null. */
  nextWake(): number | null {
    const at = this.storage.sql.one<{ at: string | null }>(`SELECT min(next_at) AS at FROM alert_deliveries WHERE state = 'pending'`)?.at ?? null;
    return at === null ? null : Date.parse(at);
  }

  /**
   * Sends the deliveries that are due: the payload Cloudflare's generic
   * webhooks carry, the destination's secret in `cf-webhook-auth`. A 2xx is
   * sent; anything else is tried again after a backoff, and given up on
   * after MAX_DELIVERY_ATTEMPTS. Each outcome is written (with its audit
   * entry) as soon as it is known, so a restart resends only what had not
   * been answered.
   */
  async run(call: TenantCall, accountId: string, keyring: Keyring, post: PostWebhook, retryBaseMs: number): Promise<void> {
    const due = this.storage.sql.all<{ seq: number; event_id: string; policy_id: string; webhook_id: string; attempts: number }>(
      `SELECT seq, event_id, policy_id, webhook_id, attempts FROM alert_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?`,
      this.clock().toISOString(),
      DELIVERIES_PER_RUN,
    );
    for (const delivery of due) {
      const event = this.storage.sql.one<{ body: string }>(`SELECT body FROM alert_events WHERE id = ?`, delivery.event_id);
      const policy = this.getPolicy(delivery.policy_id);
      const webhook = this.storage.sql.one<WebhookRow>(`SELECT seq, ${WEBHOOK_COLUMNS}, secret_kek, secret_iv, secret_wrapped FROM alert_webhooks WHERE id = ?`, delivery.webhook_id);
      if (!event || !policy.ok || !webhook) {
        this.#conclude(call, delivery, "failed", "the policy or its destination was deleted");
        continue;
      }
      if (!policy.value.enabled || !(policy.value.mechanisms.webhooks ?? []).some((w) => w.id === webhook.id)) {
        this.#conclude(call, delivery, "failed", "the policy was disabled, or the destination removed from it, before this was sent");
        continue;
      }
      let secret: string | null = null;
      if (webhook.secret_kek !== null) {
        try {
          secret = await unwrapSecret(
            { kekId: webhook.secret_kek, iv: webhook.secret_iv!, wrapped: webhook.secret_wrapped! },
            keyring,
            secretWrapContext("webhook-secret", `${call.scope.kind}:${call.scope.id}`, webhook.id),
          );
        } catch (error) {
          const detail = error instanceof KeyringError ? `its secret is wrapped under ${webhook.secret_kek}, which is not configured` : "its secret does not unwrap";
          this.#retry(call, delivery, webhook.id, detail, retryBaseMs);
          continue;
        }
      }
      const alert = JSON.parse(event.body) as AlertEvent;
      const body = {
        name: policy.value.name,
        text: alert.text,
        data: alert.data,
        ts: Math.floor(Date.parse(alert.raised_at) / 1000),
        account_id: accountId,
        policy_id: policy.value.id,
        policy_name: policy.value.name,
        alert_type: alert.alert_type,
        alert_correlation_id: alert.id,
        alert_event: "ALERT_STATE_EVENT_START",
      };
      const posted = await post(webhook.url, secret, body);
      if (posted.ok) this.#conclude(call, delivery, "sent", `HTTP ${posted.status}`, webhook.id);
      else this.#retry(call, delivery, webhook.id, posted.detail, retryBaseMs);
    }
  }

  /** The history, newest first: deliveries sent or given up on, `since` and `before` bounding `sent` (RFC 3339). */
  history(query: { page: number; per_page: number; since?: string; before?: string }): { items: HistoryEntry[]; total: number } {
    const clauses = ["d.state != 'pending'"];
    const params: string[] = [];
    if (query.since !== undefined) {
      clauses.push("d.sent >= ?");
      params.push(query.since);
    }
    if (query.before !== undefined) {
      clauses.push("d.sent < ?");
      params.push(query.before);
    }
    const where = clauses.join(" AND ");
    const total = this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM alert_deliveries d WHERE ${where}`, ...params)!.n;
    const rows = this.storage.sql.all<{ seq: number; policy_id: string; webhook_id: string; state: "sent" | "failed"; attempts: number; outcome: string; sent: string; body: string; url: string | null; name: string | null }>(
      `SELECT d.seq, d.policy_id, d.webhook_id, d.state, d.attempts, d.outcome, d.sent, e.body, w.url, p.name
         FROM alert_deliveries d JOIN alert_events e ON e.id = d.event_id LEFT JOIN alert_webhooks w ON w.id = d.webhook_id LEFT JOIN alert_policies p ON p.id = d.policy_id
         WHERE ${where} ORDER BY d.sent DESC, d.seq DESC LIMIT ? OFFSET ?`,
      ...params,
      query.per_page,
      (query.page - 1) * query.per_page,
    );
    const items = rows.map((row): HistoryEntry => {
      const event = JSON.parse(row.body) as AlertEvent;
      return {
        id: `${row.seq}`,
        name: row.name ?? "",
        description: event.text,
        alert_type: event.alert_type,
        alert_body: JSON.stringify(event.data),
        policy_id: row.policy_id,
        mechanism: row.url ?? row.webhook_id,
        mechanism_type: "webhook",
        sent: row.sent,
        outcome: { state: row.state, attempts: row.attempts, detail: row.outcome },
      };
    });
    return { items, total };
  }

  // History is kept HISTORY_DAYS (Cloudflare keeps 30 to 90): older deliveries go, then events nothing refers to.
  #prune(): void {
    const cutoff = new Date(this.clock().getTime() - HISTORY_DAYS * 86_400_000).toISOString();
    this.storage.sql.run(`DELETE FROM alert_deliveries WHERE state != 'pending' AND sent < ?`, cutoff);
    this.storage.sql.run(`DELETE FROM alert_events WHERE received_at < ? AND id NOT IN (SELECT event_id FROM alert_deliveries)`, cutoff);
  }

  #policies(): Policy[] {
    return this.storage.sql.all<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM alert_policies ORDER BY seq`).map(toPolicy);
  }

  #unknownWebhook(mechanisms: Policy["mechanisms"]): AlertingRefusal | null {
    const ids = (mechanisms.webhooks ?? []).map((w) => w.id);
    const index = ids.findIndex((id) => !this.getWebhook(id).ok);
    return index < 0 ? null : { reason: "alert_mechanism_unknown", pointer: `/mechanisms/webhooks/${index}/id` };
  }

  // A delivery's last word: sent, or given up on; recorded with its audit entry, and on the destination.
  #conclude(call: TenantCall, delivery: { seq: number; event_id: string; policy_id: string; webhook_id: string; attempts: number }, state: "sent" | "failed", detail: string, webhookId?: string): void {
    const now = this.clock().toISOString();
    this.storage.transaction(() => {
      this.storage.sql.run(`UPDATE alert_deliveries SET state = ?, attempts = ?, outcome = ?, sent = ?, next_at = NULL WHERE seq = ?`, state, delivery.attempts + 1, detail, now, delivery.seq);
      this.count(state === "sent" ? "webhook_deliveries_sent" : "webhook_deliveries_failed");
      if (webhookId !== undefined) this.storage.sql.run(`UPDATE alert_webhooks SET ${state === "sent" ? "last_success" : "last_failure"} = ? WHERE id = ?`, now, webhookId);
      this.audit.record(call, {
        action: "notify",
        resource: { type: "alert_policy", id: delivery.policy_id },
        result: state === "sent",
        ...(state === "sent" ? {} : { info: detail }),
        metadata: { event_id: delivery.event_id, webhook_id: delivery.webhook_id, attempts: delivery.attempts + 1, outcome: detail },
      });
    });
  }

  #retry(call: TenantCall, delivery: { seq: number; event_id: string; policy_id: string; webhook_id: string; attempts: number }, webhookId: string, detail: string, baseMs: number): void {
    const attempts = delivery.attempts + 1;
    if (attempts >= MAX_DELIVERY_ATTEMPTS) {
      this.#conclude(call, delivery, "failed", detail, webhookId);
      return;
    }
    const wait = Math.min(baseMs * 2 ** (attempts - 1), RETRY_MAX_MS);
    const now = this.clock();
    this.storage.sql.run(
      `UPDATE alert_deliveries SET attempts = ?, outcome = ?, next_at = ? WHERE seq = ?`,
      attempts,
      detail,
      new Date(now.getTime() + wait).toISOString(),
      delivery.seq,
    );
    this.storage.sql.run(`UPDATE alert_webhooks SET last_failure = ? WHERE id = ?`, now.toISOString(), webhookId);
  }
}
