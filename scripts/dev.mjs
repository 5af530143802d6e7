// `npm run dev`: wrangler dev (live reload, Miniflare) for working on the
// Worker. Completes .dev.vars, prints a working example request, then runs
// `wrangler dev` with any flags passed after `--` (e.g. --port, --persist-to).
// Its state goes to .wrangler/state unless --persist-to says otherwise.
import { spawn } from "node:child_process";
import { exampleRequest } from "./banner.mjs";
import { toolEnv } from "./bundle.mjs";
import { ensureDevVars } from "./dev-vars.mjs";

const vars = ensureDevVars();

const args = process.argv.slice(2);
const portIndex = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
const port =
  portIndex === -1 ? "8787" : args[portIndex].includes("=") ? args[portIndex].split("=")[1] : args[portIndex + 1];

console.log(exampleRequest(`http://localhost:${port}`, vars.API_TOKEN_SECRET));

// Flags pass straight through; the port defaults to wrangler's own 8787.
const wranglerArgs = ["dev", ...(portIndex === -1 ? ["--port", port] : []), ...args];
const child = spawn("wrangler", wranglerArgs, { stdio: "inherit", env: toolEnv({ WRANGLER_LOG: process.env.WRANGLER_LOG ?? "info" }) });
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
