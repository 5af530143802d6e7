// Head-of-line blocking: gets in a scope while that scope takes a burst of
// rsa2048 creates (beyond its pool), gets in another scope meanwhile, and
// the floor Worker of the same process.
import type { Bench } from "../lib/bench.ts";
import type { Endpoint } from "../lib/load.ts";
import { load } from "../lib/load.ts";

/** `getB`: a get of one CSR in another scope. */
export async function headOfLine(bench: Bench, getB: Endpoint): Promise<void> {
  const { client, results, durations: D } = bench;
  await bench.seed("zones", "bench-hol", 5);
  const [holId] = await client.listIds("zones", "bench-hol", 5);
  const [burst, same, other, floorDuring] = await Promise.all([
    load({ ...client.create("zones", "bench-hol", "rsa2048"), connections: 4, duration: D.rsa }),
    load({ url: `${client.api}/zones/bench-hol/custom_csrs/${holId}`, headers: bench.auth, connections: 1, duration: D.rsa }),
    load({ ...getB, connections: 1, duration: D.rsa }),
    load({ url: `${bench.floorUrl}/`, connections: 1, duration: D.rsa }),
  ]);
  results.record("burst: rsa2048 creates in scope A", `4 conn, ${D.rsa} s`, burst);
  results.record("during burst: get in scope A", `1 conn, ${D.rsa} s`, same);
  results.record("during burst: get in scope B", `1 conn, ${D.rsa} s`, other);
  results.record("during burst: floor Worker", `1 conn, ${D.rsa} s`, floorDuring);
  results.notes.push(
    `Head-of-line: an RSA-2048 key is generated synchronously on workerd's one JavaScript thread (50–65 ms each), so while scope A takes rsa2048 creates, gets in A queue behind them, and here every other scope and Worker of the process waits too (compare the idle p50/p99 of the get and floor rows). These rows vary a lot between runs (p99 from 0.3 s to 10 s): which request gets the thread between two keys is not fair.`,
  );
}
