// The full check of CSRs the service handed out, by OpenSSL and by
// pyca/cryptography, against the fields the client asked for.
import { expect } from "vitest";
import { ecdsaSignature, mapLimit, opensslCheck, pemToDer, pythonCheck } from "./checkers";

/** What a CSR must contain: the fields of the API's record (the SDK's types make most optional). */
export interface ExpectedCsr {
  id?: string;
  key_type: "rsa2048" | "p256v1";
  csr?: string;
  common_name?: string;
  country?: string;
  state?: string;
  locality?: string;
  organization?: string;
  organizational_unit?: string;
  sans?: string[];
}

// Subject order (README "The CSR"): C, ST, L, O, OU, CN.
const ATTRIBUTES = [
  { field: "country", oid: "2.5.4.6", lname: "countryName", type: "PrintableString" },
  { field: "state", oid: "2.5.4.8", lname: "stateOrProvinceName", type: "UTF8String" },
  { field: "locality", oid: "2.5.4.7", lname: "localityName", type: "UTF8String" },
  { field: "organization", oid: "2.5.4.10", lname: "organizationName", type: "UTF8String" },
  { field: "organizational_unit", oid: "2.5.4.11", lname: "organizationalUnitName", type: "UTF8String" },
  { field: "common_name", oid: "2.5.4.3", lname: "commonName", type: "UTF8String" },
] as const;

const SIGNATURE = {
  rsa2048: { oid: "1.2.840.113549.1.1.11", name: "sha256WithRSAEncryption" },
  p256v1: { oid: "1.2.840.10045.4.3.2", name: "ecdsa-with-SHA256" },
} as const;

/**
 * Asserts that both checkers accept every CSR's self-signature and read back
 * exactly the requested subject (in order, with the right string types),
 * SANs and key. Python runs once for the batch; OpenSSL once per CSR.
 */
export async function expectCsrsVerified(records: readonly ExpectedCsr[]): Promise<void> {
  const pems = records.map((r) => {
    expect(typeof r.csr, `record ${r.id} has a csr`).toBe("string");
    return r.csr!;
  });
  const [python, openssl] = await Promise.all([pythonCheck(pems), mapLimit(pems, 4, (pem) => opensslCheck(pem))]);
  records.forEach((record, i) => {
    const label = `CSR ${record.id ?? i} (${record.key_type})`;
    const py = python[i]!;
    const os = openssl[i]!;
    const expected = ATTRIBUTES.filter((a) => record[a.field] !== undefined).map((a) => ({ ...a, value: record[a.field]! }));

    // OpenSSL
    expect(os.verified, `${label}: openssl\n${os.text}`).toBe(true);
    expect(os.subject, `${label}: openssl subject`).toEqual(expected.map((a) => [a.lname, a.value]));
    expect(os.sanEntries, `${label}: openssl SANs`).toEqual((record.sans ?? []).map((s) => `DNS:${s}`));
    expect(os.signatureAlgorithm, label).toBe(SIGNATURE[record.key_type].name);
    if (record.key_type === "rsa2048") {
      expect(os.publicKeyBits, label).toBe(2048);
    } else {
      expect([os.publicKeyBits, os.curve], label).toEqual([256, "P-256"]);
    }

    // pyca/cryptography
    expect(py.loaded, `${label}: python load ${py.error}`).toBe(true);
    expect(py.signature_valid, `${label}: python signature`).toBe(true);
    expect(py.signature_algorithm, label).toBe(SIGNATURE[record.key_type].oid);
    expect(py.subject, `${label}: python subject`).toEqual(
      expected.map((a) => ({ oid: a.oid, value: a.value, string_type: a.type, rdn_size: 1 })),
    );
    expect(py.sans, `${label}: python SANs`).toEqual(record.sans ?? []);
    expect(py.other_names, label).toBe(0);
    expect(py.public_key, label).toEqual(
      record.key_type === "rsa2048" ? { type: "rsa", bits: 2048, exponent: 65537 } : { type: "ec", bits: 256, curve: "secp256r1" },
    );

    // Our own reading: the ECDSA INTEGERs are minimal DER (what strict verifiers demand).
    if (record.key_type === "p256v1") {
      const { r, s } = ecdsaSignature(pemToDer(record.csr!));
      expect([r.canonical, s.canonical], `${label}: DER INTEGERs minimal`).toEqual([true, true]);
    }
  });
}
