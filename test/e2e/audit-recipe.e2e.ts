// docs/audit.md's verification recipe, executed as written: its ```js
// audit-recipe block, saved as a file and run with plain Node on a real
// export of a zone's trail (the admin export route of `npm start`): it must
// say ok with every MAC checked under the KEK; on a copy with one entry's
// metadata changed, or one entry dropped, it must name the entry and exit 1.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { call, csrBody } from "./api";
import { mintToken, scopeId } from "./credentials";
import { REPO_ROOT, type TestServer, startServer } from "./server";
import { runAsync } from "./tls-edge";

const ZONE = scopeId("recipe");
let server: TestServer;
let script: string;
let exported: string;

describe("docs/audit.md's recipe, run as written", () => {
  beforeAll(async () => {
    server = await startServer({ root: inject("e2eRoot"), name: "audit-recipe" });
    const block = /^```js audit-recipe\n([\s\S]*?)^```$/m.exec(readFileSync(join(REPO_ROOT, "docs", "audit.md"), "utf8"))?.[1];
    expect(block, "the recipe's block in docs/audit.md").toBeDefined();
    script = join(server.dir, "verify-audit.mjs");
    writeFileSync(script, block!);
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
    for (let i = 0; i < 3; i++) expect((await call(server.origin, "POST", `/client/v4/zones/${ZONE}/custom_csrs`, { token, json: csrBody({ key_type: "p256v1" }) })).status).toBe(201);
    const reply = await fetch(`${server.origin}/admin/v1/zones/${ZONE}/audit/export`, { headers: { authorization: `Bearer ${server.secrets.ADMIN_SECRET}` } });
    expect(reply.status).toBe(200);
    exported = await reply.text();
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  const verify = (input: string) => runAsync(process.execPath, [script, `zones:${ZONE}`, server.secrets.KEY_ENCRYPTION_KEYS.split(",")[0]!], { input });

  it("says ok for the real export, every MAC checked, and the head is the stats head", async () => {
    const ran = await verify(exported);
    expect(ran.code, ran.stderr).toBe(0);
    const stats = await fetch(`${server.origin}/admin/v1/zones/${ZONE}/stats`, { headers: { authorization: `Bearer ${server.secrets.ADMIN_SECRET}` } });
    const head = ((await stats.json()) as { result: { audit: { entries: number; head: string } } }).result.audit;
    expect(ran.stdout.trim()).toBe(`ok ${head.entries} entries, head ${head.head}, ${head.entries} MACs checked`);
  });

  it("names the entry that was changed, or the one after a gap, and exits 1", async () => {
    const lines = exported.trim().split("\n");
    const second = JSON.parse(lines[1]!) as { id: string; chain: { seq: number; metadata: string } };
    const edited = [lines[0], JSON.stringify({ ...second, chain: { ...second.chain, metadata: second.chain.metadata.replace("p256v1", "rsa2048") } }), ...lines.slice(2)].join("\n");
    const changed = await verify(`${edited}\n`);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain(`broken at entry ${second.chain.seq} (${second.id}): its hash or its link`);
    const third = JSON.parse(lines[2]!) as { id: string; chain: { seq: number } };
    const dropped = await verify(`${[lines[0], ...lines.slice(2)].join("\n")}\n`);
    expect(dropped.code).toBe(1);
    expect(dropped.stderr).toContain(`broken at entry ${third.chain.seq} (${third.id})`);
  });
});
