// This edge's own key-agreement key pair: made once by `edge init`, and
// opened by every sync to unseal the keys delivered to it.
import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { type JWK, calculateJwkThumbprint } from "jose";
import { EdgeError } from "./errors.ts";
import { writeAtomic } from "./staging.ts";

/** The private key, PKCS#8 PEM, mode 0600. */
export const KEY_FILE = "edge-key.pem";
/** The public JWK, one line. */
export const PUBLIC_FILE = "edge-key.pub.jwk";

/** The curves an edge key may be on: X25519, or P-256 for NIST-only hosts. */
export type Curve = "X25519" | "P-256";

/** A key pair just made: where it went, and the public JWK to register. */
export interface NewEdgeKey {
  keyPath: string;
  publicPath: string;
  jwk: JWK;
  thumbprint: string;
}

/** This edge's private key and the RFC 7638 thumbprint of its public half (the `kid` every bundle sealed to it carries). */
export interface EdgeKey {
  privateKey: KeyObject;
  thumbprint: string;
}

/**
 * Generates the edge's key-agreement key pair into dir: the private key as
 * PKCS#8 PEM, mode 0600 (dir made 0700); the public JWK beside it. An
 * existing key is kept unless `force` (the edge must then be registered again).
 */
export async function generateEdgeKey(dir: string, curve: Curve, force = false): Promise<NewEdgeKey> {
  const keyPath = join(resolve(dir), KEY_FILE);
  const publicPath = join(resolve(dir), PUBLIC_FILE);
  if (existsSync(keyPath) && !force) {
    throw new EdgeError(`${keyPath} exists: this edge already has a key (--force replaces it, and the edge must then be registered again)`);
  }
  mkdirSync(resolve(dir), { recursive: true, mode: 0o700 });
  const pair = curve === "X25519" ? generateKeyPairSync("x25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk: JWK = pair.publicKey.export({ format: "jwk" });
  writeAtomic(keyPath, pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(), 0o600);
  writeAtomic(publicPath, `${JSON.stringify(jwk)}\n`, 0o644);
  return { keyPath, publicPath, jwk, thumbprint: await calculateJwkThumbprint(jwk, "sha256") };
}

/**
 * Opens the edge's private key from dir. As ssh does, a private key file
 * readable by group or others is refused.
 */
export async function loadEdgeKey(dir: string): Promise<EdgeKey> {
  const path = join(resolve(dir), KEY_FILE);
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new EdgeError(`no edge key at ${path}: run "edge init --dir ${dir}" first`);
  }
  if ((mode & 0o077) !== 0) throw new EdgeError(`${path} is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`);
  const privateKey = createPrivateKey(readFileSync(path));
  const jwk: JWK = createPublicKey(privateKey).export({ format: "jwk" });
  return { privateKey, thumbprint: await calculateJwkThumbprint(jwk, "sha256") };
}
