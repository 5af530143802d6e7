#!/usr/bin/env node
// `npm run edge` and the root package's `edge` bin: the edge agent
// (packages/edge-agent), rebuilt first when its sources changed since
// dist/edge.mjs was built, then run in this process with these arguments.
// The agent itself is dist/edge.mjs: one file an edge host can run with
// plain Node 20 or later (packages/edge-agent/README.md).
import { pathToFileURL } from "node:url";
import { ensureEdgeBuild } from "../packages/edge-agent/build.mjs";
import { starterOf, watchStarter } from "./starter-watch.mjs";

// The watch npm start has too (scripts/starter-watch.mjs): npm sent
// SIGTERM or SIGINT may end, or hold the signal, without passing it on to
// `edge sync --watch`, which then hears it from here as SIGTERM and stops
// as it does for one (exit 0). A one-shot command has no SIGTERM handler
// and is left to finish.
watchStarter(starterOf(), () => {
  if (process.listenerCount("SIGTERM") > 0) process.kill(process.pid, "SIGTERM");
});

let bin;
try {
  ({ bin } = await ensureEdgeBuild());
} catch (error) {
  process.stderr.write(`edge: cannot build packages/edge-agent (npm install first?): ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
await import(pathToFileURL(bin).href);

