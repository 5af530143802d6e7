// Custom hostnames reach the edge by name: which names the agent accepts as
// a file name and a server_name, the files a sync writes for them, and the
// names it refuses before anything is written.
import { createPrivateKey } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_BASE, checkedHostname, fileBase, isHostname, serverNames } from "../src/names.ts";
import { type Edge, failure, makeEdge, success } from "./harness.ts";

const ID = "0f8c7a52-3b1e-4c2d-9e8f-1a2b3c4d5e6f";
const label = (n: number, c = "a") => c.repeat(n);
/** A name of exactly `length` characters: labels of 63 and a last one to make up the rest. */
const nameOf = (length: number): string => {
  const labels: string[] = [];
  let left = length;
  while (left > 64) {
    labels.push(label(63));
    left -= 64;
  }
  labels.push(label(left, "b"));
  return labels.join(".");
};

describe("names", () => {
  it("accepts lower-case DNS names, a leading *. and '_' in labels, up to the service's 255 characters", () => {
    for (const name of ["shop.customer-eight.com", "*.shop.customer-eight.com", "_acme.customer-eight.com", "xn--bcher-kva.de", "localhost", `${label(63)}.com`, nameOf(255), `*.${nameOf(253)}`]) {
      expect(isHostname(name), name).toBe(true);
    }
  });

  it("refuses upper case, spaces, slashes, dot-dot, empty labels, a wildcard anywhere but leftmost, and what nginx would read as syntax", () => {
    const refused = [
      "Shop.customer-eight.com", "SHOP.COM", "shop .com", " shop.com", "shop.com ", "a/b.com", "../etc", "..", ".", "a..b.com", ".hidden.com",
      "shop.com.", "*", "*.", "a.*.com", "**.a.com", "*a.com", "a.com/..", "~^(?<x>.+)$", "a;b.com", "a{b}.com", "a#b.com", "$host", "a\nb.com",
      "é.com", "", `${label(64)}.com`, nameOf(256), `*.${nameOf(254)}`,
    ];
    for (const name of refused) expect(isHostname(name), JSON.stringify(name)).toBe(false);
    for (const value of [null, undefined, 1, ["a.com"], { a: 1 }]) expect(isHostname(value)).toBe(false);
  });

  it("a refused hostname fails with its id and the name escaped, never used", () => {
    expect(checkedHostname(ID, "shop.customer-eight.com")).toBe("shop.customer-eight.com");
    expect(() => checkedHostname(ID, "../../etc/cron.d/x")).toThrow(
      `custom hostname ${ID}: "../../etc/cron.d/x" is not a DNS name the agent writes (lower-case letters, digits, '-', '_', '.', an optional leading '*.', at most 255 characters): refused`,
    );
    expect(() => checkedHostname(ID, "a\u001b[2Jb.com")).toThrow(/"a\\u001b\[2Jb\.com" is not a DNS name/);
  });

  it("files are named by hostname, *. written _wildcard., a custom certificate by its id, a name too long for a file by its id", () => {
    expect(fileBase(ID, undefined)).toBe(ID);
    expect(fileBase(ID, "shop.customer-eight.com")).toBe("shop.customer-eight.com");
    expect(fileBase(ID, "*.shop.customer-eight.com")).toBe("_wildcard.shop.customer-eight.com");
    // Only the leftmost label is a wildcard; nothing else is rewritten.
    expect(fileBase(ID, "_wildcard.shop.customer-eight.com")).toBe("_wildcard.shop.customer-eight.com");
    // <base>.crt must fit in a file name (255 bytes).
    expect(MAX_BASE).toBe(251);
    expect(fileBase(ID, nameOf(251))).toBe(nameOf(251));
    expect(fileBase(ID, nameOf(252))).toBe(ID);
    expect(fileBase(ID, `*.${nameOf(241)}`)).toBe(`_wildcard.${nameOf(241)}`);
    expect(fileBase(ID, `*.${nameOf(242)}`)).toBe(ID);
  });

  it("a custom certificate's hosts become server names lower-cased, or the sync fails naming the host", () => {
    expect(serverNames(ID, ["Shop.Customer-Eight.com", "*.customer-eight.com"])).toEqual(["shop.customer-eight.com", "*.customer-eight.com"]);
    expect(() => serverNames(ID, ["shop.com", "a b.com"])).toThrow(`certificate ${ID}: host "a b.com" is not a DNS name nginx can be given as a server_name: refused`);
    expect(() => serverNames(ID, [7])).toThrow(/host "7" is not a DNS name/);
  });
});

let edge: Edge;
const state = () => JSON.parse(readFileSync(join(edge.out, `.edge-sync-${edge.service.zone}.json`), "utf8"));
const mode = (path: string) => statSync(path).mode & 0o777;

describe("syncing custom hostnames", () => {
  beforeEach(async () => {
    edge = await makeEdge();
  });
  afterEach(() => edge.close());

  it("writes OUT/<hostname>.crt and .key (0600), a wildcard as _wildcard., a custom certificate by id, and records the name", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    const tenants = edge.service.addHostname("*.tenants.customer-eight.com");
    const custom = edge.service.add("api.customer-eight.com");
    const synced = success(await edge.sync());
    expect(synced.lines).toEqual([
      `${shop.id} written hostname=shop.customer-eight.com hosts=shop.customer-eight.com expires_on=2030-12-31T00:00:00.000Z`,
      `${tenants.id} written hostname=*.tenants.customer-eight.com hosts=*.tenants.customer-eight.com expires_on=2030-12-31T00:00:00.000Z`,
      `${custom.id} written hosts=api.customer-eight.com expires_on=2030-12-31T00:00:00.000Z`,
      expect.stringMatching(/^edge sync: zone zone-1, edge edge-1: 3 certificates, 3 written, 0 unchanged, 0 removed \(\d+ ms\)$/),
    ]);
    const bases = [["shop.customer-eight.com", shop], ["_wildcard.tenants.customer-eight.com", tenants], [custom.id, custom]] as const;
    expect(edge.files().map(([f]) => f)).toEqual(bases.flatMap(([base]) => [`${base}.crt`, `${base}.key`]).sort());
    for (const [base, served] of bases) {
      expect(mode(join(edge.out, `${base}.key`))).toBe(0o600);
      expect(mode(join(edge.out, `${base}.crt`))).toBe(0o644);
      expect(readFileSync(join(edge.out, `${base}.crt`), "utf8")).toBe(served.certificate);
      const key = createPrivateKey(readFileSync(join(edge.out, `${base}.key`)));
      expect(key.export({ format: "der", type: "pkcs8" })).toEqual(served.key.export({ format: "der", type: "pkcs8" }));
    }
    expect(state().certificates[tenants.id]).toMatchObject({ hostname: "*.tenants.customer-eight.com", modified_on: tenants.modified_on });
    expect(state().certificates[custom.id]).not.toHaveProperty("hostname");

    // Unchanged: nothing fetched, nothing written.
    edge.service.requests.length = 0;
    expect(success(await edge.sync())).toMatchObject({ certificates: 3, written: 0 });
    expect(edge.service.requests).toEqual([`/client/v4/zones/${edge.service.zone}/key_delivery/certificates`]);
  });

  it("a deleted hostname's files go, with a line naming it; a tombstone keeps its version", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    const tenants = edge.service.addHostname("*.tenants.customer-eight.com");
    success(await edge.sync());
    edge.service.certificates.delete(tenants.id);
    const synced = success(await edge.sync());
    expect(synced.lines).toContain(`${tenants.id} removed hostname=*.tenants.customer-eight.com`);
    expect(edge.files().map(([f]) => f)).toEqual(["shop.customer-eight.com.crt", "shop.customer-eight.com.key"]);
    expect(state().removed).toEqual({ [tenants.id]: tenants.modified_on });
    expect(state().certificates).toEqual({ [shop.id]: expect.objectContaining({ hostname: "shop.customer-eight.com" }) });
  });

  it("a name of up to 251 characters is a file name (staged under a short name); a longer one is written by its id, and removed by it", async () => {
    const longest = edge.service.addHostname(nameOf(251));
    const name = `www.${nameOf(250)}`;
    const long = edge.service.addHostname(name);
    const synced = success(await edge.sync());
    expect(synced.lines[1]).toBe(`${long.id} written hostname=${name} hosts=${name} expires_on=2030-12-31T00:00:00.000Z`);
    expect(edge.files().map(([f]) => f)).toEqual([`${nameOf(251)}.crt`, `${nameOf(251)}.key`, `${long.id}.crt`, `${long.id}.key`].sort());
    expect(readFileSync(join(edge.out, `${nameOf(251)}.crt`), "utf8")).toBe(longest.certificate);
    expect(readdirSync(edge.out).filter((f) => f.includes("tmp"))).toEqual([]);
    edge.service.certificates.delete(long.id);
    edge.service.certificates.delete(longest.id);
    success(await edge.sync());
    expect(edge.files()).toEqual([]);
  });

  it("refuses the whole listing, writing nothing, for a hostname with '/', '..', upper case or a space, or two names of one file", async () => {
    edge.service.addHostname("shop.customer-eight.com");
    success(await edge.sync());
    const before = edge.files();
    for (const bad of ["../../etc/passwd", "a/b.customer-eight.com", "..", "Shop.customer-eight.com", "shop customer-eight.com", ".edge-sync-zone-1.json"]) {
      const served = edge.service.addHostname("placeholder.customer-eight.com");
      edge.service.certificates.set(served.id, { ...served, hostname: bad });
      expect(failure(await edge.sync()), bad).toMatch(new RegExp(`^custom hostname ${served.id}: ".*" is not a DNS name the agent writes .*: refused$`));
      expect(edge.files(), bad).toEqual(before);
      edge.service.certificates.delete(served.id);
    }
    // *.x and _wildcard.x would be one file: neither is written.
    const wild = edge.service.addHostname("*.tenants.customer-eight.com");
    const spelled = edge.service.addHostname("_wildcard.tenants.customer-eight.com");
    expect(failure(await edge.sync())).toBe(`listing failed: ${wild.id} and ${spelled.id} would both be written as _wildcard.tenants.customer-eight.com.crt: refused`);
    expect(edge.files()).toEqual(before);
    // A hostname spelling a custom certificate's id would take its files.
    edge.service.certificates.delete(spelled.id);
    const custom = edge.service.add("api.customer-eight.com");
    const impostor = edge.service.addHostname(custom.id);
    expect(failure(await edge.sync())).toBe(`listing failed: ${custom.id} and ${impostor.id} would both be written as ${custom.id}.crt: refused`);
    expect(edge.files()).toEqual(before);
  });

  it("a dual certificate's RSA twin is written as <hostname>.rsa.crt|.key beside the P-256 pair, recorded with its key type, and removed by that name", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    const twin = edge.service.addTwin("shop.customer-eight.com");
    const wild = edge.service.addTwin("*.tenants.customer-eight.com");
    const synced = success(await edge.sync());
    expect(synced.lines.slice(0, 3)).toEqual([
      `${shop.id} written hostname=shop.customer-eight.com hosts=shop.customer-eight.com expires_on=2030-12-31T00:00:00.000Z`,
      `${twin.id} written hostname=shop.customer-eight.com key_type=rsa2048 hosts=shop.customer-eight.com expires_on=2030-12-31T00:00:00.000Z`,
      `${wild.id} written hostname=*.tenants.customer-eight.com key_type=rsa2048 hosts=*.tenants.customer-eight.com expires_on=2030-12-31T00:00:00.000Z`,
    ]);
    expect(edge.files().map(([f]) => f)).toEqual(
      ["_wildcard.tenants.customer-eight.com.rsa", "shop.customer-eight.com", "shop.customer-eight.com.rsa"].flatMap((base) => [`${base}.crt`, `${base}.key`]),
    );
    const key = createPrivateKey(readFileSync(join(edge.out, "shop.customer-eight.com.rsa.key")));
    expect([key.asymmetricKeyType, key.asymmetricKeyDetails?.modulusLength]).toEqual(["rsa", 2048]);
    expect(key.export({ format: "der", type: "pkcs8" })).toEqual(twin.key.export({ format: "der", type: "pkcs8" }));
    expect(mode(join(edge.out, "shop.customer-eight.com.rsa.key"))).toBe(0o600);
    expect(readFileSync(join(edge.out, "shop.customer-eight.com.rsa.crt"), "utf8")).toBe(twin.certificate);
    expect(state().certificates[twin.id]).toMatchObject({ hostname: "shop.customer-eight.com", key_type: "rsa2048" });

    // The twin withdrawn (dual certificates no longer configured): its files go, the P-256 pair stays.
    edge.service.certificates.delete(twin.id);
    edge.service.certificates.delete(wild.id);
    const removed = success(await edge.sync());
    expect(removed.lines).toContain(`${twin.id} removed hostname=shop.customer-eight.com`);
    expect(edge.files().map(([f]) => f)).toEqual(["shop.customer-eight.com.crt", "shop.customer-eight.com.key"]);
  });

  it("refuses a key type it does not know, one without a hostname, and a bundle whose key type is not the listing's", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    edge.service.certificates.set(shop.id, { ...shop, key_type: "rsa4096" as "rsa2048" });
    expect(failure(await edge.sync())).toBe(`certificate ${shop.id}: key_type "rsa4096" is not one the agent knows for this item (rsa2048, of a custom hostname): refused`);
    edge.service.certificates.delete(shop.id);
    const custom = edge.service.add("api.customer-eight.com");
    edge.service.certificates.set(custom.id, { ...custom, key_type: "rsa2048" });
    expect(failure(await edge.sync())).toMatch(new RegExp(`^certificate ${custom.id}: key_type "rsa2048" is not one the agent knows for this item`));
    edge.service.certificates.delete(custom.id);

    // The listing names a twin, the bundle the hostname's own certificate (both signed: only the agent's comparison stands in the way).
    const twin = edge.service.addTwin("shop.customer-eight.com");
    edge.service.override = async (path) => {
      if (!path.endsWith(twin.id)) return undefined;
      const { key_type: _, ...own } = twin;
      return edge.service.envelope("bundle", await edge.service.bundle(own));
    };
    expect(failure(await edge.sync())).toBe(`certificate ${twin.id}: the bundle is of key_type none, the listing of rsa2048: refused`);
    expect(edge.files()).toEqual([]);
  });

  it("refuses a bundle whose hostname is not the listing's, before writing anything", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    const listed = { ...shop };
    // The listing names shop, the bundle another hostname (the service signs both: only the agent's comparison stands in the way).
    edge.service.override = async (path) => {
      if (!path.endsWith(shop.id)) return undefined;
      edge.service.certificates.set(shop.id, { ...listed, hostname: "other.customer-eight.com" });
      try {
        return await edge.service.answer(path);
      } finally {
        edge.service.certificates.set(shop.id, listed);
      }
    };
    expect(failure(await edge.sync())).toBe(`certificate ${shop.id}: the bundle is of hostname "other.customer-eight.com", the listing of "shop.customer-eight.com": refused`);
    expect(existsSync(edge.out) ? readdirSync(edge.out).filter((f) => !f.startsWith(".")) : []).toEqual([]);
  });
});
