// `edge init`: this edge's key pair, and what to do with its public half.
import { type Curve, generateEdgeKey } from "./edge-key.ts";
import type { Output } from "./output.ts";

/**
 * Makes the edge's key pair in dir and says where it went on stderr; the
 * public JWK, ready for PUT /admin/v1/edges/{edge_id}, is the last line of
 * stdout. The private key is never printed.
 */
export async function runInit(dir: string, curve: Curve, force: boolean, output: Output): Promise<void> {
  const made = await generateEdgeKey(dir, curve, force);
  const line = JSON.stringify(made.jwk);
  output.err(`edge: new ${curve} key pair: private key ${made.keyPath} (mode 0600), public key ${made.publicPath}`);
  output.err(`edge: register it: PUT /admin/v1/edges/{edge_id} with {"public_key": <the JWK below>, "labels": {"country": "..", "region": ".."}}`);
  output.err(`edge: thumbprint ${made.thumbprint}`);
  output.out(line);
}
