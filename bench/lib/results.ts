// What a bench run collects for its report: the scenario rows, start-up
// times, bytes stored, seeding rates and notes, in the order they were
// measured (the report keeps that order).
import type { Log } from "./lifecycle.ts";
import type { LoadResult } from "./load.ts";
import type { BreakdownPart } from "./sqlite-files.ts";

/** A load as reported: everything but its latencies. */
export type Measured = Omit<LoadResult, "latencies">;

/** One row of the scenario table: a load, and the one-connection load after it when there was one. */
export interface Row extends Measured {
  name: string;
  loadLabel: string;
  idle?: Measured;
}

/** A row with its idle (one-connection) latency. */
export type RowWithIdle = Row & { idle: Measured };

/** One line of the ratio table: a target (pass/fail) or a figure for information. */
export interface Target {
  name: string;
  value: number | null;
  goal: string | null;
  verdict: "pass" | "fail" | "n/a" | "info";
}

/** Start-up times of one command, each run in ms. */
export interface Startup {
  name: string;
  runs: number[];
}

/** Bytes stored per CSR (or per audit entry) in one scope. */
export interface Storage {
  scope: string;
  keyType: string;
  n: number;
  /** Database growth per CSR or entry, as SQLite counts it; null when not measured. */
  growthPerCsr: number | null;
  /** From the file once workerd has stopped: */
  units?: number;
  filePerUnit?: number;
  breakdown?: BreakdownPart[];
}

/** How fast a scope was filled. */
export interface Seeding {
  name: string;
  count: number;
  seconds: number;
  rate: number;
}

/** One point of the list-latency chart. */
export interface ListPoint {
  size: number;
  page: "first" | "last";
  p50: number | null;
  p99: number | null;
  idleP50: number | null;
  idleP99: number | null;
  rps: number;
}

const strip = ({ latencies: _, ...rest }: LoadResult): Measured => rest;
const ms = (v: number | null) => (v === null ? "–" : v.toFixed(2));

/** The run's findings so far; scenarios add to them. */
export class Results {
  readonly rows: Row[] = [];
  readonly startup: Startup[] = [];
  readonly storage: Storage[] = [];
  readonly seeding: Seeding[] = [];
  readonly notes: string[] = [];
  readonly #log: Log;

  constructor(log: Log) {
    this.#log = log;
  }

  /** Adds a row (and logs it): a load, and the one-connection load measured after it. */
  record(name: string, loadLabel: string, result: LoadResult): Row;
  record(name: string, loadLabel: string, result: LoadResult, idle: LoadResult): RowWithIdle;
  record(name: string, loadLabel: string, result: LoadResult, idle?: LoadResult): Row {
    const row: Row = { name, loadLabel, ...strip(result), idle: idle && strip(idle) };
    this.rows.push(row);
    this.#log(
      `${name}: ${result.rps.toFixed(1)} req/s, p50 ${ms(result.p50)} ms, p99 ${ms(result.p99)} ms` +
        (idle ? `; idle p50 ${ms(idle.p50)} ms, p99 ${ms(idle.p99)} ms` : "") +
        (result.cpuUsPerRequest ? `; ${Math.round(result.cpuUsPerRequest)} µs server CPU/req` : "") +
        `; failed ${result.non2xx + result.errors + (idle ? idle.non2xx + idle.errors : 0)}`,
    );
    return row;
  }
}
