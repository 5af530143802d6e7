import { sha256 } from "@noble/hashes/sha2.js";
import { hostnameRegistryName } from "../core/objects";
import { HOSTNAME_SHARDS } from "./hostname-registry";

/** The name of the hostname registry object that holds `hostname`: by the first byte of its SHA-256. */
export function hostnameShardName(hostname: string): string {
  return hostnameRegistryName(sha256(new TextEncoder().encode(hostname.toLowerCase()))[0]! % HOSTNAME_SHARDS);
}
