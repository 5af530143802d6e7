import type { ListQuery } from "../tenant/records";
import type { Scope } from "../core/scope";
import type { InvalidQuery } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";

const ORDERS = ["name", "account_tag", "created_at"] as const;
const DIRECTIONS = ["asc", "desc"] as const;

// Cloudflare's schema: per_page 5–50, default 50 for accounts and 20 for zones.
export const PER_PAGE = { min: 5, max: 50, default: { accounts: 50, zones: 20 } } as const;

function integer(raw: string, name: string, min: number, max: number): Result<number, InvalidQuery> {
  if (!/^\d{1,9}$/.test(raw)) return fail({ reason: "invalid_query", parameter: name, rule: `must be an integer from ${min} to ${max}` });
  const n = Number(raw);
  if (n < min || n > max) return fail({ reason: "invalid_query", parameter: name, rule: `must be an integer from ${min} to ${max}` });
  return ok(n);
}

function oneOf<T extends string>(raw: string, name: string, allowed: readonly T[]): Result<T, InvalidQuery> {
  return (allowed as readonly string[]).includes(raw)
    ? ok(raw as T)
    : fail({ reason: "invalid_query", parameter: name, rule: `must be one of ${allowed.join(", ")}` });
}

/** `page` (1–100,000,000, default 1) and `per_page` (within `perPage`), each given at most once. */
export function pagingParams(
  params: URLSearchParams,
  perPage: { min: number; max: number; default: number },
): Result<{ page: number; per_page: number }, InvalidQuery> {
  for (const name of ["page", "per_page"]) {
    if (params.getAll(name).length > 1) return fail({ reason: "invalid_query", parameter: name, rule: "is given more than once" });
  }
  const page = params.has("page") ? integer(params.get("page")!, "page", 1, 100_000_000) : ok(1);
  if (!page.ok) return page;
  const size = params.has("per_page") ? integer(params.get("per_page")!, "per_page", perPage.min, perPage.max) : ok(perPage.default);
  if (!size.ok) return size;
  return ok({ page: page.value, per_page: size.value });
}

/**
 * page, per_page, order and direction, validated: anything out of range is a
 * 400 naming the parameter, never a silent clamp. Unknown parameters are
 * ignored, as Cloudflare's API does.
 */
export function parseListQuery(params: URLSearchParams, scope: Scope): Result<ListQuery, InvalidQuery> {
  for (const name of ["order", "direction"]) {
    if (params.getAll(name).length > 1) return fail({ reason: "invalid_query", parameter: name, rule: "is given more than once" });
  }
  const paging = pagingParams(params, { min: PER_PAGE.min, max: PER_PAGE.max, default: PER_PAGE.default[scope.kind] });
  if (!paging.ok) return paging;
  const order = params.has("order") ? oneOf(params.get("order")!, "order", ORDERS) : ok<ListQuery["order"]>("created_at");
  if (!order.ok) return order;
  const direction = params.has("direction")
    ? oneOf(params.get("direction")!, "direction", DIRECTIONS)
    : ok<ListQuery["direction"]>("asc");
  if (!direction.ok) return direction;
  return ok({ ...paging.value, order: order.value, direction: direction.value });
}
