// The shared parser on its own: what it accepts, and the one line it fails
// with for each way a command line can be wrong.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseFlags } from "../src/flags.ts";

class Refused extends Error {}
const fail = (message: string): never => {
  throw new Refused(message);
};
const OPTIONS = { dir: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" }, zone: { type: "string", multiple: true } } as const;
const refusal = (argv: string[]): string => {
  try {
    parseFlags(argv, OPTIONS, fail);
  } catch (error) {
    if (error instanceof Refused) return error.message;
    throw error;
  }
  throw new Error(`accepted ${argv.join(" ")}`);
};

describe("parseFlags", () => {
  it("gives each declared flag its value; absent ones are undefined", () => {
    expect(parseFlags(["--dir", "/etc/x", "--force"], OPTIONS, fail)).toEqual({ dir: "/etc/x", force: true });
    expect(parseFlags(["--dir=-x", "-h"], OPTIONS, fail)).toEqual({ dir: "-x", help: true });
    expect(parseFlags([], OPTIONS, fail)).toEqual({});
    expect(parseFlags(["--zone", "a", "--zone", "b"], OPTIONS, fail)).toEqual({ zone: ["a", "b"] });
  });

  it("refuses unknown flags, positionals, missing and flag-like values, and a flag given twice", () => {
    expect(refusal(["--nope"])).toMatch(/Unknown option '--nope'/);
    expect(refusal(["extra"])).toMatch(/^Unexpected argument 'extra'/);
    expect(refusal(["--dir"])).toMatch(/--dir <value>' argument missing/);
    expect(refusal(["--dir", "--force"])).toMatch(/argument is ambiguous/);
    expect(refusal(["--dir", "a", "--dir", "b"])).toBe("--dir given twice");
    expect(refusal(["--force", "--force"])).toBe("--force given twice");
    expect(refusal(["-h", "--help"])).toBe("--help given twice");
  });

  it("lets onError answer a parse error first", () => {
    const seen: string[] = [];
    expect(() => parseFlags(["--moved"], OPTIONS, fail, (error) => seen.push(error.message))).toThrow(Refused);
    expect(seen).toEqual([expect.stringMatching(/'--moved'/)]);
  });

  it("usageError prints the name, the message and the usage on stderr and exits 2 (through scripts/cli.mjs, on the project's Node)", () => {
    const cli = fileURLToPath(new URL("../../../scripts/cli.mjs", import.meta.url));
    const node = fileURLToPath(new URL("../../../node_modules/.bin/node", import.meta.url));
    const script = `import { parseFlags, usageError } from ${JSON.stringify(cli)};
      parseFlags(process.argv.slice(1), { port: { type: "string" } }, (m) => usageError("demo", "usage: demo [--port N]", m));`;
    const ran = spawnSync(node, ["--input-type=module", "-e", script, "--", "--port", "1", "--port", "2"], { encoding: "utf8" });
    expect([ran.status, ran.stdout, ran.stderr]).toEqual([2, "", "demo: --port given twice\nusage: demo [--port N]\n"]);
  });
});
