// The floors: what the runtime costs before the API does anything. A trivial
// Worker, the same plus one Durable Object RPC (a noop, and one returning a
// CSR-sized record: the most a get can reach), and the runtime's own P-256
// key generation (bench/workers/floor.js).
import type { Bench } from "../lib/bench.ts";
import type { RowWithIdle } from "../lib/results.ts";

export interface Floors {
  floor: RowWithIdle;
  floorDo: RowWithIdle;
  floorRecord: RowWithIdle;
  keygenP256: RowWithIdle;
}

export async function floors(bench: Bench): Promise<Floors> {
  const { floorUrl } = bench;
  const { pid } = bench.workerd;
  return {
    floor: await bench.measure("floor Worker (small JSON)", null, { url: `${floorUrl}/` }, { pid }),
    floorDo: await bench.measure("floor Worker + Durable Object RPC (noop)", null, { url: `${floorUrl}/do/noop` }, { pid }),
    floorRecord: await bench.measure("floor Worker + Durable Object RPC (a CSR-sized record)", null, { url: `${floorUrl}/do/record` }, { pid }),
    keygenP256: await bench.measure("runtime keygen P-256 (generateKey only)", null, { url: `${floorUrl}/keygen/p256v1` }, { pid }),
  };
}
