// What every scenario of `npm run bench` is given: the run's settings, the
// servers under test, a client of the API, the seeders, and the results
// collector with its `measure` (a saturated load, then an idle one).
import type { ApiClient } from "./api-client.ts";
import { apiClient } from "./api-client.ts";
import { BODY } from "./body.ts";
import type { Secrets } from "./fixtures.ts";
import type { Log } from "./lifecycle.ts";
import type { Endpoint, Headers, ServerPids } from "./load.ts";
import { load } from "./load.ts";
import type { RowWithIdle } from "./results.ts";
import { Results } from "./results.ts";
import type { Seeder } from "./seeding.ts";
import { seeder } from "./seeding.ts";
import type { Workerd } from "./workerd.ts";

/** Seconds per load: saturated for req/s and loaded latency, one connection for idle latency, RSA loads (longer: keys vary a lot). */
export interface Durations {
  load: number;
  idle: number;
  rsa: number;
  /** Interleaved rounds of RSA keygen and create. */
  rsaRounds: number;
}

/** The Workers of the bench's workerd process. */
export type BenchWorkers = "api" | "floor" | "seed";

export interface Bench extends Seeder {
  /** Small scopes, short loads: for trying the harness. */
  readonly quick: boolean;
  readonly durations: Durations;
  /** Connections of a saturated load. */
  readonly connections: number;
  /** The run's temp dir. */
  readonly work: string;
  readonly secrets: Secrets;
  /** The run's API token, as a header. */
  readonly auth: Headers;
  /** The admin secret, as a header. */
  readonly admin: Headers;
  readonly client: ApiClient;
  /** The workerd process serving the API, the floor and the seeder ("workerd direct"). */
  readonly workerd: Workerd<BenchWorkers>;
  /** The floor Worker's origin. */
  readonly floorUrl: string;
  readonly results: Results;
  readonly log: Log;
  /** Stops the run with what went wrong and the end of workerd's log. */
  fail(what: string): never;
  /** A saturated load (its row) and then a one-connection load (its idle latency), recorded as one row. */
  measure(name: string, label: string | null, target: Endpoint, options?: { duration?: number; idle?: number; pid?: ServerPids; connections?: number }): Promise<RowWithIdle>;
}

export function createBench({
  quick,
  durations,
  connections,
  work,
  secrets,
  token,
  workerd,
  httpSeedBudgetSeconds,
  log,
}: {
  quick: boolean;
  durations: Durations;
  connections: number;
  work: string;
  secrets: Secrets;
  token: string;
  workerd: Workerd<BenchWorkers>;
  httpSeedBudgetSeconds: number;
  log: Log;
}): Bench {
  const auth = { authorization: `Bearer ${token}` };
  const admin = { authorization: `Bearer ${secrets.ADMIN_SECRET}` };
  const fail = (what: string): never => {
    throw new Error(`${what}; workerd ${workerd.exited() ?? "running"}; its log ends:\n${workerd.logTail()}`);
  };
  const results = new Results(log);
  const client = apiClient({ origin: `http://127.0.0.1:${workerd.ports.api}`, auth, admin, body: BODY, fail });
  const seeds = seeder({ client, seedUrl: `http://127.0.0.1:${workerd.ports.seed}`, httpBudgetSeconds: httpSeedBudgetSeconds, seeding: results.seeding, log, fail });
  return {
    quick,
    durations,
    connections,
    work,
    secrets,
    auth,
    admin,
    client,
    workerd,
    floorUrl: `http://127.0.0.1:${workerd.ports.floor}`,
    results,
    log,
    fail,
    seed: seeds.seed,
    seedAudit: seeds.seedAudit,
    async measure(name, label, target, { duration = durations.load, idle = durations.idle, pid, connections: c = connections } = {}) {
      const loaded = await load({ ...target, connections: c, duration, pid });
      const quiet = await load({ ...target, connections: 1, duration: idle });
      return results.record(name, label ?? `${c} conn, ${duration} s`, loaded, quiet);
    },
  };
}
