import type { KeyRefusal, Keyring } from "../pki/keyring";
import type { KekRecord } from "./kek-usage";

/** One KEK as the operator sees it: configured or not, and whether its key is the one the data recorded. */
export interface KekState {
  id: string;
  /** In KEY_ENCRYPTION_KEYS now. */
  configured: boolean;
  /** The one new wraps use (the first entry). */
  current: boolean;
  /**
   * `ok`: the configured key has the recorded check value; `mismatch`: it
   * has another (a different key under this id); `missing`: data uses or
   * recorded it, and it is not configured; `unverified`: configured, and
   * data from before check values uses it, whose check value is not
   * recorded yet (npm start verifies it by a trial unwrap before serving;
   * elsewhere the scope's first write does); `unused`: configured, no data
   * recorded it.
   */
  check: "ok" | "mismatch" | "missing" | "unverified" | "unused";
  /** Scopes whose data is wrapped or keyed under it, as they last reported (0: it may be retired). */
  scopes: number;
}

/** How much of the deployment's data the registry can vouch for. */
export interface ScopeCoverage {
  /** Every scope with data is listed (a fresh data directory, or npm start's import of an older one). */
  complete: boolean;
  /** Listed scopes that have not reported the KEKs their data uses (listed by name only). */
  unreported: number;
}

export interface KeyStatus {
  current_kek_id: string;
  keks: KekState[];
  /**
   * Configured KEKs, other than the current one, that no scope's data uses:
   * safe to remove from KEY_ENCRYPTION_KEYS. Always empty while the registry
   * cannot vouch for every scope (`scopes_complete` false, or
   * `scopes_unreported` above 0): a scope it does not know of, or whose KEKs
   * it does not know, may still need any of them.
   */
  retirable: string[];
  scopes_complete: boolean;
  scopes_unreported: number;
}

/**
 * Compares the configured keyring with the KEKs the deployment's data
 * recorded. The failures name each KEK that stops the deployment from
 * serving its data: a recorded key configured with another value (1505),
 * or one that data still uses and that is not configured (1501).
 */
export function keyStatus(keyring: Keyring, recorded: readonly KekRecord[], coverage: ScopeCoverage): { status: KeyStatus; failures: KeyRefusal[] } {
  const byId = new Map(recorded.map((r) => [r.kek_id, r]));
  const ids = [...new Set([...keyring.checks.keys(), ...byId.keys()])].sort();
  const failures: KeyRefusal[] = [];
  const keks = ids.map((id): KekState => {
    const record = byId.get(id);
    const configured = keyring.checks.get(id);
    const scopes = record?.scopes ?? 0;
    let check: KekState["check"];
    if (record === undefined) check = "unused";
    else if (configured === undefined) check = "missing";
    else if (record.check_value === null) check = "unverified";
    else check = configured === record.check_value ? "ok" : "mismatch";
    if (check === "mismatch") failures.push({ reason: "key_encryption_mismatch", kek_id: id });
    if (check === "missing" && scopes > 0) failures.push({ reason: "key_encryption_key_missing", kek_id: id });
    return { id, configured: configured !== undefined, current: id === keyring.currentId, check, scopes };
  });
  const vouched = coverage.complete && coverage.unreported === 0;
  const retirable = vouched ? keks.filter((k) => k.configured && !k.current && k.scopes === 0 && k.check !== "mismatch").map((k) => k.id) : [];
  return {
    status: { current_kek_id: keyring.currentId, keks, retirable, scopes_complete: coverage.complete, scopes_unreported: coverage.unreported },
    failures,
  };
}
