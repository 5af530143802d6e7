// The service key this edge trusts: pinned in DIR on the first sync that
// names it, and the only key whose signatures the agent acts on.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type CryptoKey, type JWK, calculateJwkThumbprint, importJWK } from "jose";
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";
import { writeAtomic } from "./staging.ts";

/** The service's signing key, pinned on the first sync that names it (--service-key). */
export const SERVICE_KEY_FILE = "service-key.jwk";

/** The pinned key, ready to verify with, and its RFC 7638 thumbprint. */
export interface ServiceKey {
  key: CryptoKey | Uint8Array;
  kid: string;
}

/**
 * The service key this edge trusts: the pinned one (DIR/service-key.jwk), or
 * the one given (--service-key: the JWK, or a file holding it), pinned now
 * when none is. A given key other than the pinned one is refused: pinning is
 * what makes a server that is not this service unable to hand the edge keys
 * of its own.
 */
export async function serviceKey(dir: string, given: string | undefined): Promise<ServiceKey> {
  const pinPath = join(resolve(dir), SERVICE_KEY_FILE);
  const pinned = existsSync(pinPath) ? readFileSync(pinPath, "utf8").trim() : null;
  const offered = given === undefined ? null : canonical(given);
  if (pinned === null && offered === null) {
    throw new EdgeError(
      `no service key is pinned in ${resolve(dir)}: pass --service-key with the service_key of GET /admin/v1/edges/{edge_id} ` +
        "(the agent refuses replies the service did not sign; README, upgrading edges)",
    );
  }
  if (pinned !== null && offered !== null && pinned !== offered) {
    throw new EdgeError(`--service-key is not the key pinned in ${pinPath}: refused (remove that file only if the service's key really changed)`);
  }
  if (pinned === null && offered !== null) writeAtomic(pinPath, `${offered}\n`, 0o644);
  const text = pinned ?? offered ?? "";
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
    return { key: await importJWK(jwk, "EdDSA"), kid: await calculateJwkThumbprint(jwk, "sha256") };
  } catch {
    throw new EdgeError(`${pinPath} does not hold an Ed25519 public JWK: remove it and pin the service key again`);
  }
}

/**
 * The given key as it is pinned: `{"kty":"OKP","crv":"Ed25519","x":...}`
 * exactly, so the same key given as JSON with other members, spacing or
 * order compares equal. A private JWK (`d`) is refused.
 */
function canonical(given: string): string {
  let text = given;
  if (!given.trim().startsWith("{")) {
    try {
      text = readFileSync(given, "utf8");
    } catch {
      throw new EdgeError(`--service-key ${JSON.stringify(given)} is neither a JWK nor a readable file`);
    }
  }
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    jwk = null;
  }
  if (!isRecord(jwk) || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || jwk.d !== undefined) {
    throw new EdgeError("--service-key is not the service's Ed25519 public JWK (service_key of GET /admin/v1/edges/{edge_id})");
  }
  return JSON.stringify({ kty: "OKP", crv: "Ed25519", x: jwk.x });
}
