// What a developer sees: the same Worker behind `npm run dev` (wrangler dev),
// create p256v1 and get one CSR.
import { join } from "node:path";
import type { Bench } from "../lib/bench.ts";
import { BODY } from "../lib/body.ts";
import { errorMessage } from "../lib/lifecycle.ts";
import { startWranglerDev } from "../lib/peers.ts";
import type { RowWithIdle } from "../lib/results.ts";

/** The get row, or null when wrangler dev could not be measured (a note says why). */
export async function wranglerDev(bench: Bench): Promise<RowWithIdle | null> {
  try {
    const dev = await startWranglerDev({ dir: join(bench.work, "dev"), secrets: bench.secrets, log: bench.log });
    const devApi = `${dev.url}/client/v4`;
    const create = { url: `${devApi}/zones/bench-dev/custom_csrs`, method: "POST", headers: bench.auth, body: { ...BODY, key_type: "p256v1" } };
    await bench.measure("npm run dev (wrangler dev): create p256v1", null, create, { pid: dev.pids });
    const id = await bench.client.createOne("zones", "bench-dev", "p256v1", devApi);
    const get = await bench.measure("npm run dev (wrangler dev): get one CSR", null, { url: `${create.url}/${id}`, headers: bench.auth }, { pid: dev.pids });
    await dev.stop();
    return get;
  } catch (error) {
    const message = errorMessage(error);
    bench.results.notes.push(`wrangler dev rows are missing: ${message.split("\n")[0]}`);
    bench.log(`wrangler dev failed: ${message}`);
    return null;
  }
}
