import type { Result } from "../core/result";
import { type Refusal, Refused } from "./errors";

/**
 * The HTTP layer's one error path. Parsers and Durable Objects return
 * Results; a handler takes the value with `unwrap`, which sends a refusal on
 * to the router (its `catch` renders every one with `failure`, in
 * src/http/envelope.ts). `refuse` is the same for a refusal the handler
 * decides itself (a scope with no data has no such CSR).
 */
export function unwrap<T>(result: Result<T, Refusal>): T {
  if (!result.ok) throw new Refused(result);
  return result.value;
}

/** Ends the request with `refusal` (the router renders it). */
export function refuse(refusal: Refusal): never {
  throw new Refused(refusal);
}
