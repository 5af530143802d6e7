// What the agent prints of what a server said: nothing that can move a
// terminal's cursor or forge a line of its output.
import { describe, expect, it } from "vitest";
import { certificateLine, printable, summaryLine } from "../src/output.ts";
import { type Edge, makeEdge, success } from "./harness.ts";

describe("printable", () => {
  it("escapes control characters, anything outside printable ASCII, and the backslash", () => {
    expect(printable("shop.example.com")).toBe("shop.example.com");
    expect(printable("a\nedge sync: forged")).toBe("a\\u000aedge sync: forged");
    expect(printable("\x1b[2J\r\t\x00\x7f")).toBe("\\u001b[2J\\u000d\\u0009\\u0000\\u007f");
    expect(printable("\u009b31m")).toBe("\\u009b31m");
    expect(printable("bücher.example")).toBe("b\\u00fccher.example");
    expect(printable("a\\u000ab")).toBe("a\\\\u000ab");
    expect(printable(undefined)).toBe("undefined");
  });

  it("is applied to every host and expiry printed", () => {
    expect(certificateLine("id", true, ["a.example\n", 7], "2030\x1b")).toBe("id written hosts=a.example\\u000a,7 expires_on=2030\\u001b");
    expect(summaryLine({ zone: "z", edge: "e", certificates: 1, written: 0, removed: 0, reloaded: true, ms: 12.4 })).toBe(
      "edge sync: zone z, edge e: 1 certificate, 0 written, 1 unchanged, 0 removed, reloaded (12 ms)",
    );
  });

  it("keeps a sync's output one line per certificate whatever the service's hosts hold", async () => {
    const edge: Edge = await makeEdge();
    try {
      const a = edge.service.add("a.example.com");
      edge.service.certificates.set(a.id, { ...a, hosts: ["a.example.com\nedge sync: zone zone-1, edge edge-1: 0 certificates", "\x1b]0;title\x07"] });
      const synced = success(await edge.sync());
      expect(synced.lines).toHaveLength(2);
      expect(synced.lines[0]).toBe(`${a.id} written hosts=a.example.com\\u000aedge sync: zone zone-1, edge edge-1: 0 certificates,\\u001b]0;title\\u0007 expires_on=2030-12-31T00:00:00.000Z`);
      expect(synced.lines.join("\n")).not.toMatch(/[^\x20-\x7e\n]/);
    } finally {
      await edge.close();
    }
  });
});
