import { type Result, fail, ok } from "../core/result";
import { type KeyRefusal, type Keyring, KeyringError, loadKeyring } from "../pki/keyring";
import type { Storage } from "../storage/storage";

/** What the gate asks of the deployment registry: record a KEK's use, or refuse another key under a recorded id. */
export interface KekRegistry {
  useKek(scope: string, kekId: string, check: string): Promise<Result<void, KeyRefusal>>;
}

/** What the gate asks of the scope's data: which KEKs it is wrapped under, and whether one of its wraps opens. */
export interface WrappedData {
  /** Every KEK id some wrap of the scope names. */
  kekIds(): string[];
  /** Whether one wrap under `kekId` unwraps with this keyring (for data older than its check value). */
  opens(kekId: string, keyring: Keyring): Promise<boolean>;
}

/**
 * The scope's key-encryption keys, checked before use (the only writer of
 * `kek_checks`). A keyring is handed out only when every KEK the scope's data
 * recorded has the same check value in it, and the current KEK is recorded
 * here and with the deployment registry (which refuses another key under an
 * id it knows). Data from before check values were kept is checked once by
 * a trial unwrap. So a KEK lost or replaced under its id is refused with its
 * name (1501, 1505) before anything is wrapped under it or a bare failure is
 * answered. A keyring that passed is kept until the secret changes; one that
 * failed is checked again on the next call (the operator may fix it).
 */
export class KeyringGate {
  #loaded: { secret: string | undefined; keyring: Promise<Keyring> } | null = null;
  #passed: Keyring | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly secret: () => string | undefined,
    private readonly registry: KekRegistry,
    /** Told of every keyring the gate hands out (the audit trail keys its entries with it). */
    private readonly opened: (keyring: Keyring) => void,
    private readonly data: WrappedData,
  ) {}

  /** The keyring for `scope`'s data: 1501 when the secret is missing or malformed, 1505 naming a KEK whose key is not the recorded one. */
  async open(scope: string): Promise<Result<Keyring, KeyRefusal>> {
    const loaded = await this.#load();
    if (!loaded.ok) return loaded;
    if (this.#passed === loaded.value) {
      this.opened(loaded.value);
      return loaded;
    }
    const checked = await this.#check(scope, loaded.value);
    if (!checked.ok) {
      console.error(JSON.stringify({ level: "error", event: "kek_check_failed", scope, reason: checked.reason, kek_id: "kek_id" in checked ? checked.kek_id : null }));
      return checked;
    }
    this.#passed = loaded.value;
    this.opened(loaded.value);
    return loaded;
  }

  /** The current KEK's id, for answers about a scope with no data (nothing to check it against). */
  async currentId(): Promise<Result<string, KeyRefusal>> {
    const loaded = await this.#load();
    return loaded.ok ? ok(loaded.value.currentId) : loaded;
  }

  /** The KEK ids this scope has recorded check values for. */
  recorded(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT kek_id FROM kek_checks ORDER BY kek_id`).map((r) => r.kek_id);
  }

  async #load(): Promise<Result<Keyring, KeyRefusal>> {
    const secret = this.secret();
    const loading = this.#loaded !== null && this.#loaded.secret === secret ? this.#loaded : { secret, keyring: loadKeyring(secret) };
    this.#loaded = loading;
    try {
      return ok(await loading.keyring);
    } catch (error) {
      this.#loaded = null;
      if (!(error instanceof KeyringError)) throw error;
      console.error(JSON.stringify({ level: "error", event: "keyring_error", message: error.message }));
      return fail({ reason: "key_encryption_unavailable" });
    }
  }

  async #check(scope: string, keyring: Keyring): Promise<Result<void, KeyRefusal>> {
    const recorded = new Map(
      this.storage.sql.all<{ kek_id: string; check_value: string }>(`SELECT kek_id, check_value FROM kek_checks`).map((r) => [r.kek_id, r.check_value]),
    );
    for (const [id, check] of recorded) {
      const configured = keyring.checks.get(id);
      if (configured !== undefined && configured !== check) return fail({ reason: "key_encryption_mismatch", kek_id: id });
    }
    const toRecord: string[] = [];
    for (const id of this.data.kekIds()) {
      if (recorded.has(id) || !keyring.checks.has(id)) continue;
      // Wrapped before check values were kept: one of its wraps must open.
      if (!(await this.data.opens(id, keyring))) return fail({ reason: "key_encryption_mismatch", kek_id: id });
      toRecord.push(id);
    }
    if (!recorded.has(keyring.currentId) && !toRecord.includes(keyring.currentId)) toRecord.push(keyring.currentId);
    for (const id of toRecord) {
      const used = await this.registry.useKek(scope, id, keyring.checks.get(id)!);
      if (!used.ok) return used;
    }
    if (toRecord.length > 0) {
      this.storage.transaction(() => {
        for (const id of toRecord) {
          this.storage.sql.run(`INSERT INTO kek_checks (kek_id, check_value) VALUES (?, ?) ON CONFLICT (kek_id) DO NOTHING`, id, keyring.checks.get(id)!);
        }
      });
    }
    return ok(undefined);
  }
}
