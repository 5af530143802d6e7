import { fail, ok, type Result } from "../core/result";
import type { AcmeBadResponse } from "./refusals";
import { checkUrl } from "./transport";

/** The directory's `meta` (RFC 8555 §7.1.1), the members the client reads. */
export interface AcmeDirectoryMeta {
  readonly termsOfService?: string;
  readonly website?: string;
  readonly caaIdentities?: readonly string[];
  /** The CA requires External Account Binding on newAccount (§7.3.4): configure `eab_kid` and `eab_hmac_key`. */
  readonly externalAccountRequired: boolean;
}

/** A CA's directory (RFC 8555 §7.1.1): where each resource is. Every URL is https. */
export interface AcmeDirectory {
  readonly url: string;
  readonly newNonce: string;
  readonly newAccount: string;
  readonly newOrder: string;
  readonly revokeCert?: string;
  readonly keyChange?: string;
  /** ACME Renewal Information (RFC 9773), when the CA offers it. */
  readonly renewalInfo?: string;
  readonly meta: AcmeDirectoryMeta;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Reads a directory object; `newNonce`, `newAccount` and `newOrder` are required, each URL must be https. */
export function parseDirectory(url: string, body: Record<string, unknown>): Result<AcmeDirectory, AcmeBadResponse> {
  const required: Record<string, string> = {};
  for (const name of ["newNonce", "newAccount", "newOrder"] as const) {
    const checked = checkUrl(body[name], `the directory's ${name}`);
    if (!checked.ok) return checked;
    required[name] = checked.value;
  }
  const optional: Record<string, string> = {};
  for (const name of ["revokeCert", "keyChange", "renewalInfo"] as const) {
    if (body[name] === undefined) continue;
    const checked = checkUrl(body[name], `the directory's ${name}`);
    if (!checked.ok) return checked;
    optional[name] = checked.value;
  }
  const rawMeta = isObject(body.meta) ? body.meta : {};
  if (rawMeta.externalAccountRequired !== undefined && typeof rawMeta.externalAccountRequired !== "boolean") {
    return fail({ reason: "acme_bad_response", detail: "the directory's meta.externalAccountRequired is not a boolean" });
  }
  const meta: { -readonly [K in keyof AcmeDirectoryMeta]: AcmeDirectoryMeta[K] } = {
    externalAccountRequired: rawMeta.externalAccountRequired === true,
  };
  // Informational members: kept when well-formed, ignored otherwise (RFC 8555 §7.1.1 makes them all optional).
  if (typeof rawMeta.termsOfService === "string") meta.termsOfService = rawMeta.termsOfService;
  if (typeof rawMeta.website === "string") meta.website = rawMeta.website;
  if (Array.isArray(rawMeta.caaIdentities) && rawMeta.caaIdentities.every((item) => typeof item === "string")) {
    meta.caaIdentities = rawMeta.caaIdentities as string[];
  }
  return ok({
    url,
    newNonce: required.newNonce!,
    newAccount: required.newAccount!,
    newOrder: required.newOrder!,
    ...optional,
    meta,
  });
}
