import type { EdgePublicKey } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";

/** A registered edge as the admin API returns it. */
export interface EdgeRecord {
  id: string;
  /** The public key keys are sealed to (public members only). */
  public_key: EdgePublicKey;
  /** Its RFC 7638 SHA-256 thumbprint: the `kid` of every JWE sealed to it. */
  thumbprint: string;
  labels: EdgeLabels;
  created_on: string;
  modified_on: string;
}

/** What a registration carries, validated (src/edges/edge-input.ts). */
export interface EdgeRegistration {
  public_key: EdgePublicKey;
  thumbprint: string;
  labels: EdgeLabels;
}
