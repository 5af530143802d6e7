// Two CSR checkers that share no code with the service: the OpenSSL CLI and
// Python's pyca/cryptography. Plus a small DER reader for the ECDSA
// signature's INTEGER encodings, which neither checker reports.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The system OpenSSL (3.0 on Debian bookworm); E2E_OPENSSL overrides. */
export const OPENSSL = process.env.E2E_OPENSSL ?? "/usr/bin/openssl";
/** The Debian interpreter with python3-cryptography (not a pyenv one on PATH); E2E_PYTHON overrides. */
export const PYTHON = process.env.E2E_PYTHON ?? "/usr/bin/python3";
/** Debian's nginx, for the TLS reverse proxy test; E2E_NGINX overrides. */
export const NGINX = process.env.E2E_NGINX ?? "/usr/sbin/nginx";
const PY_HELPER = fileURLToPath(new URL("./csr_check.py", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], input: string): Promise<Run> {
  return new Promise((done, fail) => {
    const child = execFile(file, args, { maxBuffer: 64 * 1024 * 1024, encoding: "utf8" }, (error, stdout, stderr) => {
      // A non-zero exit is a result here, not an exception.
      if (error && typeof error.code !== "number") return fail(error);
      done({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

/** What OpenSSL says about one CSR. */
export interface OpensslReport {
  /** "self-signature verify OK" was printed (OpenSSL 3.0 exits 0 either way). */
  verified: boolean;
  exitCode: number;
  /** [long attribute name, value] per subject attribute, in encoded order. */
  subject: Array<[string, string]>;
  /** dNSNames of the subjectAltName extension, in order. */
  sans: string[];
  /** Every GeneralName of the extension as printed (e.g. "DNS:a.com"). */
  sanEntries: string[];
  signatureAlgorithm: string | null;
  publicKeyBits: number | null;
  curve: string | null;
  /** stdout and stderr, for failure messages. */
  text: string;
}

/** Runs `openssl req -verify -noout -text` on a PEM CSR and parses the text. */
export async function opensslCheck(pem: string): Promise<OpensslReport> {
  const out = await run(OPENSSL, ["req", "-verify", "-noout", "-text", "-nameopt", "multiline,utf8,-esc_msb"], pem);
  const text = `${out.stderr}\n${out.stdout}`;
  const verified =
    out.code === 0 && /(^|\n)(Certificate request self-signature )?verify OK\s*(\n|$)/.test(text) && !/verify failure/i.test(text);
  const lines = out.stdout.split("\n");

  const subject: Array<[string, string]> = [];
  const at = lines.findIndex((l) => /^\s*Subject:\s*$/.test(l));
  if (at !== -1) {
    const indent = lines[at]!.search(/\S/);
    for (const line of lines.slice(at + 1)) {
      if (line.search(/\S/) <= indent) break;
      const m = /^\s*([A-Za-z0-9.]+)\s*= (.*)$/.exec(line);
      if (m) subject.push([m[1]!, m[2]!]);
    }
  }

  let sanEntries: string[] = [];
  const sanAt = lines.findIndex((l) => /X509v3 Subject Alternative Name:/.test(l));
  if (sanAt !== -1) sanEntries = (lines[sanAt + 1] ?? "").trim().split(", ").filter(Boolean);
  const sans = sanEntries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice(4));

  const sigAlg = /^\s*Signature Algorithm: (\S+)/m.exec(out.stdout);
  const bits = /Public-Key: \((\d+) bit\)/.exec(out.stdout);
  const curve = /NIST CURVE: (\S+)/.exec(out.stdout);
  return {
    verified,
    exitCode: out.code,
    subject,
    sans,
    sanEntries,
    signatureAlgorithm: sigAlg ? sigAlg[1]! : null,
    publicKeyBits: bits ? Number(bits[1]) : null,
    curve: curve ? curve[1]! : null,
    text,
  };
}

/** What pyca/cryptography says about one CSR (see csr_check.py). */
export interface PythonReport {
  loaded: boolean;
  error?: string;
  signature_valid?: boolean;
  signature_algorithm?: string;
  subject?: Array<{ oid: string; value: string; string_type: string | null; rdn_size: number }>;
  sans?: string[];
  other_names?: number;
  public_key?: { type: string; bits?: number; exponent?: number; curve?: string };
}

/** Checks many PEM CSRs in one Python process (one report per CSR, in order). */
export async function pythonCheck(pems: readonly string[]): Promise<PythonReport[]> {
  const out = await run(PYTHON, [PY_HELPER], JSON.stringify(pems));
  if (out.code !== 0) throw new Error(`csr_check.py exited ${out.code}: ${out.stderr}`);
  const reports = JSON.parse(out.stdout) as PythonReport[];
  if (reports.length !== pems.length) throw new Error("csr_check.py returned the wrong number of reports");
  return reports;
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---- DER ----

/** The DER bytes of the single CERTIFICATE REQUEST block of a PEM. */
export function pemToDer(pem: string): Uint8Array {
  const m = /^-----BEGIN CERTIFICATE REQUEST-----\n([A-Za-z0-9+/=\n]+)-----END CERTIFICATE REQUEST-----\n?$/.exec(pem);
  if (!m) throw new Error("not a single PEM CERTIFICATE REQUEST block");
  return new Uint8Array(Buffer.from(m[1]!.replaceAll("\n", ""), "base64"));
}

/** PEM with 64-character lines, as RFC 7468 writes it. */
export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join("\n")}\n-----END CERTIFICATE REQUEST-----\n`;
}

interface Tlv {
  tag: number;
  /** Offset of the contents. */
  start: number;
  /** Offset just past the contents. */
  end: number;
}

// Reads one DER TLV at `at`, refusing indefinite and non-minimal lengths.
function readTlv(bytes: Uint8Array, at: number): Tlv {
  const tag = bytes[at];
  const first = bytes[at + 1];
  if (tag === undefined || first === undefined) throw new Error(`truncated DER at ${at}`);
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Error(`unsupported DER length at ${at}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[at + 2 + i]!;
    if (length < 0x80 || bytes[at + 2] === 0) throw new Error(`non-minimal DER length at ${at}`);
    header += n;
  }
  const start = at + header;
  if (start + length > bytes.length) throw new Error(`DER runs past the end at ${at}`);
  return { tag, start, end: start + length };
}

/** One INTEGER of an ECDSA signature: how it is encoded and its 32-byte value. */
export interface EcInteger {
  /** Bytes of the DER INTEGER's contents. */
  encodedLength: number;
  /** The value left-padded to the curve size (32 bytes). */
  raw: Uint8Array;
  /** The value's top bit is set: DER must prepend 0x00. */
  topBitSet: boolean;
  /** The value's first byte is zero: DER must drop it. */
  leadingZero: boolean;
  /** Minimal two's-complement, positive: what DER requires. */
  canonical: boolean;
}

function ecInteger(bytes: Uint8Array, tlv: Tlv): EcInteger {
  if (tlv.tag !== 0x02) throw new Error("expected INTEGER");
  const content = bytes.subarray(tlv.start, tlv.end);
  const canonical =
    content.length > 0 && (content[0]! & 0x80) === 0 && !(content.length > 1 && content[0] === 0 && (content[1]! & 0x80) === 0);
  const value = content[0] === 0 ? content.subarray(1) : content;
  if (value.length > 32) throw new Error("ECDSA integer longer than P-256's order");
  const raw = new Uint8Array(32);
  raw.set(value, 32 - value.length);
  return { encodedLength: content.length, raw, topBitSet: (raw[0]! & 0x80) !== 0, leadingZero: raw[0] === 0, canonical };
}

/** r and s of a P-256 CSR's signature, read from the DER (CertificationRequest → BIT STRING → Ecdsa-Sig-Value). */
export function ecdsaSignature(der: Uint8Array): { r: EcInteger; s: EcInteger } {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error("CSR is not one SEQUENCE");
  const info = readTlv(der, outer.start);
  const algorithm = readTlv(der, info.end);
  const bits = readTlv(der, algorithm.end);
  if (bits.tag !== 0x03 || der[bits.start] !== 0 || bits.end !== outer.end) throw new Error("bad signature BIT STRING");
  const sig = readTlv(der, bits.start + 1);
  if (sig.tag !== 0x30 || sig.end !== bits.end) throw new Error("bad Ecdsa-Sig-Value");
  const r = readTlv(der, sig.start);
  const s = readTlv(der, r.end);
  if (s.end !== sig.end) throw new Error("trailing bytes in Ecdsa-Sig-Value");
  return { r: ecInteger(der, r), s: ecInteger(der, s) };
}

/** The CSR with one bit of the signature flipped (the last byte's low bit): structure intact, signature wrong. */
export function flipSignatureBit(pem: string): string {
  const der = pemToDer(pem);
  const copy = new Uint8Array(der);
  copy[copy.length - 1]! ^= 0x01;
  return derToPem(copy);
}
