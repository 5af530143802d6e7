import { sha256 } from "@noble/hashes/sha2.js";
import { fromPemBlocks } from "../pki/pem";
import type { Migrations } from "../storage/migrate";
import { hex } from "./audit-chain";

/**
 * A tenant object's schema: append a version to change it; each runs once,
 * in order, in the constructor (src/storage/migrate.ts; docs/storage.md
 * lists every table and column).
 */
export const TENANT_MIGRATIONS: Migrations = [
  [
    // seq: insertion order, the stable tie-break of every list order.
    `CREATE TABLE csrs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      created_at TEXT NOT NULL,
      key_type TEXT NOT NULL,
      account_tag TEXT,
      common_name TEXT NOT NULL,
      country TEXT NOT NULL,
      state TEXT NOT NULL,
      locality TEXT NOT NULL,
      organization TEXT NOT NULL,
      organizational_unit TEXT,
      name TEXT,
      description TEXT,
      sans TEXT NOT NULL,
      csr TEXT NOT NULL
    )`,
    `CREATE INDEX csrs_by_created_at ON csrs (created_at, seq)`,
    `CREATE INDEX csrs_by_name ON csrs (name, seq)`,
    `CREATE INDEX csrs_by_account_tag ON csrs (account_tag, seq)`,
    // The private key, only ever as its AES-GCM wrap (src/pki/key-wrap.ts).
    `CREATE TABLE wrapped_keys (
      csr_id TEXT PRIMARY KEY REFERENCES csrs (id) ON DELETE CASCADE,
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL
    )`,
    `CREATE INDEX wrapped_keys_by_kek ON wrapped_keys (kek_id)`,
    // Counters kept in step with inserts and deletes, so lists and quotas
    // never count rows.
    `CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
    `INSERT INTO counters (name, value) VALUES ('csrs', 0), ('certificates', 0)`,
    // The scope's entitlement; absent means the deployment's defaults.
    `CREATE TABLE entitlement (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      granted INTEGER NOT NULL,
      quota INTEGER NOT NULL
    )`,
    `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  ],
  [
    // Custom certificates uploaded against a custom CSR (zones only); a CSR
    // with a certificate cannot be deleted (1420).
    `CREATE TABLE certificates (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      custom_csr_id TEXT NOT NULL REFERENCES csrs (id),
      certificate TEXT NOT NULL,
      hosts TEXT NOT NULL,
      issuer TEXT NOT NULL,
      signature TEXT NOT NULL,
      bundle_method TEXT NOT NULL,
      priority INTEGER NOT NULL,
      expires_on TEXT NOT NULL,
      uploaded_on TEXT NOT NULL,
      modified_on TEXT NOT NULL
    )`,
    `CREATE INDEX certificates_by_csr ON certificates (custom_csr_id)`,
    `CREATE INDEX certificates_by_uploaded_on ON certificates (uploaded_on, seq)`,
  ],
  [
    // Fewer rows written per create (10 -> 8; bench/PROFILE.md). Wrapped keys
    // are keyed by their CSR's seq (the rowid: no separate key index) rather
    // than by its id; the account_tag index goes, since account_tag is the
    // same on every row of an object (the scope's account, or NULL in a
    // zone), so order=account_tag is seq order. The key stays out of the CSR
    // row: an RSA row with its wrap (~2.6 KB) would take a 4 KiB page alone.
    `CREATE TABLE wrapped_keys_v3 (
      seq INTEGER PRIMARY KEY REFERENCES csrs (seq),
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL
    )`,
    `INSERT INTO wrapped_keys_v3 (seq, kek_id, iv, wrapped)
       SELECT c.seq, k.kek_id, k.iv, k.wrapped FROM wrapped_keys k JOIN csrs c ON c.id = k.csr_id`,
    `DROP TABLE wrapped_keys`,
    `ALTER TABLE wrapped_keys_v3 RENAME TO wrapped_keys`,
    // The rewrap's count of keys left under old KEKs.
    `CREATE INDEX wrapped_keys_by_kek ON wrapped_keys (kek_id)`,
    `DROP INDEX csrs_by_account_tag`,
  ],
  [
    // The audit trail (src/tenant/audit-trail.ts, docs/audit.md): append-only
    // and hash-chained. seq is the entry's position: dense from 1, written
    // explicitly (it is part of the hashed bytes). The API id is derived from
    // the row (time, seq, hash), so it needs no column and no index.
    `CREATE TABLE audit_log (
      seq INTEGER PRIMARY KEY,
      at TEXT NOT NULL,
      action TEXT NOT NULL,
      result INTEGER NOT NULL,
      info TEXT,
      actor_type TEXT NOT NULL,
      actor_id TEXT NOT NULL,
      actor_email TEXT,
      actor_ip TEXT,
      resource_type TEXT NOT NULL,
      resource_id TEXT,
      metadata TEXT NOT NULL,
      prev_hash BLOB NOT NULL,
      hash BLOB NOT NULL
    )`,
    // The filters of the audit-log API (action.type, actor.email), each an
    // index walk within a seq range; only global-key actors have an email.
    `CREATE INDEX audit_by_action ON audit_log (action, seq)`,
    `CREATE INDEX audit_by_actor_email ON audit_log (actor_email COLLATE NOCASE, seq) WHERE actor_email IS NOT NULL`,
  ],
  [
    // RSA keys generated ahead of demand (src/tenant/key-pool.ts): wrapped
    // like stored keys, bound to the scope and to `id` (random, in the wrap's
    // additional data), with their public key. seq is the fill order; the
    // oldest key is used first.
    `CREATE TABLE key_pool (
      seq INTEGER PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL,
      spki BLOB NOT NULL,
      created_at TEXT NOT NULL
    )`,
    // The pool's size once it has started; absent: not started, the
    // deployment's default applies.
    `CREATE TABLE key_pool_config (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      size INTEGER NOT NULL
    )`,
  ],
  [
    // Pages by rank (src/tenant/seq-ranks.ts): CSRs counted per block of
    // 2^11 seqs. Keep the block size in step with BLOCK_BITS.
    `INSERT INTO counters (name, value)
       SELECT printf('csrs@%010d', seq >> 11), count(*) FROM csrs GROUP BY seq >> 11`,
    // From now on created_at never goes backwards (csr-store.ts); whether the
    // CSRs created before did decides if created_at order may be read as seq order.
    `INSERT INTO meta (key, value) VALUES ('created_at_follows_seq',
       CASE WHEN EXISTS (
         SELECT 1 FROM (SELECT created_at, lag(created_at) OVER (ORDER BY seq) AS previous FROM csrs)
         WHERE created_at < previous
       ) THEN '0' ELSE '1' END)`,
    // Where it does, created_at order is read by rank and its index only
    // costs an entry per create: it goes. Where it does not, it stays.
    (sql) => {
      if (sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'created_at_follows_seq'`)?.value === "1") {
        sql.run(`DROP INDEX csrs_by_created_at`);
      }
    },
  ],
  [
    // Which registered edges may receive a certificate's key (issue 10): a
    // Geo Key Manager policy expression, or a geo_restrictions label ('us',
    // 'eu', 'highest_security'); at most one of the two, both NULL meaning
    // every registered edge with a token for the zone. Added only where
    // missing, so the step also runs on a store set back to an earlier
    // version that kept them (test/pagination.test.ts replays version 6).
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('certificates')`).map((c) => c.name));
      if (!columns.has("policy")) sql.run(`ALTER TABLE certificates ADD COLUMN policy TEXT`);
      if (!columns.has("geo_restriction")) sql.run(`ALTER TABLE certificates ADD COLUMN geo_restriction TEXT`);
    },
  ],
  [
    // The check value of every key-encryption key this scope's data is
    // wrapped under (src/pki/keyring.ts), recorded before the first wrap
    // under it (or, for data older than this table, after a trial unwrap):
    // a KEK replaced under its id is refused before it wraps or unwraps
    // anything. The deployment registry holds the same values for /readyz.
    `CREATE TABLE IF NOT EXISTS kek_checks (
      kek_id TEXT PRIMARY KEY,
      check_value TEXT NOT NULL
    ) WITHOUT ROWID`,
  ],
  [
    // A keyed audit trail (src/tenant/audit-chain.ts, docs/audit.md): each
    // entry's MAC over its hash, under a key derived from the KEK `mac_kek`.
    // Entries from before stay without one; the first keyed entry covers them.
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('audit_log')`).map((c) => c.name));
      if (!columns.has("mac")) sql.run(`ALTER TABLE audit_log ADD COLUMN mac BLOB`);
      if (!columns.has("mac_kek")) sql.run(`ALTER TABLE audit_log ADD COLUMN mac_kek TEXT`);
    },
  ],
  [
    // A certificate row's MAC (src/tenant/certificate-seal.ts): what decides
    // whose key is delivered, and to which edges, cannot be changed in storage
    // without the KEK. Rows from before get theirs from the operator's rewrap.
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('certificates')`).map((c) => c.name));
      if (!columns.has("mac")) sql.run(`ALTER TABLE certificates ADD COLUMN mac BLOB`);
      if (!columns.has("mac_kek")) sql.run(`ALTER TABLE certificates ADD COLUMN mac_kek TEXT`);
    },
  ],
  [
    // The leaf's SHA-256 (hex), so the same certificate uploaded twice is
    // refused as Cloudflare refuses it (1220); computed for the rows there are.
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('certificates')`).map((c) => c.name));
      if (!columns.has("leaf_sha256")) sql.run(`ALTER TABLE certificates ADD COLUMN leaf_sha256 TEXT`);
      for (const row of sql.all<{ seq: number; certificate: string }>(`SELECT seq, certificate FROM certificates WHERE leaf_sha256 IS NULL`)) {
        const leaf = fromPemBlocks("CERTIFICATE", row.certificate)?.[0];
        if (leaf) sql.run(`UPDATE certificates SET leaf_sha256 = ? WHERE seq = ?`, hex(sha256(leaf)), row.seq);
      }
      sql.run(`CREATE INDEX IF NOT EXISTS certificates_by_leaf ON certificates (leaf_sha256)`);
    },
  ],
  [
    // Custom hostnames (zones; src/tenant/hostname-store.ts, docs/custom-hostnames.md):
    // the hostname, its settings as Cloudflare returns them, and its certificate:
    // a custom CSR's (custom_csr_id) or a managed one (ssl_kind 'managed', its
    // key in hostname_keys). The row's MAC covers what decides whose key is
    // delivered for which name (src/pki/row-seal.ts).
    `CREATE TABLE IF NOT EXISTS custom_hostnames (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      hostname TEXT NOT NULL UNIQUE,
      created_at TEXT NOT NULL,
      modified_on TEXT NOT NULL,
      custom_metadata TEXT,
      custom_origin_server TEXT,
      custom_origin_sni TEXT,
      ssl_id TEXT NOT NULL,
      ssl_kind TEXT NOT NULL CHECK (ssl_kind IN ('none', 'custom_csr', 'managed')),
      ssl_method TEXT,
      ssl_type TEXT,
      ssl_wildcard INTEGER NOT NULL DEFAULT 0,
      bundle_method TEXT NOT NULL,
      certificate_authority TEXT,
      ssl_settings TEXT NOT NULL,
      custom_csr_id TEXT REFERENCES csrs (id),
      ssl_status TEXT NOT NULL,
      certificate TEXT,
      hosts TEXT,
      issuer TEXT,
      serial_number TEXT,
      signature TEXT,
      expires_on TEXT,
      uploaded_on TEXT,
      leaf_sha256 TEXT,
      validation_records TEXT NOT NULL DEFAULT '[]',
      validation_errors TEXT NOT NULL DEFAULT '[]',
      mac BLOB,
      mac_kek TEXT
    )`,
    `CREATE INDEX IF NOT EXISTS custom_hostnames_by_csr ON custom_hostnames (custom_csr_id)`,
    `INSERT INTO counters (name, value) VALUES ('custom_hostnames', 0) ON CONFLICT DO NOTHING`,
    // The zone's custom hostname quota, when the operator set one (else the deployment's defaults).
    `CREATE TABLE IF NOT EXISTS hostname_quota (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      allocated INTEGER NOT NULL,
      hard_cap INTEGER NOT NULL
    )`,
    // Cloudflare's fallback origin of the zone's custom hostnames.
    `CREATE TABLE IF NOT EXISTS fallback_origin (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      origin TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
  ],
  [
    // Managed custom hostnames' keys (src/tenant/hostname-keys.ts), only as
    // their AES-GCM wraps: one 'current' key per hostname (the one its
    // certificate is for), and a 'pending' one while an ACME order for a
    // renewal with a fresh key is under way.
    `CREATE TABLE IF NOT EXISTS hostname_keys (
      key_id TEXT PRIMARY KEY,
      custom_hostname_id TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('pending', 'current')),
      key_type TEXT NOT NULL,
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL,
      spki BLOB NOT NULL,
      created_at TEXT NOT NULL
    )`,
    `CREATE UNIQUE INDEX IF NOT EXISTS hostname_keys_by_state ON hostname_keys (custom_hostname_id, state)`,
  ],
  [
    // Managed certificates by ACME (src/tenant/acme-*.ts, docs/custom-hostnames.md):
    // the zone's account per CA (its key only as its wrap), and one order in
    // progress per custom hostname, a state machine the object's alarm drives
    // (a restart resumes it; an order, once placed, is only ever polled).
    `CREATE TABLE IF NOT EXISTS acme_accounts (
      ca TEXT PRIMARY KEY,
      directory TEXT NOT NULL,
      key_id TEXT NOT NULL,
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL,
      public_jwk TEXT NOT NULL,
      url TEXT,
      created_at TEXT NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS acme_orders (
      custom_hostname_id TEXT PRIMARY KEY,
      ca TEXT NOT NULL,
      purpose TEXT NOT NULL CHECK (purpose IN ('issue', 'renew')),
      state TEXT NOT NULL CHECK (state IN ('new', 'authorizing', 'finalizing', 'downloading')),
      order_url TEXT,
      finalize_url TEXT,
      authorizations TEXT NOT NULL DEFAULT '[]',
      responded TEXT NOT NULL DEFAULT '[]',
      csr TEXT,
      finalized INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_at TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS acme_orders_by_next ON acme_orders (next_at)`,
    // When a managed certificate is due for renewal (RENEW_BEFORE), set when it is installed.
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('custom_hostnames')`).map((c) => c.name));
      if (!columns.has("renew_at")) sql.run(`ALTER TABLE custom_hostnames ADD COLUMN renew_at TEXT`);
    },
  ],
  // 15: consecutive failures to reach the CA (or a CA's passing refusal) on an order, for a growing backoff.
  [
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('acme_orders')`).map((c) => c.name));
      if (!columns.has("failures")) sql.run(`ALTER TABLE acme_orders ADD COLUMN failures INTEGER NOT NULL DEFAULT 0`);
    },
  ],
  // 16: custom certificate lists in Cloudflare's order, highest priority first
  // (src/tenant/certificate-store.ts), walked in the index either way; it holds
  // expires_on too, so a status filter is decided without reading rows (a row
  // holds its PEM chain). It replaces the upload-order index, now its tail.
  // `priority` itself is there since version 2, 0 on every row until set.
  [
    `CREATE INDEX IF NOT EXISTS certificates_by_priority ON certificates (priority DESC, uploaded_on, seq, expires_on)`,
    `DROP INDEX IF EXISTS certificates_by_uploaded_on`,
  ],
  // 17: an order's generation (an edit starts it over: a step of the old one writes nothing); renewals found by index.
  [
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('acme_orders')`).map((c) => c.name));
      if (!columns.has("generation")) sql.run(`ALTER TABLE acme_orders ADD COLUMN generation INTEGER NOT NULL DEFAULT 0`);
    },
    `CREATE INDEX IF NOT EXISTS custom_hostnames_by_renewal ON custom_hostnames (renew_at) WHERE renew_at IS NOT NULL`,
  ],
  // 18: dual certificates (MANAGED_KEY_TYPES="p256v1,rsa2048"): a hostname's keys by type, its order of the
  // moment for one type, and its RSA twin's certificate beside the P-256 one (which stays in custom_hostnames).
  [
    `DROP INDEX IF EXISTS hostname_keys_by_state`,
    `CREATE UNIQUE INDEX IF NOT EXISTS hostname_keys_by_type ON hostname_keys (custom_hostname_id, key_type, state)`,
    (sql) => {
      const columns = new Set(sql.all<{ name: string }>(`SELECT name FROM pragma_table_info('acme_orders')`).map((c) => c.name));
      if (!columns.has("key_type")) sql.run(`ALTER TABLE acme_orders ADD COLUMN key_type TEXT NOT NULL DEFAULT 'p256v1'`);
    },
    // id: the twin's own certificate id (what an edge fetches it by); sealed like a hostname row.
    `CREATE TABLE IF NOT EXISTS hostname_certificates (
      id TEXT PRIMARY KEY,
      custom_hostname_id TEXT NOT NULL,
      key_type TEXT NOT NULL,
      certificate TEXT NOT NULL,
      hosts TEXT NOT NULL,
      issuer TEXT NOT NULL,
      serial_number TEXT NOT NULL,
      signature TEXT NOT NULL,
      expires_on TEXT NOT NULL,
      uploaded_on TEXT NOT NULL,
      leaf_sha256 TEXT NOT NULL,
      modified_on TEXT NOT NULL,
      mac BLOB,
      mac_kek TEXT
    )`,
    `CREATE UNIQUE INDEX IF NOT EXISTS hostname_certificates_by_type ON hostname_certificates (custom_hostname_id, key_type)`,
  ],
  // 19: notifications (src/alerting/, docs/notifications.md). In an account's object: its webhook destinations
  // (each secret only as its AES-GCM wrap), its policies, the events its zones raised, and one delivery per event,
  // policy and destination, the outbox its alarm drains (and, once sent or given up on, the history). In a zone's
  // object: the events it raised and has not yet handed to its account, and which expiry notices were raised.
  [
    `CREATE TABLE IF NOT EXISTS alert_webhooks (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL,
      url TEXT NOT NULL,
      type TEXT NOT NULL,
      secret_kek TEXT,
      secret_iv BLOB,
      secret_wrapped BLOB,
      created_at TEXT NOT NULL,
      last_success TEXT,
      last_failure TEXT
    )`,
    `CREATE TABLE IF NOT EXISTS alert_policies (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL,
      description TEXT NOT NULL,
      alert_type TEXT NOT NULL,
      enabled INTEGER NOT NULL,
      mechanisms TEXT NOT NULL,
      filters TEXT NOT NULL,
      created TEXT NOT NULL,
      modified TEXT NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS alert_events (
      id TEXT PRIMARY KEY,
      alert_type TEXT NOT NULL,
      zone_id TEXT NOT NULL,
      body TEXT NOT NULL,
      raised_at TEXT NOT NULL,
      received_at TEXT NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS alert_deliveries (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      event_id TEXT NOT NULL,
      policy_id TEXT NOT NULL,
      webhook_id TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_at TEXT,
      outcome TEXT,
      sent TEXT
    )`,
    `CREATE UNIQUE INDEX IF NOT EXISTS alert_deliveries_once ON alert_deliveries (event_id, policy_id, webhook_id)`,
    `CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (next_at) WHERE state = 'pending'`,
    `CREATE INDEX IF NOT EXISTS alert_deliveries_by_sent ON alert_deliveries (sent) WHERE state != 'pending'`,
    `CREATE TABLE IF NOT EXISTS alert_outbox (
      id TEXT PRIMARY KEY,
      alert_type TEXT NOT NULL,
      body TEXT NOT NULL,
      raised_at TEXT NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS expiry_notices (
      certificate_id TEXT NOT NULL,
      expires_on TEXT NOT NULL,
      days INTEGER NOT NULL,
      PRIMARY KEY (certificate_id, expires_on, days)
    ) WITHOUT ROWID`,
  ],
  // 20: an account's edges found stale by its policies of custom_csr_edge_stale: one row per policy and edge
  // while the edge stays stale (told once per episode), gone once it syncs again.
  [
    `CREATE TABLE IF NOT EXISTS alert_edge_episodes (
      policy_id TEXT NOT NULL,
      edge_id TEXT NOT NULL,
      since TEXT NOT NULL,
      PRIMARY KEY (policy_id, edge_id)
    ) WITHOUT ROWID`,
  ],
];

/** The tenant schema's newest version. */
export const SCHEMA_VERSION = TENANT_MIGRATIONS.length;
