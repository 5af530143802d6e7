// The `edge` program (bin): packages/edge-agent/dist/edge.mjs, bundled from
// here for plain Node 20 or later (README.md of this package).
import { run } from "./cli.ts";

process.exitCode = await run(process.argv.slice(2));
