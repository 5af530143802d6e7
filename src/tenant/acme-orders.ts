import {
  type AcmeAccountRef,
  type AcmeAuthorization,
  type AcmeProblem,
  type AcmeRefusal,
  type AcmeSession,
  authorizationProblem,
  challengeProof,
  downloadCertificate,
  finalize,
  getAuthorization,
  getOrder,
  isRetryable,
  newOrder,
  openDirectory,
  respondToChallenge,
  selectChallenge,
} from "../acme/index";
import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import { buildCsr } from "../pki/csr-builder";
import { checkCertificate } from "../pki/certificate-check";
import { fromPemBlocks } from "../pki/pem";
import type { KeyRefusal, Keyring } from "../pki/keyring";
import type { Storage } from "../storage/storage";
import type { ValidationRecord } from "../hostnames/hostname-records";
import { type AcmeConfig, renewalDue } from "./acme-config";
import type { AcmeAccounts } from "./acme-accounts";
import type { AuditTrail } from "./audit-trail";
import type { CsrStore } from "./csr-store";
import type { HostnameKeys } from "./hostname-keys";
import type { HostnameStore, ManagedHostname } from "./hostname-store";
import type { HostnameTwins } from "./hostname-twins";
import type { KeyType } from "../pki/csr-input";
import { type AlertEvent, hostnameEvent } from "../alerting/alert-types";

type OrderRow = {
  custom_hostname_id: string;
  /** The key (and certificate) this order is for: the hostname's P-256 one, or its RSA twin, ordered once the P-256 one is in. */
  key_type: KeyType;
  ca: string;
  purpose: "issue" | "renew";
  state: "new" | "authorizing" | "finalizing" | "downloading";
  order_url: string | null;
  finalize_url: string | null;
  authorizations: string;
  responded: string;
  csr: string | null;
  finalized: number;
  attempts: number;
  failures: number;
  generation: number;
};

/** What the machinery asks of the hostname registry: publish or withdraw an http-01 key authorization. */
export interface ChallengePublisher {
  publish(hostname: string, hostnameId: string, token: string, keyAuthorization: string, expires: string): Promise<void>;
  withdraw(hostname: string, hostnameId: string): Promise<void>;
}

const ORDER_COLUMNS = "custom_hostname_id, key_type, ca, purpose, state, order_url, finalize_url, authorizations, responded, csr, finalized, attempts, failures, generation";
// A new order after one failed, at most this many times before the certificate is given up on.
export const MAX_ATTEMPTS = 12;
// An order in progress is polled every few seconds; a record that is not published yet, less often.
const POLL_MS = 2_000;
const DNS_WAIT_MS = 5_000;
// The longest a CA's Retry-After is honoured: for polling an order, and for a rate limit.
const MAX_POLL_WAIT_MS = 3_600_000;
const MAX_RETRY_AFTER_MS = 86_400_000;
// A renewal given up on (its attempts spent, or a refusal that cannot pass) is tried again this much later.
const RENEWAL_RETRY_MS = 86_400_000;
// A certificate whose notBefore is this far ahead of our clock is still taken (the CA's clock, or ours, may be off).
const CLOCK_SKEW_MS = 5 * 60_000;
// The time one alarm run spends on orders before it leaves the rest to the next run (which comes at once).
const RUN_BUDGET_MS = 30_000;
// Steps (CA round trips) one order takes per alarm run, so one hostname cannot hold the object.
const STEPS_PER_RUN = 12;

/** How long to wait before the next order after `attempts` failed ones: `base`·1.5ⁿ, at most 4 hours. */
export function backoffMs(attempts: number, baseMs: number): number {
  return Math.min(baseMs * 1.5 ** Math.max(0, attempts - 1), 4 * 3_600_000);
}

// What a tenant is shown of a refusal: the CA's own problem documents as they are; for the rest (the CA
// unreachable, an answer that is not ACME), a fixed text, since the details name the operator's CA (its
// URL, its network), which ACME_DIRECTORIES keeps secret: they go to the log.
const describe = (problem: AcmeProblem | AcmeRefusal): string => {
  if ("reason" in problem) {
    if (problem.reason === "acme_problem") return `${problem.detail} (${problem.type})`;
    if (problem.reason === "acme_no_challenge") return `the CA offers no ${problem.wanted} challenge (only ${problem.offered.join(", ") || "none"})`;
    if (problem.reason === "acme_unreachable") return "the certificate authority could not be reached, or did not answer in time";
    return "the certificate authority's answer could not be used";
  }
  return `${problem.detail} (${problem.type})`;
};

/** Whether an order is for the hostname's own (P-256) certificate, which its status follows; an RSA twin's order never changes the status. */
const leads = (row: OrderRow): boolean => row.key_type === "p256v1";

/** What a refusal of an order is shown as: the RSA twin's named as such (the hostname's own certificate is in force meanwhile). */
const said = (row: OrderRow, message: string): string => (leads(row) ? message : `RSA-2048 certificate: ${message}`);

type Step = { kind: "again" } | { kind: "wait"; ms: number } | { kind: "done" };

// A step that found its order replaced meanwhile (an edit restarted it): it stops, having written nothing.
const STALE: Step = { kind: "done" };

/** What one alarm run works with: its actor (the audit entries'), the scope's name, the keys and the configuration. */
interface Run {
  readonly call: TenantCall;
  readonly scope: string;
  readonly keyring: Keyring;
  readonly config: AcmeConfig;
  readonly retryBaseMs: number;
  /** CAs that did not answer in this run: their other orders wait for the next. */
  readonly unreachable: Set<string>;
}

/**
 * Managed certificates by ACME (RFC 8555), driven by the object's alarm: one
 * order in progress per custom hostname (the only writer of `acme_orders`),
 * a state machine kept in SQLite. Every step is one exchange with the CA and
 * its outcome stored before the next, so a restart at any moment resumes
 * where it was: an order is placed once and then only polled, a finalize is
 * sent once (and only when the order is `ready`), and a certificate is
 * installed in the transaction that deletes its order, so an issued one is
 * never lost nor installed twice. A failed order is followed by a new one
 * after a backoff, at most MAX_ATTEMPTS times. Renewals are ordered when a
 * certificate's `renew_at` passes; the one in force serves until its
 * successor is installed.
 */
export class AcmeOrders {
  readonly #sessions = new Map<string, AcmeSession>();

  constructor(
    private readonly storage: Storage,
    private readonly hostnames: Pick<HostnameStore, "managed" | "setProgress" | "installManaged" | "dueForRenewal" | "nextRenewal" | "deferRenewal">,
    private readonly keys: Pick<HostnameKeys, "pending" | "current" | "dropPending" | "promote" | "removeType">,
    private readonly twins: Pick<HostnameTwins, "install" | "remove">,
    private readonly accounts: Pick<AcmeAccounts, "account">,
    private readonly csrs: Pick<CsrStore, "pem" | "names">,
    private readonly challenges: ChallengePublisher,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly clock: Clock,
    /** Raises a notification event (src/tenant/alert-outbox.ts), in the transaction of its cause. */
    private readonly alert: (call: TenantCall, event: AlertEvent, resource: { type: "custom_hostname_certificate"; id: string }) => void = () => {},
    /** Counts an outcome for the fleet's metrics (src/metrics/fleet-metrics.ts FLEET_COUNTERS), in the transaction of the step. */
    private readonly count: (name: "acme_orders_placed" | "acme_orders_failed" | "acme_certificates_issued" | "acme_renewals_attempted" | "acme_renewals_failed") => void = () => {},
  ) {}

  /**
   * Starts the order of a hostname's certificate, or starts it over: an
   * order in progress is replaced by a new one for what the hostname asks
   * now (its CA, its names, its kind), at once (Cloudflare's "PATCH with the
   * same ssl re-triggers validation"). The generation goes up, so a step of
   * the old order still waiting on the CA writes nothing when it returns.
   * Call inside the transaction that recorded the hostname.
   */
  enqueue(hostnameId: string, ca: string, purpose: "issue" | "renew"): void {
    const now = this.clock().toISOString();
    this.storage.sql.run(
      `INSERT INTO acme_orders (custom_hostname_id, key_type, ca, purpose, state, next_at, created_at, updated_at) VALUES (?, 'p256v1', ?, ?, 'new', ?, ?, ?)
       ON CONFLICT (custom_hostname_id) DO UPDATE SET state = 'new', key_type = 'p256v1', ca = excluded.ca, purpose = excluded.purpose, order_url = NULL, finalize_url = NULL,
         authorizations = '[]', responded = '[]', csr = NULL, finalized = 0, attempts = 0, failures = 0, generation = acme_orders.generation + 1,
         next_at = excluded.next_at, updated_at = excluded.updated_at`,
      hostnameId,
      ca,
      purpose,
      now,
      now,
      now,
    );
  }

  /** Drops a hostname's order (the hostname was deleted, or its certificate is no longer managed). */
  cancel(hostnameId: string): boolean {
    return this.storage.sql.run(`DELETE FROM acme_orders WHERE custom_hostname_id = ?`, hostnameId) > 0;
  }

  /** When the alarm should next run for ACME work (an order due, or a renewal), or null. */
  nextWake(): number | null {
    const order = this.storage.sql.one<{ at: string | null }>(`SELECT min(next_at) AS at FROM acme_orders`)?.at ?? null;
    const renewal = this.hostnames.nextRenewal();
    const times = [order, renewal].filter((t): t is string => t !== null).map((t) => Date.parse(t));
    return times.length === 0 ? null : Math.min(...times);
  }

  /**
   * Says why no order can progress (the deployment's ACME configuration or
   * its keys cannot be used) on the hostnames waiting for one, as Cloudflare
   * shows a validation error; the operator's fix lets them go on.
   */
  blocked(message: string): void {
    this.storage.transaction(() => {
      for (const { custom_hostname_id } of this.storage.sql.all<{ custom_hostname_id: string }>(`SELECT custom_hostname_id FROM acme_orders ORDER BY next_at LIMIT 100`)) {
        this.hostnames.setProgress(custom_hostname_id, { validation_errors: [message] });
      }
    });
  }

  /**
   * One alarm run: orders the renewals that are due, then takes every order
   * whose time has come a few steps further, for at most RUN_BUDGET_MS (the
   * rest is due at once, for the next run). A failure to reach the CA or to
   * open the keys is recorded on the order and retried later, never thrown;
   * after a CA did not answer, its other orders wait for the next run.
   */
  async run(call: TenantCall, scope: string, keyring: Keyring, config: AcmeConfig, retryBaseMs: number): Promise<void> {
    const now = this.clock();
    for (const id of this.hostnames.dueForRenewal(now.toISOString(), 100)) {
      const hostname = this.hostnames.managed(id);
      const ca = hostname?.ca ?? config.defaultCa;
      if (hostname && ca) this.storage.transaction(() => this.enqueue(id, ca, "renew"));
    }
    const due = this.storage.sql.all<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM acme_orders WHERE next_at <= ? ORDER BY next_at LIMIT 20`, now.toISOString());
    const run: Run = { call, scope, keyring, config, retryBaseMs, unreachable: new Set() };
    const deadline = now.getTime() + RUN_BUDGET_MS;
    for (const order of due) {
      if (this.clock().getTime() > deadline) return;
      if (run.unreachable.has(order.ca)) {
        this.#schedule(order, POLL_MS * 5);
        continue;
      }
      await this.#advance(run, order);
    }
  }

  // Whether the order `row` was read from is still the hostname's order (no edit restarted it since).
  #live(row: OrderRow): boolean {
    return this.storage.sql.one(`SELECT 1 AS live FROM acme_orders WHERE custom_hostname_id = ? AND generation = ?`, row.custom_hostname_id, row.generation) !== null;
  }

  // Writes `fn` in one transaction, only while the order is still `row`'s: false (nothing written) when an edit replaced it.
  #guard(row: OrderRow, fn: () => void): boolean {
    return this.storage.transaction(() => {
      if (!this.#live(row)) return false;
      fn();
      return true;
    });
  }

  async #advance(run: Run, first: OrderRow): Promise<void> {
    const { config, retryBaseMs } = run;
    let row: OrderRow | null = first;
    for (let steps = 0; row !== null && steps < STEPS_PER_RUN; steps++) {
      const hostname = this.hostnames.managed(row.custom_hostname_id);
      if (!hostname) {
        const stale = row;
        this.#guard(stale, () => this.cancel(stale.custom_hostname_id));
        return;
      }
      const ca = config.cas.get(row.ca);
      if (!ca) {
        this.#fail(run, row, hostname, retryBaseMs, `the certificate authority ${row.ca} is no longer configured (ACME_DIRECTORIES)`, false);
        return;
      }
      let step: Step;
      try {
        step = await this.#step(run, row, hostname, ca);
      } catch (error) {
        console.error(JSON.stringify({ level: "error", event: "acme_step_failed", custom_hostname_id: row.custom_hostname_id, message: error instanceof Error ? error.message : String(error) }));
        step = this.#fail(run, row, hostname, retryBaseMs, "an internal error stopped the order; it is tried again", true);
      }
      if (step.kind === "done") {
        // Given up on, or installed: no challenge of this hostname stays published.
        if (hostname.method === "http" && this.storage.sql.one(`SELECT 1 AS open FROM acme_orders WHERE custom_hostname_id = ?`, row.custom_hostname_id) === null) {
          await this.challenges.withdraw(hostname.hostname, hostname.id);
        }
        return;
      }
      if (step.kind === "wait") {
        this.#schedule(row, step.ms);
        return;
      }
      row = this.storage.sql.one<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM acme_orders WHERE custom_hostname_id = ?`, row.custom_hostname_id);
    }
    if (row) this.#schedule(row, 0);
  }

  async #step(run: Run, row: OrderRow, hostname: ManagedHostname, ca: NonNullable<ReturnType<AcmeConfig["cas"]["get"]>>): Promise<Step> {
    const session = await this.#session(ca.name, ca.directory);
    if (!session.ok) return this.#refused(run, row, hostname, session);
    const account = await this.accounts.account(session.value, ca, run.scope, run.keyring);
    if (!account.ok) return this.#refused(run, row, hostname, account);
    const acct = account.value;
    // The CA answers again: the backoff for it being unreachable starts over, and what was said of it goes.
    if (row.failures > 0) {
      const live = this.#guard(row, () => {
        this.storage.sql.run(`UPDATE acme_orders SET failures = 0 WHERE custom_hostname_id = ?`, row.custom_hostname_id);
        this.hostnames.setProgress(row.custom_hostname_id, { validation_errors: [] });
      });
      if (!live) return STALE;
    }
    switch (row.state) {
      case "new":
        return this.#place(run, session.value, acct, row, hostname);
      case "authorizing":
        return this.#authorize(run, session.value, acct, row, hostname);
      case "finalizing":
        return this.#finalize(run, session.value, acct, row, hostname);
      case "downloading":
        return this.#download(run, session.value, acct, row, hostname);
    }
  }

  // An audit entry for one step of a hostname's order.
  #record(run: Run, row: OrderRow, hostname: ManagedHostname, action: "order" | "validate" | "finalize", metadata: Record<string, unknown>, failure?: string): void {
    this.audit.record(run.call, {
      action,
      resource: { type: "custom_hostname_certificate", id: hostname.id },
      result: failure === undefined,
      ...(failure === undefined ? {} : { info: failure }),
      metadata: { hostname: hostname.hostname, ca: row.ca, ...(leads(row) ? {} : { key_type: row.key_type }), ...metadata },
    });
  }

  // The names an order is for: a managed certificate's hostname (and its wildcard), or every name of the custom CSR it is finalized with.
  #names(hostname: ManagedHostname): string[] | null {
    if (hostname.csr_id !== null) return this.csrs.names(hostname.csr_id);
    return hostname.wildcard && !hostname.hostname.startsWith("*.") ? [hostname.hostname, `*.${hostname.hostname}`] : [hostname.hostname];
  }

  async #place(run: Run, session: AcmeSession, account: AcmeAccountRef, row: OrderRow, hostname: ManagedHostname): Promise<Step> {
    const identifiers = this.#names(hostname);
    if (identifiers === null) return this.#fail(run, row, hostname, 0, "the custom CSR no longer exists", false);
    // An earlier order's http-01 answer is not left published beside this one's.
    if (hostname.method === "http" && (row.attempts > 0 || row.generation > 0)) await this.challenges.withdraw(hostname.hostname, hostname.id);
    const order = await newOrder(session, account, { identifiers });
    if (!order.ok) return this.#refused(run, row, hostname, order);
    const live = this.#guard(row, () => {
      this.storage.sql.run(
        `UPDATE acme_orders SET state = 'authorizing', order_url = ?, finalize_url = ?, authorizations = ?, responded = '[]', csr = NULL, finalized = 0, updated_at = ? WHERE custom_hostname_id = ?`,
        order.value.url,
        order.value.finalize,
        JSON.stringify(order.value.authorizations),
        this.clock().toISOString(),
        row.custom_hostname_id,
      );
      if (row.purpose === "issue" && leads(row)) this.hostnames.setProgress(row.custom_hostname_id, { ssl_status: "pending_validation" });
      this.count("acme_orders_placed");
      if (row.purpose === "renew") this.count("acme_renewals_attempted");
      this.#record(run, row, hostname, "order", { purpose: row.purpose, identifiers, order_url: order.value.url, attempt: row.attempts + 1 });
    });
    return live ? { kind: "again" } : STALE;
  }

  async #authorize(run: Run, session: AcmeSession, account: AcmeAccountRef, row: OrderRow, hostname: ManagedHostname): Promise<Step> {
    const { config } = run;
    const responded = new Set(JSON.parse(row.responded) as string[]);
    const records: ValidationRecord[] = [];
    let waiting = false;
    let retryAfter = 0;
    for (const url of JSON.parse(row.authorizations) as string[]) {
      const got = await getAuthorization(session, account, url);
      if (!got.ok) return this.#refused(run, row, hostname, got);
      const authz: AcmeAuthorization = got.value;
      if (authz.status === "valid") continue;
      if (authz.status !== "pending") {
        const problem = authorizationProblem(authz);
        await this.challenges.withdraw(hostname.hostname, hostname.id);
        return this.#fail(run, row, hostname, 0, problem ? describe(problem) : `the authorization of ${authz.identifier.value} is ${authz.status}`, true, "validation");
      }
      const wanted = hostname.method === "http" ? "http-01" : "dns-01";
      const challenge = selectChallenge(authz, wanted);
      if (!challenge.ok) return this.#fail(run, row, hostname, 0, describe(challenge), false, "validation");
      const proof = await challengeProof(account.key, authz, challenge.value);
      if (!proof) return this.#fail(run, row, hostname, 0, "the CA's challenge has no token", false, "validation");
      if (proof.type === "http-01") {
        records.push({ status: "pending", http_url: proof.url, http_body: proof.body });
        if (!responded.has(challenge.value.url)) {
          await this.challenges.publish(hostname.hostname, hostname.id, proof.token, proof.keyAuthorization, authz.expires ?? new Date(this.clock().getTime() + 7 * 86_400_000).toISOString());
        }
      } else {
        records.push({ status: "pending", txt_name: proof.name, txt_value: proof.value });
        // The CA is asked only once the record can be seen (re-checked on a schedule, and at once on PATCH).
        if (!responded.has(challenge.value.url) && config.dnsResolver !== null && !(await this.#published(config.dnsResolver, proof.name, proof.value))) {
          waiting = true;
          continue;
        }
      }
      if (!responded.has(challenge.value.url)) {
        const answered = await respondToChallenge(session, account, challenge.value.url);
        if (!answered.ok) return this.#refused(run, row, hostname, answered);
        responded.add(challenge.value.url);
        const live = this.#guard(row, () => {
          this.storage.sql.run(`UPDATE acme_orders SET responded = ? WHERE custom_hostname_id = ?`, JSON.stringify([...responded]), row.custom_hostname_id);
          this.#record(run, row, hostname, "validate", { purpose: row.purpose, challenge: wanted, identifier: authz.identifier.value, order_url: row.order_url });
        });
        if (!live) return STALE;
      }
      retryAfter = Math.max(retryAfter, Math.min((authz.retryAfter ?? 0) * 1000, MAX_POLL_WAIT_MS));
      waiting = true;
    }
    // What the customer must publish, for a renewal too (a new order has new tokens: the TXT value changes);
    // a renewal's hostname stays active meanwhile.
    if (!this.#guard(row, () => this.hostnames.setProgress(row.custom_hostname_id, { validation_records: records }))) return STALE;
    if (waiting) return { kind: "wait", ms: Math.max(POLL_MS, retryAfter, records.some((r) => r.txt_name) && config.dnsResolver ? DNS_WAIT_MS : 0) };
    if (hostname.method === "http") await this.challenges.withdraw(hostname.hostname, hostname.id);
    const live = this.#guard(row, () => {
      this.storage.sql.run(`UPDATE acme_orders SET state = 'finalizing', updated_at = ? WHERE custom_hostname_id = ?`, this.clock().toISOString(), row.custom_hostname_id);
      this.hostnames.setProgress(row.custom_hostname_id, row.purpose === "issue" && leads(row) ? { ssl_status: "pending_issuance", validation_records: [] } : { validation_records: [] });
    });
    return live ? { kind: "again" } : STALE;
  }

  async #finalize(run: Run, session: AcmeSession, account: AcmeAccountRef, row: OrderRow, hostname: ManagedHostname): Promise<Step> {
    const { scope, keyring } = run;
    const order = await getOrder(session, account, row.order_url!);
    if (!order.ok) return this.#refused(run, row, hostname, order);
    const status = order.value.status;
    if (status === "invalid") return this.#fail(run, row, hostname, 0, order.value.error ? describe(order.value.error) : "the CA refused the order", true, "issuance");
    if (status === "valid") {
      const live = this.#guard(row, () =>
        this.storage.sql.run(`UPDATE acme_orders SET state = 'downloading', updated_at = ? WHERE custom_hostname_id = ?`, this.clock().toISOString(), row.custom_hostname_id),
      );
      return live ? { kind: "again" } : STALE;
    }
    if (status === "ready" && row.finalized === 0) {
      const made = await this.#csr(run, row, hostname);
      if (!made.ok) return made.step;
      const { csr, names, kept } = made;
      // Stored, then sent: a restart between the two sends the same CSR again (a ready order takes it once).
      const stored = this.#guard(row, () => {
        this.storage.sql.run(`UPDATE acme_orders SET csr = ?, updated_at = ? WHERE custom_hostname_id = ?`, csr, this.clock().toISOString(), row.custom_hostname_id);
        if (kept) this.keys.dropPending(hostname.id, row.key_type);
      });
      if (!stored) return STALE;
      const der = fromPemBlocks("CERTIFICATE REQUEST", csr)![0]!;
      const sent = await finalize(session, account, { url: row.order_url!, finalize: row.finalize_url! }, der);
      if (!sent.ok) {
        // The CA took an earlier finalize of this order: it is processing or done; poll.
        if (sent.reason === "acme_problem" && sent.type.endsWith(":orderNotReady")) return { kind: "wait", ms: POLL_MS };
        return this.#refused(run, row, hostname, sent);
      }
      const live = this.#guard(row, () => {
        this.storage.sql.run(`UPDATE acme_orders SET finalized = 1, updated_at = ? WHERE custom_hostname_id = ?`, this.clock().toISOString(), row.custom_hostname_id);
        this.#record(run, row, hostname, "finalize", { purpose: row.purpose, order_url: row.order_url, names, key: hostname.csr_id !== null ? "custom_csr" : kept ? "kept" : "fresh" });
      });
      if (!live) return STALE;
      return { kind: "wait", ms: Math.max(500, Math.min((sent.value.retryAfter ?? 0) * 1000, MAX_POLL_WAIT_MS)) };
    }
    return { kind: "wait", ms: Math.max(POLL_MS, Math.min((order.value.retryAfter ?? 0) * 1000, MAX_POLL_WAIT_MS)) };
  }

  /**
   * The CSR an order is finalized with: a custom CSR's own (its key, which
   * the customer's CSR named), or one built for the managed key: a fresh
   * key, or the one in force when a renewal keeps it (RENEW_KEY_REUSE).
   */
  async #csr(run: Run, row: OrderRow, hostname: ManagedHostname): Promise<{ ok: true; csr: string; names: string[]; kept: boolean } | { ok: false; step: Step }> {
    if (hostname.csr_id !== null) {
      const csr = this.csrs.pem(hostname.csr_id);
      const names = this.csrs.names(hostname.csr_id);
      if (csr === null || names === null) return { ok: false, step: this.#fail(run, row, hostname, 0, "the custom CSR no longer exists", false) };
      return { ok: true, csr, names, kept: false };
    }
    const kept = row.purpose === "renew" && run.config.reuseKey ? await this.keys.current(hostname.id, run.scope, run.keyring, row.key_type) : null;
    const keys = kept ?? (await this.keys.pending(hostname.id, run.scope, run.keyring, row.key_type));
    if (!keys.ok) return { ok: false, step: keys.reason === "hostname_not_found" ? STALE : this.#keyFailure(row, keys) };
    const names = this.#names(hostname)!;
    const csr = await buildCsr(
      { common_name: names[0]!, country: "", state: "", locality: "", organization: "", organizational_unit: null, sans: names, key_type: row.key_type },
      keys.value,
    );
    return { ok: true, csr, names, kept: kept !== null };
  }

  async #download(run: Run, session: AcmeSession, account: AcmeAccountRef, row: OrderRow, hostname: ManagedHostname): Promise<Step> {
    const { call, keyring, config } = run;
    const order = await getOrder(session, account, row.order_url!);
    if (!order.ok) return this.#refused(run, row, hostname, order);
    if (!order.value.certificate) return { kind: "wait", ms: POLL_MS };
    const chain = await downloadCertificate(session, account, order.value.certificate);
    if (!chain.ok) return this.#refused(run, row, hostname, chain);
    // Checked against the CSR the order was finalized with (the key it names); a notBefore a few minutes ahead
    // of our clock (the CA's clock, or ours, is off) is taken: checked again as of then.
    let checked = await checkCertificate(chain.value.pem, row.csr!, this.clock());
    if (!checked.ok && checked.reason === "certificate_not_yet_valid") checked = await checkCertificate(chain.value.pem, row.csr!, new Date(this.clock().getTime() + CLOCK_SKEW_MS));
    if (!checked.ok) return this.#fail(run, row, hostname, 0, `the CA issued a certificate that is not usable (${checked.reason})`, true, "issuance");
    const renewAt = new Date(renewalDue(Date.parse(checked.value.not_before), Date.parse(checked.value.expires_on), config.renewBefore)).toISOString();
    // Installed only if the order is still the hostname's (an edit since would make it the wrong certificate or key).
    this.#guard(row, () => {
      this.count("acme_certificates_issued");
      this.keys.promote(hostname.id, row.key_type);
      if (!leads(row)) {
        this.twins.install(call, hostname.id, row.key_type, checked.value, keyring, row.purpose);
        this.hostnames.setProgress(hostname.id, { validation_errors: [] });
        this.cancel(hostname.id);
        return;
      }
      this.hostnames.installManaged(call, hostname.id, checked.value, renewAt, keyring, row.purpose);
      const ssl = { status: "active", method: hostname.method, type: "dv", serial_number: checked.value.serial_number, expires_on: checked.value.expires_on, issuer: checked.value.issuer };
      const event = hostnameEvent(call.scope.id, hostname, row.purpose === "issue" ? "issuance.succeeded" : "renewal.succeeded", ssl, this.clock());
      this.alert(call, event, { type: "custom_hostname_certificate", id: hostname.id });
      if (config.dual && hostname.csr_id === null) {
        // Dual certificates: the RSA twin is ordered next, for the same names from the same CA (whose
        // authorizations, now valid, it reuses where the CA allows), and renewed with each P-256 certificate.
        this.#chain(row, "rsa2048");
        return;
      }
      // A twin left from when dual certificates were configured goes with its key.
      this.twins.remove(hostname.id);
      this.keys.removeType(hostname.id, "rsa2048");
      this.cancel(hostname.id);
    });
    return { kind: "done" };
  }

  // The hostname's order becomes a new one for its `keyType` certificate, due now (call inside a guard).
  #chain(row: OrderRow, keyType: KeyType): void {
    this.storage.sql.run(
      `UPDATE acme_orders SET key_type = ?, state = 'new', order_url = NULL, finalize_url = NULL, authorizations = '[]', responded = '[]', csr = NULL, finalized = 0,
         attempts = 0, failures = 0, generation = generation + 1, next_at = ?, updated_at = ? WHERE custom_hostname_id = ?`,
      keyType,
      this.clock().toISOString(),
      this.clock().toISOString(),
      row.custom_hostname_id,
    );
  }

  // A refusal from the CA or the keys: retried on the order as it is when it may pass later, else a new order.
  #refused(run: Run, row: OrderRow, hostname: ManagedHostname, refusal: AcmeRefusal | KeyRefusal): Step {
    if (refusal.reason === "acme_problem" || refusal.reason === "acme_unreachable" || refusal.reason === "acme_bad_response" || refusal.reason === "acme_bad_input" || refusal.reason === "acme_no_challenge") {
      const retryable = isRetryable(refusal);
      const retryAfter = refusal.reason === "acme_problem" && refusal.retry_after !== undefined ? Math.min(refusal.retry_after * 1000, MAX_RETRY_AFTER_MS) : 0;
      if (refusal.reason !== "acme_problem") {
        console.error(JSON.stringify({ level: "warn", event: "acme_refused", custom_hostname_id: row.custom_hostname_id, ca: row.ca, reason: refusal.reason, detail: "detail" in refusal ? refusal.detail : undefined }));
      }
      if (retryable) {
        // The CA is down, overloaded or rate-limiting: said in validation_errors (the status stays what it is), and
        // tried again after a backoff that grows with each consecutive failure; never given up on for that. The
        // CA's other orders wait for the next run.
        if (refusal.reason === "acme_unreachable") run.unreachable.add(row.ca);
        const failures = row.failures + 1;
        const live = this.#guard(row, () => {
          this.hostnames.setProgress(row.custom_hostname_id, { validation_errors: [said(row, describe(refusal))] });
          this.storage.sql.run(`UPDATE acme_orders SET failures = ? WHERE custom_hostname_id = ?`, failures, row.custom_hostname_id);
        });
        return live ? { kind: "wait", ms: Math.max(POLL_MS * 5, retryAfter, backoffMs(failures, run.retryBaseMs)) } : STALE;
      }
      return this.#fail(run, row, hostname, retryAfter, describe(refusal), true, row.state === "authorizing" || row.state === "new" ? "validation" : "issuance");
    }
    return this.#keyFailure(row, refusal);
  }

  #keyFailure(row: OrderRow, refusal: KeyRefusal): Step {
    console.error(JSON.stringify({ level: "error", event: "acme_keys_unavailable", custom_hostname_id: row.custom_hostname_id, reason: refusal.reason }));
    const live = this.#guard(row, () =>
      this.hostnames.setProgress(row.custom_hostname_id, { validation_errors: [said(row, `the service's keys cannot be used (${refusal.reason}); the operator must fix KEY_ENCRYPTION_KEYS`)] }),
    );
    return live ? { kind: "wait", ms: 60_000 } : STALE;
  }

  /**
   * The order failed: its error shown, and a new order after a backoff, up to
   * MAX_ATTEMPTS; after that a first certificate is given up on
   * (`*_timed_out`, Cloudflare's statuses) until the hostname's ssl is sent
   * again, and a renewal is tried again a day later (the certificate in
   * force serves meanwhile; a PATCH tries at once).
   */
  #fail(run: Run, row: OrderRow, hostname: ManagedHostname, waitMs: number, message: string, retry: boolean, stage: "validation" | "issuance" = "validation"): Step {
    const attempts = row.attempts + 1;
    const givingUp = !retry || attempts >= MAX_ATTEMPTS;
    const progress: { ssl_status?: string; validation_errors: string[] } = { validation_errors: [said(row, message)] };
    if (givingUp && !hostname.has_certificate && leads(row)) progress.ssl_status = stage === "validation" ? "validation_timed_out" : "issuance_timed_out";
    const wait = Math.max(waitMs, backoffMs(attempts, run.retryBaseMs));
    const live = this.#guard(row, () => {
      this.hostnames.setProgress(row.custom_hostname_id, progress);
      this.#record(run, row, hostname, "order", { purpose: row.purpose, order_url: row.order_url, stage, attempt: attempts, given_up: givingUp, ...(givingUp ? {} : { next_order_in_s: Math.round(wait / 1000) }) }, message);
      this.count("acme_orders_failed");
      if (row.purpose === "renew") this.count("acme_renewals_failed");
      // Told on the first failure and when it is given up on (not at every retry in between); an RSA twin's when it
      // is given up on (it waits for the next renewal then, its own certificate serving meanwhile).
      if ((leads(row) && (attempts === 1 || givingUp)) || (!leads(row) && givingUp)) {
        const kind = row.purpose === "renew" || !leads(row) ? "renewal.failed" : stage === "validation" ? "validation.failed" : "issuance.failed";
        const ssl = {
          status: progress.ssl_status ?? hostname.ssl_status,
          method: hostname.method,
          type: "dv",
          validation_errors: [{ message: said(row, message) }],
          given_up: givingUp,
          ...(leads(row) ? {} : { key_type: row.key_type }),
        };
        this.alert(run.call, hostnameEvent(run.call.scope.id, hostname, kind, ssl, this.clock()), { type: "custom_hostname_certificate", id: hostname.id });
      }
      if (givingUp) {
        this.cancel(row.custom_hostname_id);
        // An RSA twin given up on waits for the next renewal (the hostname's own certificate serves, and the twin in force if any).
        if (hostname.has_certificate && leads(row)) this.hostnames.deferRenewal(row.custom_hostname_id, new Date(this.clock().getTime() + RENEWAL_RETRY_MS).toISOString());
        return;
      }
      this.storage.sql.run(
        `UPDATE acme_orders SET state = 'new', order_url = NULL, finalize_url = NULL, authorizations = '[]', responded = '[]', csr = NULL, finalized = 0,
           attempts = ?, updated_at = ? WHERE custom_hostname_id = ?`,
        attempts,
        this.clock().toISOString(),
        row.custom_hostname_id,
      );
    });
    if (!live) return STALE;
    return givingUp ? { kind: "done" } : { kind: "wait", ms: wait };
  }

  // When the alarm takes an order up next (nothing, when an edit replaced it meanwhile: the new order has its own time).
  #schedule(row: OrderRow, ms: number): void {
    this.storage.sql.run(
      `UPDATE acme_orders SET next_at = ? WHERE custom_hostname_id = ? AND generation = ?`,
      new Date(this.clock().getTime() + ms).toISOString(),
      row.custom_hostname_id,
      row.generation,
    );
  }

  async #session(name: string, directory: string) {
    const cached = this.#sessions.get(`${name} ${directory}`);
    if (cached) return { ok: true as const, value: cached };
    const opened = await openDirectory(directory, { clock: this.clock });
    if (opened.ok) this.#sessions.set(`${name} ${directory}`, opened.value);
    return opened;
  }

  // Whether the TXT record `name` holds `value`, asked of a DNS-over-HTTPS resolver (its JSON form).
  async #published(resolver: string, name: string, value: string): Promise<boolean> {
    try {
      const url = `${resolver}${resolver.includes("?") ? "&" : "?"}name=${encodeURIComponent(name)}&type=TXT`;
      const reply = await fetch(url, { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(5_000) });
      if (!reply.ok) return false;
      const body = (await reply.json()) as { Answer?: Array<{ data?: unknown }> };
      return (body.Answer ?? []).some((answer) => typeof answer.data === "string" && answer.data.replace(/^"|"$/g, "").replace(/"\s*"/g, "") === value);
    } catch {
      return false;
    }
  }
}
