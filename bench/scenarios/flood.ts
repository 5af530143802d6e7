// One tenant against the others (issue 19, item 3): a flood of 100
// concurrent rsa2048 creates into one zone (its key pool off) while one
// connection gets a CSR of another zone. The other zone's get p99 is a
// target (≤ 200 ms).
import type { Bench } from "../lib/bench.ts";
import { BODY } from "../lib/body.ts";
import type { Endpoint } from "../lib/load.ts";
import { load } from "../lib/load.ts";
import type { RowWithIdle } from "../lib/results.ts";

const FLOOD = 100;

/** `getOther`: a get of one CSR in another zone. The note opens the report's fairness note. */
export async function flood(bench: Bench, getOther: Endpoint): Promise<{ during: RowWithIdle; note: string }> {
  const { client, results } = bench;
  await client.setKeyPool("zones", "bench-flood", 0);
  const idle = await load({ ...getOther, connections: 1, duration: bench.quick ? 2 : 4 });
  const creates = load({ url: `${client.api}/zones/bench-flood/custom_csrs`, method: "POST", headers: bench.auth, body: { ...BODY, key_type: "rsa2048" }, connections: FLOOD, amount: FLOOD });
  const [flooded, other] = await Promise.all([creates, load({ ...getOther, connections: 1, duration: 300, stopWhen: creates })]);
  results.record(`flood: ${FLOOD} concurrent rsa2048 creates into one zone (pool off; ${flooded.ok} created, ${flooded.non2xx} told 429)`, `${FLOOD} conn, ${FLOOD} creates`, flooded);
  const during = results.record("during the flood: get in another zone", "1 conn, while the flood ran", other, idle);
  bench.log(`flood: ${flooded.ok} created, ${flooded.non2xx} refused; other zone's get p99 ${during.p99?.toFixed(1)} ms`);
  return {
    during,
    note:
      `Fairness (issue 19): ${FLOOD} concurrent rsa2048 creates into one zone with its pool off: ${flooded.ok} created, ${flooded.non2xx} refused with 429 (971, Retry-After: 1); ` +
      `a get in another zone meanwhile: p99 ${during.p99?.toFixed(1)} ms (idle ${idle.p99?.toFixed(2)} ms).`,
  };
}
