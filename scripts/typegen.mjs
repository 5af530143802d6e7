// `npm run cf-typegen`: regenerates worker-configuration.d.ts with `wrangler
// types`, from wrangler.toml and the secret names (scripts/dev-vars.mjs).
// wrangler reads secret names from an env file; it gets one with the names
// and no values (under dist/, at a fixed path, so the generated header stays
// the same), so no .dev.vars (and no secret) is ever created.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./bundle.mjs";
import { OPTIONAL_SECRET_NAMES, SECRET_NAMES } from "./dev-vars.mjs";

const names = join("dist", "secret-names.env");
mkdirSync(join(ROOT, "dist"), { recursive: true });
writeFileSync(join(ROOT, names), [...SECRET_NAMES, ...OPTIONAL_SECRET_NAMES].map((name) => `${name}=\n`).join(""));
try {
  const wrangler = join(ROOT, "node_modules", ".bin", "wrangler");
  const run = spawnSync(wrangler, ["types", "--include-runtime", "false", "--strict-vars", "false", "--env-file", names], { cwd: ROOT, stdio: "inherit" });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(join(ROOT, names), { force: true });
}
