import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OPENSSL } from "./checkers";

/** A throwaway P-256 CA made with OpenSSL in `dir`, which signs CSRs as a CA would (their extensions copied). */
export function opensslCa(dir: string, subject = "/CN=e2e throwaway CA") {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, "ca.key");
  const pem = join(dir, "ca.pem");
  execFileSync(OPENSSL, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem, "-subj", subject, "-days", "2"], {
    stdio: "pipe",
  });
  return {
    /** The CA's certificate (PEM). */
    pem: () => readFileSync(pem, "utf8"),
    /** A certificate for `csrPem` valid for `days` (default 30) from now, as PEM (the leaf alone). */
    issue(csrPem: string, name: string, days = 30): string {
      const csrPath = join(dir, `${name}.csr.pem`);
      const certPath = join(dir, `${name}.cert.pem`);
      writeFileSync(csrPath, csrPem);
      execFileSync(OPENSSL, ["x509", "-req", "-in", csrPath, "-CA", pem, "-CAkey", key, "-CAcreateserial", "-days", String(days), "-sha256", "-copy_extensions", "copy", "-out", certPath], {
        stdio: "pipe",
      });
      return readFileSync(certPath, "utf8");
    },
  };
}
