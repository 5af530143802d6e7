// cfssl's newkey endpoint: the same job (a key and a CSR with the same
// subject and SANs), no storage, no auth; ECDSA P-256 and RSA-2048.
import type { Bench } from "../lib/bench.ts";
import { BODY } from "../lib/body.ts";
import { ensureCfssl, startCfssl } from "../lib/peers.ts";
import type { RowWithIdle } from "../lib/results.ts";

/** The ECDSA row (a ratio's denominator), or null when cfssl is missing (a note says why). */
export async function cfssl(bench: Bench): Promise<RowWithIdle | null> {
  const found = ensureCfssl(bench.log);
  if (!("path" in found)) {
    bench.results.notes.push(found.note);
    return null;
  }
  const server = await startCfssl(found.path);
  const names = [{ C: BODY.country, ST: BODY.state, L: BODY.locality, O: BODY.organization }];
  const newkey = (algo: string, size: number) => ({
    url: `${server.url}/api/v1/cfssl/newkey`,
    method: "POST",
    body: { hosts: BODY.sans, names, CN: BODY.common_name, key: { algo, size } },
  });
  const p256 = await bench.measure("cfssl newkey ecdsa 256", null, newkey("ecdsa", 256), { pid: server.pid });
  await bench.measure("cfssl newkey rsa 2048", null, newkey("rsa", 2048), { pid: server.pid, duration: bench.durations.rsa });
  await server.stop();
  return p256;
}
