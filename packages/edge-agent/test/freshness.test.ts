// Signed replies have a shelf life: a listing or bundle older than --max-age
// (default 300 s) is refused, so a proxy replaying what the service once
// signed can hold back a removal for minutes, not forever, and an edge whose
// state was wiped cannot be fed an old capture. A bundle whose leaf has
// expired is never installed. Each refusal fails the sync (exit 1 from the
// bin) and leaves OUT as it was.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Edge, failure, makeEdge, success } from "./harness.ts";

let edge: Edge;
beforeEach(async () => {
  edge = await makeEdge();
});
afterEach(() => edge.close());

const LISTING = "/client/v4/zones/zone-1/key_delivery/certificates";
const DAY = 86_400;
/** This second, as the service puts it in iat. */
const seconds = () => Math.floor(Date.now() / 1000);
/** The agent's clock fixed at second s. */
const at = (s: number) => () => s * 1000;
const stale = (age: number, maxAge = 300) =>
  `the signed list was signed ${age} s ago, more than --max-age ${maxAge} s: refused as stale (a replayed reply, or this host's clock is ahead of the service's)`;
const statePath = () => join(edge.out, `.edge-sync-${edge.service.zone}.json`);

describe("replies older than --max-age", () => {
  it("a replayed listing of the same iat is accepted while it is fresh, and refused once older than --max-age", async () => {
    const s = edge.service;
    s.add("a.example.com");
    const b = s.add("b.example.com");
    const t = seconds();
    s.iat = () => t;
    const recorded = await s.answer(LISTING);
    success(await edge.sync({}, { now: at(t) }));
    const before = edge.files();
    const listedIat = JSON.parse(readFileSync(statePath(), "utf8")).listed_iat as number;
    expect(listedIat).toBe(t);

    // b is deleted on the service; a proxy keeps answering the listing signed at t.
    s.certificates.delete(b.id);
    s.override = (path) => (path === LISTING ? recorded : undefined);
    // An equal iat is accepted (the service signs in whole seconds: two genuine listings can share one), so
    // for up to --max-age seconds the replay holds b back...
    for (const now of [t, t + 1, t + 300]) {
      expect(success(await edge.sync({}, { now: at(now) })), String(now - t)).toMatchObject({ certificates: 2, written: 0, removed: 0 });
    }
    // ...and then every run fails, loudly, with every file as it was.
    expect(failure(await edge.sync({}, { now: at(t + 301) }))).toBe(stale(301));
    expect(failure(await edge.sync({}, { now: at(t + 3600) }))).toBe(stale(3600));
    expect(edge.files()).toEqual(before);
    // --max-age sets the bound.
    expect(success(await edge.sync({ maxAge: 600 }, { now: at(t + 600) }))).toMatchObject({ removed: 0 });
    expect(failure(await edge.sync({ maxAge: 600 }, { now: at(t + 601) }))).toBe(stale(601, 600));
    expect(failure(await edge.sync({ maxAge: 10 }, { now: at(t + 11) }))).toBe(stale(11, 10));

    // The service's own listing, fresh, removes b.
    s.override = null;
    s.iat = null;
    expect(success(await edge.sync()).lines).toContain(`${b.id} removed`);
  });

  it("an edge with no state (a wiped OUT) accepts only fresh replies: an old captured listing or bundle is refused", async () => {
    const s = edge.service;
    const a = s.add("a.example.com");
    const t = seconds();
    s.iat = () => t - 301;
    const oldListing = await s.answer(LISTING);
    const oldBundle = await s.answer(`${LISTING}/${a.id}`);
    s.iat = () => t;
    s.override = (path) => (path === LISTING ? oldListing : path === `${LISTING}/${a.id}` ? oldBundle : undefined);
    expect(failure(await edge.sync({}, { now: at(t) }))).toBe(stale(301));
    expect(edge.files()).toEqual([]);
    expect(existsSync(statePath())).toBe(false);

    // The captured bundle behind a fresh listing is refused too.
    s.override = (path) => (path === `${LISTING}/${a.id}` ? oldBundle : undefined);
    expect(failure(await edge.sync({}, { now: at(t) }))).toBe(stale(301).replace("signed list", "signed bundle"));
    expect(edge.files()).toEqual([]);
    expect(existsSync(statePath())).toBe(false);

    // One second younger, the same capture is within the bound (this is what --max-age allows).
    s.override = (path) => (path === LISTING ? oldListing : path === `${LISTING}/${a.id}` ? oldBundle : undefined);
    expect(success(await edge.sync({}, { now: at(t - 1) }))).toMatchObject({ written: 1 });
  });

  it("allows the service's clock ahead of this host's by up to 300 s, as before", async () => {
    const s = edge.service;
    s.add("a.example.com");
    const t = seconds();
    s.iat = () => t + 300;
    expect(success(await edge.sync({}, { now: at(t) }))).toMatchObject({ written: 1 });
    s.iat = () => t + 301;
    expect(failure(await edge.sync({}, { now: at(t) }))).toBe("the signed list has no usable iat");
  });
});

describe("expired leaves", () => {
  // Whole seconds: a certificate's times have no fraction (RFC 5280 §4.1.2.5.1).
  const whole = (s: number) => new Date(s * 1000);

  it("never installs a bundle whose leaf certificate has expired: the sync fails and every file stays", async () => {
    const s = edge.service;
    const t = seconds();
    const expired = { notBefore: whole(t - 30 * DAY), notAfter: whole(t - DAY) };
    const a = s.add("a.example.com");
    success(await edge.sync());
    const before = edge.files();
    const state = readFileSync(statePath(), "utf8");

    // A renewal to a leaf that has expired (the service refuses to deliver one, 1476; a skewed clock or a
    // replay could still offer it): the held files stay.
    s.renew(a.id, expired);
    const refusal = `certificate ${a.id}: the leaf certificate expired at ${expired.notAfter.toISOString()}: refused, not installed`;
    expect(failure(await edge.sync())).toBe(refusal);
    expect(edge.files()).toEqual(before);
    expect(readFileSync(statePath(), "utf8")).toBe(state);

    // A new certificate whose leaf expired is not installed either.
    s.certificates.delete(a.id);
    const b = s.add("b.example.com", expired);
    expect(failure(await edge.sync())).toBe(`certificate ${b.id}: the leaf certificate expired at ${expired.notAfter.toISOString()}: refused, not installed`);
    expect(edge.files()).toEqual(before);
  });

  it("reads expiry on this host's clock, notAfter inclusive", async () => {
    const s = edge.service;
    const t = seconds();
    const a = s.add("a.example.com", { notBefore: whole(t - 30 * DAY), notAfter: whole(t + DAY) });
    // The service signs on the same clock as the agent here, so only the leaf's expiry is in question.
    let clock = t + DAY + 1;
    s.iat = () => clock;
    expect(failure(await edge.sync({}, { now: at(clock) }))).toBe(
      `certificate ${a.id}: the leaf certificate expired at ${whole(t + DAY).toISOString()}: refused, not installed`,
    );
    expect(edge.files()).toEqual([]);
    clock = t + DAY;
    expect(success(await edge.sync({}, { now: at(clock) }))).toMatchObject({ written: 1 });
  });
});
