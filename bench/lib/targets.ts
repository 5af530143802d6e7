// The report's ratio table: each target with its verdict (pass/fail), and
// figures shown for information. Ratios, because on a noisy shared machine
// they matter more than the absolute figures.
import type { Row, RowWithIdle, Target } from "./results.ts";

/** What the targets are computed from: the rows and points of the scenarios. */
export interface Measurements {
  floors: { floor: Row; floorDo: Row; floorRecord: Row; keygenP256: Row };
  rsa: { keygen: Row; create: Row; keygenCv: number };
  direct: { create: Row; get: Row };
  npmStart: { create: Row; get: Row };
  lists: {
    small: number;
    large: number;
    middle: RowWithIdle;
    at(size: number, page: "first" | "last"): { p50: number | null; idleP50: number | null };
  };
  audit: { small: AuditPage; large: AuditPage };
  pool: { pool: number; rsa: Row; p256: Row; duringA: RowWithIdle; duringB: RowWithIdle };
  /** The flood's other-zone get. */
  flood: Row;
  cfsslP256: Row | null;
  devGet: Row | null;
}

interface AuditPage {
  size: number;
  idleP50: number | null;
  filteredIdleP50: number | null;
}

type Figure = number | null | undefined;

/** a / b; null when either is missing. */
const div = (a: Figure, b: Figure): number | null => (a === null || a === undefined || b === null || b === undefined ? null : a / b);
const perCore = (r: Row) => (r.cores ? r.rps / r.cores : null);
const target = (name: string, value: Figure, goal: string, pass: (v: number) => boolean): Target => ({
  name,
  value: value ?? null,
  goal,
  verdict: value === null || value === undefined ? "n/a" : pass(value) ? "pass" : "fail",
});
const info = (name: string, value: Figure): Target => ({ name, value: value ?? null, goal: null, verdict: "info" });
const L = (n: number) => n.toLocaleString("en");

export function targets(m: Measurements): Target[] {
  const { floor, floorDo, floorRecord, keygenP256 } = m.floors;
  const { small, large, middle, at } = m.lists;
  const { pool, duringA, duringB } = m.pool;
  const createP256 = m.direct.create;
  const get = m.direct.get;
  const { keygen: keygenRsa, create: createRsa, keygenCv } = m.rsa;
  const [auditSmall, auditLarge] = [m.audit.small, m.audit.large];
  const rsaSe = (createRsa.rps / keygenRsa.rps) * keygenCv * Math.sqrt(1 / keygenRsa.requests + 1 / createRsa.requests);
  return [
    target(`list idle p50, first page: ${L(large)} / ${L(small)}`, div(at(large, "first").idleP50, at(small, "first").idleP50), "≤ 1.5", (v) => v <= 1.5),
    target(`list idle p50, last page: ${L(large)} / ${L(small)}`, div(at(large, "last").idleP50, at(small, "last").idleP50), "≤ 1.5", (v) => v <= 1.5),
    info(`list p50 under load, first page: ${L(large)} / ${L(small)}`, div(at(large, "first").p50, at(small, "first").p50)),
    info(`list p50 under load, last page: ${L(large)} / ${L(small)}`, div(at(large, "last").p50, at(small, "last").p50)),
    target(`list idle p50, middle page of ${L(large)} / first page of ${L(large)}`, div(middle.idle.p50, at(large, "first").idleP50), "≤ 1.5", (v) => v <= 1.5),
    info(`list idle p50, middle page of ${L(large)} / first page of ${L(small)}`, div(middle.idle.p50, at(small, "first").idleP50)),
    target(`pool burst p50: rsa2048 create / p256v1 create (${pool} each, 4 conn)`, div(m.pool.rsa.p50, m.pool.p256.p50), "≤ 3", (v) => v <= 3),
    target("get in the burst's scope during pool bursts: p99 / idle p99", div(duringA.p99, duringA.idle.p99), "≤ 5", (v) => v <= 5),
    target("get in another scope during pool bursts: p99 / idle p99", div(duringB.p99, duringB.idle.p99), "≤ 5", (v) => v <= 5),
    target("get in another zone during a 100-create rsa2048 flood: p99 (ms)", m.flood.p99, "≤ 200", (v) => v <= 200),
    target("create p256v1: server CPU per request (ms)", div(createP256.cpuUsPerRequest, 1000), "≤ 0.6", (v) => v <= 0.6),
    info("create p256v1 per core / cfssl newkey ecdsa per core (issue 5's target, replaced)", m.cfsslP256 ? div(perCore(createP256), perCore(m.cfsslP256)) : null),
    info("create p256v1 req/s / cfssl newkey ecdsa req/s", m.cfsslP256 ? createP256.rps / m.cfsslP256.rps : null),
    target(`create rsa2048 beyond the pool req/s / runtime RSA-2048 keygen req/s (±${rsaSe.toFixed(3)}, 1 SE)`, createRsa.rps / keygenRsa.rps, "≥ 0.9", (v) => v >= 0.9),
    info("create p256v1 req/s / runtime P-256 keygen req/s", createP256.rps / keygenP256.rps),
    target("get req/s / (floor + DO RPC returning a record) req/s", get.rps / floorRecord.rps, "≥ 0.75", (v) => v >= 0.75),
    info("get req/s / floor req/s (issue 5's target, replaced)", get.rps / floor.rps),
    info("get per core / floor per core", div(perCore(get), perCore(floor))),
    target("npm start: get req/s / workerd direct get req/s", m.npmStart.get.rps / get.rps, "≥ 0.9", (v) => v >= 0.9),
    target("npm start: create p256v1 req/s / workerd direct create p256v1 req/s", m.npmStart.create.rps / createP256.rps, "≥ 0.9", (v) => v >= 0.9),
    info("npm run dev (wrangler dev): get req/s / workerd direct get req/s", m.devGet ? m.devGet.rps / get.rps : null),
    info("floor + DO RPC (noop), req/s / floor req/s", floorDo.rps / floor.rps),
    info("floor + DO RPC returning a record, req/s / floor req/s (the most a get can reach)", floorRecord.rps / floor.rps),
    target(`audit log, newest page of 50, idle p50: ${L(auditLarge.size)} / ${L(auditSmall.size)} entries`, div(auditLarge.idleP50, auditSmall.idleP50), "≤ 1.5", (v) => v <= 1.5),
    info(`audit log, page of 50 by action.type, idle p50: ${L(auditLarge.size)} / ${L(auditSmall.size)} entries`, div(auditLarge.filteredIdleP50, auditSmall.filteredIdleP50)),
  ];
}
