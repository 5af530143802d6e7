// RSA bursts against a ready key pool: rounds of a burst of POOL rsa2048
// creates at 4 connections into a scope whose pool holds POOL keys, while
// one connection gets a CSR of that scope (A) and one a CSR of another (B);
// between rounds nothing runs and the pool refills. Beside it, bursts of
// p256v1 creates of the same size and connections, and the gets' idle latency.
import type { Bench } from "../lib/bench.ts";
import type { Endpoint, LoadResult } from "../lib/load.ts";
import { combine, load } from "../lib/load.ts";
import type { Row, RowWithIdle } from "../lib/results.ts";

export interface PoolBurst {
  /** Keys in the pool, and creates per burst. */
  pool: number;
  rsa: Row;
  p256: Row;
  duringA: RowWithIdle;
  duringB: RowWithIdle;
}

/** `getB`: a get of one CSR in another scope. */
export async function poolBurst(bench: Bench, getB: Endpoint): Promise<PoolBurst> {
  const { client, results, durations: D } = bench;
  const POOL = bench.quick ? 8 : 32;
  await client.setKeyPool("zones", "bench-pool", POOL);
  const getA = { url: `${client.api}/zones/bench-pool/custom_csrs/${await client.createOne("zones", "bench-pool")}`, headers: bench.auth };
  const poolReady = async () => {
    // Polls are requests, and the pool fills only once the server has been idle: poll slowly.
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 1_000));
      if ((await client.poolAvailable("zones", "bench-pool")) >= POOL) return;
    }
    bench.fail("the bench-pool key pool did not fill within 2 minutes");
  };
  const idleA = await load({ ...getA, connections: 1, duration: D.idle });
  const idleB = await load({ ...getB, connections: 1, duration: D.idle });
  const rounds: Record<"rsa" | "p256" | "a" | "b", LoadResult[]> = { rsa: [], p256: [], a: [], b: [] };
  for (let round = 0; round < (bench.quick ? 2 : 5); round++) {
    await poolReady();
    const burst = load({ ...client.create("zones", "bench-pool", "rsa2048"), connections: 4, amount: POOL });
    const [b, a, other] = await Promise.all([
      burst,
      load({ ...getA, connections: 1, duration: 120, stopWhen: burst }),
      load({ ...getB, connections: 1, duration: 120, stopWhen: burst }),
    ]);
    rounds.rsa.push(b);
    rounds.a.push(a);
    rounds.b.push(other);
    rounds.p256.push(await load({ ...client.create("zones", "bench-pool-p256", "p256v1"), connections: 4, amount: POOL }));
  }
  const label = `4 conn, ${rounds.rsa.length} × ${POOL} creates`;
  return {
    pool: POOL,
    rsa: results.record(`pool burst: rsa2048 creates, ${POOL} pooled keys ready`, label, combine(rounds.rsa)),
    p256: results.record(`the same burst of p256v1 creates`, label, combine(rounds.p256)),
    duringA: results.record("during pool burst: get in scope A", "1 conn, while the bursts ran", combine(rounds.a), idleA),
    duringB: results.record("during pool burst: get in scope B", "1 conn, while the bursts ran", combine(rounds.b), idleB),
  };
}
