// What the delivery token says about this edge.
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";

/**
 * The edge id the token names (its `edge_id` claim). The token is not
 * verified here (the service does that); this only tells which edge we are,
 * to check that each listing and bundle was made for us.
 */
export function tokenEdge(token: string): string {
  try {
    const claims: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    if (isRecord(claims) && typeof claims.edge_id === "string" && claims.edge_id !== "") return claims.edge_id;
  } catch {
    // not a JWT: named below
  }
  throw new EdgeError("the token names no edge (no edge_id claim): mint one with npm run --silent token -- --edge EDGE_ID --zone ZONE");
}
