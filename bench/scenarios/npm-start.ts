// create p256v1 and get one CSR, on workerd direct and through `npm start`
// (the same bundle behind its launcher, on the data directory of the cold
// starts), in interleaved rounds with the order alternating, so that
// machine drift hits both alike: their ratio is a target (≥ 0.9).
import type { Bench } from "../lib/bench.ts";
import type { Endpoint, LoadResult, ServerPids } from "../lib/load.ts";
import { combine, load } from "../lib/load.ts";
import { startNpmStart } from "../lib/peers.ts";
import type { RowWithIdle } from "../lib/results.ts";
import type { NpmStartData } from "./cold-start.ts";

/** One endpoint, on workerd direct and through npm start. */
export interface Paired {
  direct: RowWithIdle;
  start: RowWithIdle;
}

type Side = "direct" | "start";
type Kind = "create" | "get";

/** `getDirect`: a get of one CSR on workerd direct. */
export async function npmStartVsDirect(bench: Bench, data: NpmStartData, getDirect: Endpoint): Promise<Record<Kind, Paired>> {
  const { durations: D, connections: C, client, results, auth } = bench;
  const npmStart = await startNpmStart({ dataDir: data.dataDir, secrets: bench.secrets });
  const startApi = `${npmStart.url}/client/v4`;
  const sides: Record<Side, { pid: ServerPids } & Record<Kind, Endpoint>> = {
    direct: { pid: bench.workerd.pid, create: client.create("zones", "bench-p256", "p256v1"), get: getDirect },
    start: {
      pid: npmStart.pids,
      create: { ...client.create("zones", "bench-p256", "p256v1"), url: `${startApi}/zones/bench-p256/custom_csrs` },
      get: { url: `${npmStart.url}${data.getPath}`, headers: auth },
    },
  };
  const rounds = bench.quick ? 2 : 3;
  const paired = async (kind: Kind): Promise<Paired> => {
    const runs: Record<Side, LoadResult[]> = { direct: [], start: [] };
    for (let round = 0; round < rounds; round++) {
      for (const side of round % 2 ? (["start", "direct"] as const) : (["direct", "start"] as const)) {
        runs[side].push(await load({ ...sides[side][kind], connections: C, duration: D.load, pid: sides[side].pid }));
      }
    }
    const label = `${C} conn, ${rounds} × ${D.load} s interleaved`;
    const name = kind === "create" ? "create p256v1" : "get one CSR";
    return {
      direct: results.record(name, label, combine(runs.direct), await load({ ...sides.direct[kind], connections: 1, duration: D.idle })),
      start: results.record(`npm start: ${name}`, label, combine(runs.start), await load({ ...sides.start[kind], connections: 1, duration: D.idle })),
    };
  };
  const create = await paired("create");
  const get = await paired("get");
  await npmStart.stop();
  return { create, get };
}
