// `npm start`: completes .dev.vars, prints a working example request, then
// runs `wrangler dev` with any flags passed after `--` (e.g. --port, --persist-to).
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ensureDevVars } from "./dev-vars.mjs";

ensureDevVars();

const args = process.argv.slice(2);
const portIndex = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
const port =
  portIndex === -1 ? "8787" : args[portIndex].includes("=") ? args[portIndex].split("=")[1] : args[portIndex + 1];

const tokenScript = fileURLToPath(new URL("./token.mjs", import.meta.url));
const token = execFileSync(process.execPath, [tokenScript, "--account", "demo-account", "--zone", "demo-zone"], {
  encoding: "utf8",
}).trim();

console.log(`
Custom CSR API on http://localhost:${port}
A token for account "demo-account" and zone "demo-zone" (valid for a day):

  export CLOUDFLARE_API_TOKEN=${token}

  curl -s http://localhost:${port}/client/v4/zones/demo-zone/custom_csrs \\
    -H "Authorization: Bearer $CLOUDFLARE_API_TOKEN" -H "Content-Type: application/json" \\
    -d '{"common_name":"app.customer-one.com","country":"US","state":"California","locality":"San Francisco","organization":"Customer One","sans":["app.customer-one.com"],"key_type":"p256v1"}'

More tokens: npm run --silent token -- --account ID [--zone ID] [--read-only]
`);

// Flags pass straight through; the port defaults to wrangler's own 8787.
const wranglerArgs = ["dev", ...(portIndex === -1 ? ["--port", port] : []), ...args];
const child = spawn("wrangler", wranglerArgs, {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
