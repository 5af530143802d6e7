// Pages as they cross RPC: plain types, no runtime dependency (the Node-side
// tests import them too).
/** JSON text of API objects, rendered where the rows are read so that it crosses RPC as one string. */
export type JsonText = string & { readonly __brand: "JsonText" };

/** Records' JSON texts as one JSON array. */
export function jsonArray(items: JsonText[]): JsonText {
  return `[${items.join(",")}]` as JsonText;
}

/** One page: `count` items (a JSON array) of `total`. */
export interface Page<T> {
  items: T;
  count: number;
  total: number;
}
