// Lists: one scope grown to each size, its first and last page of 50
// (order=created_at), and at the largest size a page in the middle (an
// OFFSET walk of half the scope: not a target, the honest caveat). The
// list-latency chart is drawn from these points.
import type { Bench } from "../lib/bench.ts";
import type { ListPoint, RowWithIdle } from "../lib/results.ts";

export interface Lists {
  points: ListPoint[];
  /** The smallest and the largest scope size. */
  small: number;
  large: number;
  middle: RowWithIdle;
  /** The point of one size and page (measured above). */
  at(size: number, page: ListPoint["page"]): ListPoint;
}

export async function lists(bench: Bench): Promise<Lists> {
  const sizes = bench.quick ? [100, 1_000] : [100, 10_000, 100_000];
  const seconds = bench.quick ? { duration: 2, idle: 2 } : { duration: 5, idle: 4 };
  const { pid } = bench.workerd;
  const page = (n: number) => ({ url: `${bench.client.api}/accounts/bench-list/custom_csrs?per_page=50&order=created_at&page=${n}`, headers: bench.auth });
  const points: ListPoint[] = [];
  for (const size of sizes) {
    await bench.seed("accounts", "bench-list", size);
    const pages = Math.ceil(size / 50);
    for (const [which, n] of [["first", 1], ["last", pages]] as const) {
      const row = await bench.measure(`list 50, ${which} page, scope of ${size.toLocaleString("en")}`, null, page(n), { pid, ...seconds });
      points.push({ size, page: which, p50: row.p50, p99: row.p99, idleP50: row.idle.p50, idleP99: row.idle.p99, rps: row.rps });
    }
  }
  const small = sizes[0] ?? 0;
  const large = sizes.at(-1) ?? 0;
  const middlePage = Math.ceil(large / 100);
  const middle = await bench.measure(`list 50, middle page (${middlePage}), scope of ${large.toLocaleString("en")}`, null, page(middlePage), { pid, ...seconds });
  return {
    points,
    small,
    large,
    middle,
    at(size, which) {
      const point = points.find((p) => p.size === size && p.page === which);
      if (!point) throw new Error(`no list point for the ${which} page of ${size}`);
      return point;
    },
  };
}
