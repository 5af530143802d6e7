#!/usr/bin/env node
// `npm run edge` and the root package's `edge` bin: the edge agent
// (packages/edge-agent), rebuilt first when its sources changed since
// dist/edge.mjs was built, then run in this process with these arguments.
// The agent itself is dist/edge.mjs: one file an edge host can run with
// plain Node 20 or later (packages/edge-agent/README.md).
import { pathToFileURL } from "node:url";
import { ensureEdgeBuild } from "../packages/edge-agent/build.mjs";

let bin;
try {
  ({ bin } = await ensureEdgeBuild());
} catch (error) {
  process.stderr.write(`edge: cannot build packages/edge-agent (npm install first?): ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
await import(pathToFileURL(bin).href);
