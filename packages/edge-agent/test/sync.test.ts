// A sync against a service that plays fair: what it writes, what it leaves
// alone, what it removes, and when it reloads.
import { createPrivateKey } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ERRORS } from "../../../src/http/error-table.ts";
import { type Edge, failure, makeEdge, success } from "./harness.ts";

let edge: Edge;
beforeEach(async () => {
  edge = await makeEdge();
});
afterEach(() => edge.close());

const state = () => JSON.parse(readFileSync(join(edge.out, `.edge-sync-${edge.service.zone}.json`), "utf8"));
const mode = (path: string) => statSync(path).mode & 0o777;

describe("sync", () => {
  it("writes each certificate's chain and key (0600), prints a line for each and the summary, and records what it wrote", async () => {
    const a = edge.service.add("a.example.com");
    const b = edge.service.add("b.example.com");
    const synced = success(await edge.sync());
    expect(synced).toMatchObject({ certificates: 2, written: 2, removed: 0, reloaded: false });
    expect(synced.lines).toEqual([
      `${a.id} written hosts=a.example.com expires_on=2030-12-31T00:00:00.000Z`,
      `${b.id} written hosts=b.example.com expires_on=2030-12-31T00:00:00.000Z`,
      expect.stringMatching(/^edge sync: zone zone-1, edge edge-1: 2 certificates, 2 written, 0 unchanged, 0 removed \(\d+ ms\)$/),
    ]);
    for (const c of [a, b]) {
      const key = join(edge.out, `${c.id}.key`);
      expect(mode(key)).toBe(0o600);
      expect(mode(join(edge.out, `${c.id}.crt`))).toBe(0o644);
      expect(readFileSync(join(edge.out, `${c.id}.crt`), "utf8")).toBe(c.certificate);
      // The delivered key, opened from the JWE: the leaf's own key.
      const written = createPrivateKey(readFileSync(key));
      expect(written.export({ format: "der", type: "pkcs8" })).toEqual(c.key.export({ format: "der", type: "pkcs8" }));
    }
    expect(mode(edge.out)).toBe(0o700);
    expect(mode(join(edge.out, `.edge-sync-${edge.service.zone}.json`))).toBe(0o600);
    expect(state()).toMatchObject({ zone: "zone-1", edge: "edge-1", removed: {}, reload_pending: false, certificates: { [a.id]: { modified_on: a.modified_on } } });
    expect(existsSync(join(edge.out, `.edge-sync-${edge.service.zone}.lock`))).toBe(false);
  });

  it("a second sync with nothing changed fetches no bundle and writes nothing", async () => {
    edge.service.add("a.example.com");
    success(await edge.sync());
    const before = edge.files();
    edge.service.requests.length = 0;
    const again = success(await edge.sync({ serviceKey: undefined }));
    expect(again).toMatchObject({ certificates: 1, written: 0, removed: 0 });
    expect(again.lines.at(-1)).toMatch(/1 certificate, 0 written, 1 unchanged, 0 removed \(/);
    expect(edge.service.requests).toEqual([`/client/v4/zones/${edge.service.zone}/key_delivery/certificates`]);
    expect(edge.files()).toEqual(before);
  });

  it("a policy-only edit is fetched again but writes nothing; a renewal writes the new chain and keeps the key", async () => {
    const a = edge.service.add("a.example.com");
    success(await edge.sync());
    const before = edge.files();
    edge.service.touch(a.id);
    expect(success(await edge.sync())).toMatchObject({ written: 0 });
    expect(edge.files()).toEqual(before);
    expect(state().certificates[a.id].modified_on).toBe(edge.service.certificates.get(a.id)!.modified_on);

    const renewed = edge.service.renew(a.id);
    const synced = success(await edge.sync());
    expect(synced.lines[0]).toMatch(new RegExp(`^${a.id} written `));
    expect(readFileSync(join(edge.out, `${a.id}.crt`), "utf8")).toBe(renewed.certificate);
  });

  it("a file changed on disk is fetched and written again", async () => {
    const a = edge.service.add("a.example.com");
    success(await edge.sync());
    const crt = join(edge.out, `${a.id}.crt`);
    writeFileSync(crt, "changed\n");
    expect(success(await edge.sync())).toMatchObject({ written: 1 });
    expect(readFileSync(crt, "utf8")).toBe(a.certificate);
  });

  it("removes the files of a certificate no longer listed, and only those it wrote; a tombstone keeps its version", async () => {
    const a = edge.service.add("a.example.com");
    const b = edge.service.add("b.example.com");
    success(await edge.sync());
    mkdirSync(edge.out, { recursive: true });
    const foreign = join(edge.out, "00000000-0000-4000-8000-000000000000.crt");
    writeFileSync(foreign, "not ours\n");
    edge.service.certificates.delete(b.id);
    const synced = success(await edge.sync());
    expect(synced.lines).toContain(`${b.id} removed`);
    expect(synced).toMatchObject({ certificates: 1, written: 0, removed: 1 });
    expect(edge.files().map(([f]) => f)).toEqual([foreign.split("/").at(-1), `${a.id}.crt`, `${a.id}.key`].sort());
    expect(state().removed).toEqual({ [b.id]: b.modified_on });

    // Listed again at an older version than it was removed at: a replay.
    edge.service.certificates.set(b.id, { ...b, modified_on: "2029-01-01T00:00:00.000Z" });
    expect(failure(await edge.sync())).toBe(
      `certificate ${b.id}: the listing offers modified_on 2029-01-01T00:00:00.000Z, older than ${b.modified_on} already held: refused as a replay`,
    );
    // At the version it was removed at (the edge's labels changed back) or a newer one, it comes back, and its tombstone goes.
    edge.service.certificates.set(b.id, b);
    expect(success(await edge.sync())).toMatchObject({ written: 1 });
    expect(state().removed).toEqual({});
  });

  it(`a certificate withdrawn between the listing and its fetch (${[ERRORS.certificate_not_found.code, ERRORS.edge_excluded_by_policy.code, ERRORS.certificate_expired_not_delivered.code].join(", ")}) keeps its files this run`, async () => {
    const a = edge.service.add("a.example.com");
    success(await edge.sync());
    const before = edge.files();
    for (const gone of [ERRORS.certificate_not_found, ERRORS.edge_excluded_by_policy, ERRORS.certificate_expired_not_delivered]) {
      edge.service.touch(a.id);
      edge.service.refusals.set(a.id, { status: gone.status, code: gone.code });
      const synced = success(await edge.sync());
      expect(synced, String(gone.code)).toMatchObject({ certificates: 1, written: 0, removed: 0 });
      expect(edge.files()).toEqual(before);
    }
    // A new certificate withdrawn before its first fetch is simply not written.
    const b = edge.service.add("b.example.com");
    edge.service.refusals.set(b.id, { status: 404, code: ERRORS.certificate_not_found.code });
    expect(success(await edge.sync())).toMatchObject({ certificates: 1 });
    expect(existsSync(join(edge.out, `${b.id}.key`))).toBe(false);
    // Any other refusal fails the sync and changes nothing.
    edge.service.refusals.set(a.id, { status: 500, code: ERRORS.record_integrity_failed.code });
    expect(failure(await edge.sync())).toBe(`certificate ${a.id}: 500 ${ERRORS.record_integrity_failed.code} refused`);
    expect(edge.files()).toEqual(before);
  });

  it("a failed listing says its status and code, and changes nothing", async () => {
    edge.service.add("a.example.com");
    edge.service.override = () => ({ status: 403, body: JSON.stringify({ success: false, errors: [{ code: 1474, message: "This edge is not registered\n(unknown or revoked)" }] }) });
    expect(failure(await edge.sync())).toBe("listing failed: 403 1474 This edge is not registered\\u000a(unknown or revoked)");
    expect(edge.files()).toEqual([]);
    edge.service.override = () => ({ status: 502, body: "<html>bad gateway</html>" });
    expect(failure(await edge.sync())).toMatch(/^502 from http:\/\/127\.0\.0\.1:\d+\/client\/v4\/zones\/zone-1\/key_delivery\/certificates: not a JSON envelope$/);
  });

  it("reloads once when files changed; a failed reload is owed and run by the next sync though nothing changed", async () => {
    const marker = join(edge.root, "reloads");
    const reload = `echo reloaded >> ${marker}`;
    const a = edge.service.add("a.example.com");
    expect(success(await edge.sync({ reload }))).toMatchObject({ written: 1, reloaded: true });
    expect(readFileSync(marker, "utf8")).toBe("reloaded\n");
    expect(success(await edge.sync({ reload }))).toMatchObject({ written: 0, reloaded: false });
    expect(readFileSync(marker, "utf8")).toBe("reloaded\n");

    edge.service.renew(a.id);
    expect(failure(await edge.sync({ reload: "exit 3" }))).toBe("reload command failed (exit 3): the new files are in place");
    expect(readFileSync(join(edge.out, `${a.id}.crt`), "utf8")).toBe(edge.service.certificates.get(a.id)!.certificate);
    expect(state().reload_pending).toBe(true);
    const owed = success(await edge.sync({ reload }));
    expect(owed).toMatchObject({ written: 0, reloaded: true });
    expect(owed.lines.at(-1)).toMatch(/1 certificate, 0 written, 1 unchanged, 0 removed, reloaded \(/);
    expect(state().reload_pending).toBe(false);
    expect(success(await edge.sync({ reload }))).toMatchObject({ reloaded: false });
    expect(readFileSync(marker, "utf8")).toBe("reloaded\nreloaded\n");
  });

  it("keeps one zone's files apart from another's in a shared OUT", async () => {
    const a = edge.service.add("a.example.com");
    success(await edge.sync());
    // Another zone's sync into the same OUT lists nothing, and removes nothing of zone-1.
    const other = edge.service.zone;
    edge.service.zone = "zone-2";
    edge.service.certificates.clear();
    expect(success(await edge.sync({ zone: "zone-2" }))).toMatchObject({ certificates: 0, removed: 0 });
    expect(existsSync(join(edge.out, `${a.id}.key`))).toBe(true);
    expect(existsSync(join(edge.out, `.edge-sync-${other}.json`))).toBe(true);
  });
});
