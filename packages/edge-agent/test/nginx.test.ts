// The nginx include a zone's sync renders (--nginx-include, --nginx-site):
// what a block holds and in which order, which pairs get none, whose file
// it may overwrite, and the order of writes that keeps nginx's configuration
// loadable through a removal. The real nginx is in test/e2e/edge-hostnames.e2e.ts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Planned } from "../src/collect.ts";
import { emptiedInclude, includeHeader, ownInclude, renderInclude } from "../src/nginx.ts";
import { type Edge, capture, failure, makeEdge, success } from "./harness.ts";
import { run } from "../src/cli.ts";

const OUT = "/etc/csr-edge/certs";
const SITE = "/etc/nginx/snippets/csr-edge-site.conf";

/** A planned pair to be written this run (so its block does not depend on files in OUT). */
function pair(id: string, names: { hostname?: string; hosts: string[]; base?: string }): Planned {
  return {
    id,
    ...(names.hostname === undefined ? {} : { hostname: names.hostname }),
    base: names.base ?? names.hostname?.replace(/^\*\./, "_wildcard.") ?? id,
    hosts: names.hosts,
    expires_on: "2030-12-31T00:00:00.000Z",
    modified_on: "2030-01-01T00:00:00.000Z",
    hashes: { crt: "c", key: "k" },
    write: { crt: "crt", key: "key" },
  };
}

const C1 = "11111111-1111-4111-8111-111111111111";
const H1 = "22222222-2222-4222-8222-222222222222";
const H2 = "33333333-3333-4333-8333-333333333333";

/** The server blocks of an include: [server_name, ssl_certificate, ssl_certificate_key, include]. */
function blocks(text: string): string[][] {
  return [...text.matchAll(/^server \{\n {4}server_name ([^;]+);\n {4}ssl_certificate (\S+);\n {4}ssl_certificate_key (\S+);\n {4}include (\S+);\n\}$/gm)].map((m) => m.slice(1));
}

describe("rendering the include", () => {
  it("one block per pair, custom hostnames first, each naming its pair and including the site snippet; a header that says whose it is", () => {
    const text = renderInclude("zone-1", OUT, SITE, [
      pair(C1, { hosts: ["API.customer-eight.com", "www.customer-eight.com"] }),
      pair(H1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"] }),
      pair(H2, { hostname: "*.tenants.customer-eight.com", hosts: ["*.tenants.customer-eight.com"] }),
    ]);
    expect(text.split("\n").slice(0, 2)).toEqual([
      "# edge sync: the nginx server blocks of zone zone-1, rendered at every sync. Do not edit: the next sync rewrites this file.",
      `# 3 server blocks; each includes ${SITE} (--nginx-site): its listen directives, locations and other settings.`,
    ]);
    expect(text.split("\n", 1)[0]).toBe(includeHeader("zone-1"));
    expect(blocks(text)).toEqual([
      ["shop.customer-eight.com", `${OUT}/shop.customer-eight.com.crt`, `${OUT}/shop.customer-eight.com.key`, SITE],
      ["*.tenants.customer-eight.com", `${OUT}/_wildcard.tenants.customer-eight.com.crt`, `${OUT}/_wildcard.tenants.customer-eight.com.key`, SITE],
      // A custom certificate's hosts, lower-cased (nginx compares names without case, but one spelling per name).
      ["api.customer-eight.com www.customer-eight.com", `${OUT}/${C1}.crt`, `${OUT}/${C1}.key`, SITE],
    ]);
    expect(text).toContain(`# custom hostname ${H1}\nserver {`);
    expect(text).toContain(`# custom certificate ${C1}\nserver {`);
    // The same pairs in the same order render the same text: an unchanged zone rewrites nothing.
    expect(renderInclude("zone-1", OUT, SITE, [pair(C1, { hosts: ["API.customer-eight.com", "www.customer-eight.com"] }), pair(H1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"] }), pair(H2, { hostname: "*.tenants.customer-eight.com", hosts: ["*.tenants.customer-eight.com"] })])).toBe(text);
  });

  it("gives each name one block (the first), and a pair left with no name of its own no block", () => {
    const text = renderInclude("zone-1", OUT, SITE, [
      pair(C1, { hosts: ["shop.customer-eight.com", "www.customer-eight.com"] }),
      pair("44444444-4444-4444-8444-444444444444", { hosts: ["www.customer-eight.com"] }),
      pair(H1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"] }),
    ]);
    expect(blocks(text).map(([names]) => names)).toEqual(["shop.customer-eight.com", "www.customer-eight.com"]);
    expect(text).toContain("# custom certificate 44444444-4444-4444-8444-444444444444: not served here (it has no name that a block above does not serve)");
    expect(text.split("\n")[1]).toMatch(/^# 2 server blocks;/);
  });

  it("gives no block to a pair whose files are not in OUT (kept this run, never written)", () => {
    const kept = { ...pair(H1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"] }), write: null };
    const text = renderInclude("zone-1", "/nonexistent/out", SITE, [kept]);
    expect(blocks(text)).toEqual([]);
    expect(text).toContain(`# custom hostname ${H1}: not served (its files are not in /nonexistent/out)`);
    expect(text.split("\n")[1]).toMatch(/^# 0 server blocks;/);
  });

  it("a hostname with dual certificates gets one block naming both pairs, its own first; a twin whose P-256 pair is missing is served alone", () => {
    const T1 = "55555555-5555-4555-8555-555555555555";
    const twin = { ...pair(T1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"], base: "shop.customer-eight.com.rsa" }), key_type: "rsa2048" as const };
    // Listed twin first: the block still names the P-256 pair first (nginx tries them in order for a client that takes both).
    const text = renderInclude("zone-1", OUT, SITE, [twin, pair(H1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"] })]);
    expect(text).toContain(
      [
        `# custom hostname ${H1}`,
        "server {",
        "    server_name shop.customer-eight.com;",
        `    ssl_certificate ${OUT}/shop.customer-eight.com.crt;`,
        `    ssl_certificate_key ${OUT}/shop.customer-eight.com.key;`,
        `    ssl_certificate ${OUT}/shop.customer-eight.com.rsa.crt;`,
        `    ssl_certificate_key ${OUT}/shop.customer-eight.com.rsa.key;`,
        `    include ${SITE};`,
        "}",
      ].join("\n"),
    );
    expect(text.split("\n")[1]).toMatch(/^# 1 server block;/);
    const alone = renderInclude("zone-1", OUT, SITE, [twin, { ...pair(H1, { hostname: "shop.customer-eight.com", hosts: ["shop.customer-eight.com"] }), write: null }].map((c) => c));
    // The P-256 pair kept without files (here: an OUT that does not exist) is left out; the twin, written this run, is served.
    expect(alone).toContain(`    ssl_certificate ${OUT}/shop.customer-eight.com.rsa.crt;`);
    expect(alone).not.toContain(`${OUT}/shop.customer-eight.com.crt;`);
  });

  it("fails on a custom certificate's host nginx could not take as a server_name", () => {
    expect(() => renderInclude("zone-1", OUT, SITE, [pair(C1, { hosts: ["shop.customer-eight.com; include /etc/shadow"] })])).toThrow(/is not a DNS name nginx can be given as a server_name: refused/);
  });
});

describe("whose include it is", () => {
  let edge: Edge;
  beforeEach(async () => {
    edge = await makeEdge();
  });
  afterEach(() => edge.close());

  it("a missing or empty file, or one with this zone's header, is this zone's; anything else is not", () => {
    const path = join(edge.root, "include.conf");
    expect(ownInclude(path, "zone-1")).toBe(true);
    writeFileSync(path, "");
    expect(ownInclude(path, "zone-1")).toBe(true);
    writeFileSync(path, emptiedInclude("zone-1"));
    expect(ownInclude(path, "zone-1")).toBe(true);
    expect(ownInclude(path, "zone-2")).toBe(false);
    writeFileSync(path, `# my own\n${includeHeader("zone-1")}\n`);
    expect(ownInclude(path, "zone-1")).toBe(false);
    writeFileSync(path, "server { listen 443 ssl; }\n");
    expect(ownInclude(path, "zone-1")).toBe(false);
  });
});

describe("syncing with --nginx-include", () => {
  let edge: Edge;
  let include: string;
  let site: string;
  beforeEach(async () => {
    edge = await makeEdge();
    mkdirSync(join(edge.root, "nginx", "csr-edge"), { recursive: true });
    include = join(edge.root, "nginx", "csr-edge", "zone-1.conf");
    site = join(edge.root, "nginx", "site.conf");
    writeFileSync(site, "listen 443 ssl;\n");
  });
  afterEach(() => edge.close());

  const nginx = () => ({ nginx: { include, site } });
  const read = () => readFileSync(include, "utf8");
  /** Every path the include names exists: nginx could load it. */
  const loadable = () => {
    for (const [, crt, key, snippet] of blocks(read())) for (const path of [crt!, key!, snippet!]) expect(existsSync(path), path).toBe(true);
  };

  it("renders a block per pair after writing them, says so, and rewrites the include only when it changes", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    const custom = edge.service.add("api.customer-eight.com");
    const marker = join(edge.root, "reloads");
    const reload = `echo reloaded >> ${marker}`;
    const synced = success(await edge.sync({ ...nginx(), reload }));
    expect(synced.lines.slice(-2)).toEqual([`nginx include ${include}: 2 server blocks`, expect.stringMatching(/2 written, 0 unchanged, 0 removed, reloaded \(/)]);
    expect(blocks(read())).toEqual([
      ["shop.customer-eight.com", join(edge.out, "shop.customer-eight.com.crt"), join(edge.out, "shop.customer-eight.com.key"), site],
      ["api.customer-eight.com", join(edge.out, `${custom.id}.crt`), join(edge.out, `${custom.id}.key`), site],
    ]);
    loadable();
    expect(JSON.parse(readFileSync(join(edge.out, ".edge-sync-zone-1.json"), "utf8")).nginx_include).toBe(include);

    // Nothing changed: no include line, no write, no reload.
    const before = readFileSync(include, "utf8");
    const again = success(await edge.sync({ ...nginx(), reload }));
    expect(again.lines.some((line) => line.startsWith("nginx include"))).toBe(false);
    expect(again.reloaded).toBe(false);
    expect(read()).toBe(before);
    expect(readFileSync(marker, "utf8")).toBe("reloaded\n");

    // A renewal changes a pair, not the include: the pair is written and nginx reloaded.
    edge.service.renew(shop.id);
    const renewed = success(await edge.sync({ ...nginx(), reload }));
    expect(renewed).toMatchObject({ written: 1, reloaded: true });
    expect(read()).toBe(before);
  });

  it("a removal rewrites the include without the pair before its files go, and a failed reload is owed, with the include loadable throughout", async () => {
    edge.service.addHostname("shop.customer-eight.com");
    const tenants = edge.service.addHostname("*.tenants.customer-eight.com");
    success(await edge.sync(nginx()));
    expect(blocks(read()).map(([names]) => names)).toEqual(["shop.customer-eight.com", "*.tenants.customer-eight.com"]);

    edge.service.certificates.delete(tenants.id);
    expect(failure(await edge.sync({ ...nginx(), reload: "exit 3" }))).toBe("reload command failed (exit 3): the new files are in place");
    expect(blocks(read()).map(([names]) => names)).toEqual(["shop.customer-eight.com"]);
    expect(existsSync(join(edge.out, "_wildcard.tenants.customer-eight.com.key"))).toBe(false);
    loadable();
    // The owed reload runs at the next sync, nothing else changing; then the edge is clean.
    const owed = success(await edge.sync({ ...nginx(), reload: "true" }));
    expect(owed).toMatchObject({ written: 0, removed: 0, reloaded: true });
    expect(success(await edge.sync({ ...nginx(), reload: "true" }))).toMatchObject({ reloaded: false });
    expect(existsSync(join(edge.out, "shop.customer-eight.com.crt"))).toBe(true);
  });

  it("writes nothing when the include cannot be written: the new pairs are not renamed into place and a removed pair's files stay", async () => {
    const shop = edge.service.addHostname("shop.customer-eight.com");
    const tenants = edge.service.addHostname("*.tenants.customer-eight.com");
    success(await edge.sync(nginx()));
    const before = edge.files();
    const text = read();
    edge.service.certificates.delete(tenants.id);
    edge.service.renew(shop.id);
    // An include in a directory that does not exist: its write fails after the pairs' were staged.
    const elsewhere = join(edge.root, "nginx", "missing", "zone-1.conf");
    const failed = failure(await edge.sync({ nginx: { include: elsewhere, site } }));
    expect(failed).toMatch(/^writing into .* failed, nothing changed: ENOENT: .*nginx\/missing\/\.edge-tmp-/);
    expect(edge.files()).toEqual(before);
    expect(read()).toBe(text);
  });

  it("never overwrites a file it did not render: a hand-written configuration, or another zone's include", async () => {
    edge.service.addHostname("shop.customer-eight.com");
    const hand = "server {\n    listen 443 ssl;\n    server_name shop.customer-eight.com;\n}\n";
    writeFileSync(include, hand);
    expect(failure(await edge.sync(nginx()))).toBe(
      `--nginx-include ${include} exists and is not this zone's include (its first line is not "${includeHeader("zone-1")}"): refusing to overwrite it`,
    );
    expect(read()).toBe(hand);
    // Refused before anything was fetched or written.
    expect(edge.service.requests).toEqual([]);
    expect(edge.files()).toEqual([]);

    writeFileSync(include, emptiedInclude("zone-2"));
    expect(failure(await edge.sync(nginx()))).toMatch(/exists and is not this zone's include/);
    // An empty file (made so that nginx could start before the first sync) is taken.
    writeFileSync(include, "");
    expect(success(await edge.sync(nginx()))).toMatchObject({ written: 1 });
    expect(blocks(read())).toHaveLength(1);
  });

  it("refuses a snippet that does not exist, and an include named as a pair's file", async () => {
    edge.service.addHostname("shop.customer-eight.com");
    expect(failure(await edge.sync({ nginx: { include, site: join(edge.root, "missing.conf") } }))).toBe(
      `--nginx-site ${join(edge.root, "missing.conf")} does not exist: every rendered server block includes it, so nginx would refuse the configuration`,
    );
    expect(edge.files()).toEqual([]);
    const clash = join(edge.out, "shop.customer-eight.com.crt");
    expect(failure(await edge.sync({ nginx: { include: clash, site } }))).toBe(`--nginx-include ${clash} is the name of a certificate's file: choose another`);
    expect(edge.files()).toEqual([]);
  });

  it("empties the include it rendered when --nginx-include is dropped or moved, so it names no pair it may remove", async () => {
    const tenants = edge.service.addHostname("*.tenants.customer-eight.com");
    success(await edge.sync(nginx()));
    edge.service.certificates.delete(tenants.id);
    const synced = success(await edge.sync());
    expect(synced.lines).toContain(`nginx include ${include}: 0 server blocks`);
    expect(read()).toBe(emptiedInclude("zone-1"));
    expect(JSON.parse(readFileSync(join(edge.out, ".edge-sync-zone-1.json"), "utf8")).nginx_include).toBeNull();
    // Once emptied, later syncs leave it alone.
    expect(success(await edge.sync()).lines.some((line) => line.startsWith("nginx include"))).toBe(false);
  });

  it("the command line takes both flags or neither, as absolute paths nginx can read as they are", async () => {
    const base = ["sync", "--dir", edge.dir, "--url", edge.service.url, "--token", edge.service.token, "--zone", "zone-1", "--out", edge.out];
    const cases: Array<[string[], string]> = [
      [["--nginx-include", include], "--nginx-include FILE and --nginx-site SNIPPET go together"],
      [["--nginx-site", site], "--nginx-include FILE and --nginx-site SNIPPET go together"],
      [["--nginx-include", site, "--nginx-site", site], "--nginx-include and --nginx-site must be different files"],
      [["--nginx-include", include, "--nginx-site", "/etc/nginx/my site.conf"], '--nginx-site "/etc/nginx/my site.conf" cannot be written into nginx\'s configuration'],
      [["--nginx-include", include, "--nginx-site", "/etc/nginx/$site.conf"], '--nginx-site "/etc/nginx/$site.conf" cannot be written into nginx\'s configuration'],
      [["--nginx-include", include, "--nginx-site", "/etc/nginx/a;b.conf"], '--nginx-site "/etc/nginx/a;b.conf" cannot be written into nginx\'s configuration'],
    ];
    for (const [extra, message] of cases) {
      const output = capture();
      expect(await run([...base, ...extra], output), extra.join(" ")).toBe(2);
      expect(output.stderr.join("\n"), extra.join(" ")).toContain(`edge: ${message}`);
    }
    const output = capture();
    expect(await run(["sync", ...base.slice(1, -1), "/tmp/out dir", "--nginx-include", include, "--nginx-site", site], output)).toBe(2);
    expect(output.stderr[0]).toContain(`--out "/tmp/out dir" cannot be written into nginx's configuration`);
  });
});
