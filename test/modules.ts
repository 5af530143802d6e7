// A scope's CSR module built by hand on an object's real storage, for tests
// that reach inside a transaction (a failing step, a quota race, a fixed
// clock): the same collaborators the tenant object gives it.
import type { Clock } from "../src/core/clock";
import { generateKeyPair } from "../src/pki/keys";
import type { Storage } from "../src/storage/storage";
import { AccountLink } from "../src/tenant/account-link";
import type { AuditTrail } from "../src/tenant/audit-trail";
import type { Counters } from "../src/tenant/counters";
import { CsrStore } from "../src/tenant/csr-store";
import { Entitlements } from "../src/tenant/entitlements";
import { KeyPool } from "../src/tenant/key-pool";
import { KeyVault } from "../src/tenant/key-vault";
import { Meta } from "../src/tenant/meta";

export function csrStoreOn(storage: Storage, parts: { audit: AuditTrail; counters: Counters; quota?: number; clock?: Clock }): CsrStore {
  const { audit, counters } = parts;
  const entitlements = new Entitlements(storage, { granted: true, quota: parts.quota ?? 100 }, audit);
  const meta = new Meta(storage);
  const account = new AccountLink(meta, audit);
  return new CsrStore(storage, {
    keys: new KeyVault(storage, audit),
    pool: new KeyPool(storage, audit, 0, () => undefined),
    audit,
    counters,
    meta,
    quota: () => entitlements.current().quota,
    accountTag: () => account.current(),
    generate: (keyType) => generateKeyPair(keyType),
    clock: parts.clock ?? (() => new Date()),
  });
}
