// RSA-2048 beyond the key pool: the runtime's key generation alone (the
// floor Worker) and create rsa2048 into a scope whose pool is off,
// interleaved in rounds so machine drift hits both alike. Their ratio is a
// target; the keygen's own spread gives its standard error.
import type { Bench } from "../lib/bench.ts";
import type { LoadResult } from "../lib/load.ts";
import { combine, load } from "../lib/load.ts";
import type { RowWithIdle } from "../lib/results.ts";

export interface RsaBeyondPool {
  keygen: RowWithIdle;
  create: RowWithIdle;
  /** Coefficient of variation of one key's generation time. */
  keygenCv: number;
}

export async function rsaBeyondPool(bench: Bench): Promise<RsaBeyondPool> {
  const { durations: D, connections: C, client, results } = bench;
  const { pid } = bench.workerd;
  // The scope's pool is off: this is the rate beyond the pool, and a refill
  // between rounds would take CPU from the keygen rounds.
  await client.setKeyPool("zones", "bench-rsa", 0);
  const rounds: { keygen: LoadResult[]; create: LoadResult[] } = { keygen: [], create: [] };
  const keygenTarget = { url: `${bench.floorUrl}/keygen/rsa2048` };
  const createTarget = client.create("zones", "bench-rsa", "rsa2048");
  for (let round = 0; round < D.rsaRounds; round++) {
    rounds.keygen.push(await load({ ...keygenTarget, connections: C, duration: D.rsa, pid }));
    rounds.create.push(await load({ ...createTarget, connections: C, duration: D.rsa, pid }));
  }
  const label = `${C} conn, ${D.rsaRounds} × ${D.rsa} s interleaved`;
  const keygenIdle = await load({ ...keygenTarget, connections: 1, duration: D.idle });
  // One connection: each latency is about one key's generation time, so their spread is the keygen's own.
  const times = keygenIdle.latencies;
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const sd = Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, times.length - 1));
  const keygen = results.record("runtime keygen RSA-2048 (generateKey only)", label, combine(rounds.keygen), keygenIdle);
  const create = results.record("create rsa2048", label, combine(rounds.create), await load({ ...createTarget, connections: 1, duration: D.idle }));
  return { keygen, create, keygenCv: sd / mean };
}
