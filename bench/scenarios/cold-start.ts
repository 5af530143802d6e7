// `npm start` as an operator runs it (its own workerd process, config and
// data directory, the secrets in its environment): how long from spawning
// it to a first answered request, cold (a new process, the build up to
// date). The first start of the run is reported apart (it may build);
// `node scripts/start.mjs`, the systemd unit's command, alternates with
// `npm start`.
import { join } from "node:path";
import type { Bench } from "../lib/bench.ts";
import { startNpmStart } from "../lib/peers.ts";
import { currentBuild } from "../lib/scripts.ts";

/** The data directory the starts used, and the path of a CSR it holds. */
export interface NpmStartData {
  dataDir: string;
  getPath: string;
}

export async function coldStart(bench: Bench): Promise<NpmStartData> {
  const { secrets, auth, results } = bench;
  const dataDir = join(bench.work, "npm-start");
  const buildCached = currentBuild() !== null;
  const first = await startNpmStart({ dataDir, secrets });
  results.startup.push({
    name: `first \`npm start\` of the run (${buildCached ? "build up to date" : "builds dist/workerd first"}), spawn to first answered GET /healthz`,
    runs: [first.coldMs],
  });
  const getPath = `/client/v4/zones/bench-get/custom_csrs/${await bench.client.createOne("zones", "bench-get", "p256v1", `${first.url}/client/v4`)}`;
  await first.stop();
  const cold: Record<"npm" | "node", number[]> = { npm: [], node: [] };
  for (let i = 0; i < (bench.quick ? 2 : 6); i++) {
    const via = i % 2 ? "node" : "npm";
    const s = await startNpmStart({ dataDir, secrets, probe: getPath, headers: auth, via });
    cold[via].push(s.coldMs);
    await s.stop();
  }
  results.startup.push(
    { name: "`npm start`, cold (a new process, build up to date): spawn to first answered GET of a CSR", runs: cold.npm },
    { name: "`node scripts/start.mjs` (the systemd unit's command), the same", runs: cold.node },
  );
  bench.log(`cold start to a first answered get: npm start ${cold.npm.map((x) => x.toFixed(0)).join(", ")} ms; node scripts/start.mjs ${cold.node.map((x) => x.toFixed(0)).join(", ")} ms`);
  return { dataDir, getPath };
}
