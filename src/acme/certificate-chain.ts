import { fail, ok, type Result } from "../core/result";
import type { AcmeBadResponse } from "./refusals";

/** A certificate chain as downloaded (RFC 8555 §7.4.2). */
export interface AcmeCertificateChain {
  /** The whole chain, PEM, leaf first, normalized (LF line ends, 64-character lines). */
  readonly pem: string;
  /** Each certificate's PEM block, leaf first, then the certificates that certify it. */
  readonly certificates: readonly string[];
  /** Other chains the CA offers for the same certificate (Link rel="alternate", §7.4.2). */
  readonly alternates: readonly string[];
}

const BLOCK = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g;

/**
 * Reads an `application/pem-certificate-chain` body (RFC 8555 §9.1): one or
 * more CERTIFICATE blocks and nothing else but whitespace between them (no
 * explanatory text, no other labels, no private key). Only the PEM and base64
 * layers are checked here; X.509 is the caller's to check (the issued leaf's
 * key against the CSR's, its names, its dates) before it replaces anything.
 */
export function parsePemChain(text: string, alternates: readonly string[] = []): Result<AcmeCertificateChain, AcmeBadResponse> {
  const certificates: string[] = [];
  const rest = text.replace(BLOCK, (_block, body: string) => {
    const base64 = body.replace(/[\r\n\t ]+/g, "");
    if (base64.length > 0 && base64.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
      const lines = base64.match(/.{1,64}/g) ?? [];
      certificates.push(`-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`);
      return "";
    }
    return "\u0000";
  });
  if (rest.includes("\u0000")) return fail({ reason: "acme_bad_response", detail: "the certificate chain has a block that is not base64" });
  if (rest.trim() !== "") return fail({ reason: "acme_bad_response", detail: "the certificate chain holds something other than CERTIFICATE blocks" });
  if (certificates.length === 0) return fail({ reason: "acme_bad_response", detail: "the certificate chain holds no certificate" });
  return ok({ pem: certificates.join(""), certificates, alternates });
}

/** The targets of a Link header's entries whose `rel` includes `relation` (RFC 8288 §3). */
export function linkTargets(header: string | null, relation: string): string[] {
  if (header === null) return [];
  const targets: string[] = [];
  for (const match of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const params = match[2] ?? "";
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const relations = (rel?.[1] ?? rel?.[2] ?? "").toLowerCase().split(/\s+/);
    if (relations.includes(relation)) targets.push(match[1]!);
  }
  return targets;
}
