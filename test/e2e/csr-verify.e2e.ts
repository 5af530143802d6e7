// The checkers themselves on trial, then many ECDSA signatures: each checker
// must reject a CSR with one flipped signature bit, and enough P-256 CSRs go
// through both to cover r or s with the top bit set (DER pads 0x00) and with
// a leading zero byte (DER drops it).
import type Cloudflare from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type EcInteger, derToPem, ecdsaSignature, flipSignatureBit, mapLimit, opensslCheck, pemToDer, pythonCheck } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { sdkClient } from "./sdk-client";
import { type TestServer, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const ZONE = scopeId("ecdsa");
// Leading zeros are ~1/128 per signature: 1,536 signatures miss them with
// probability (127/128)^1536 ≈ 6e-6, and take well under a minute.
const BATCH = 64;
const MAX_SIGNATURES = 1536;

let server: TestServer;
let client: Cloudflare;

beforeAll(async () => {
  server = await startServer({ root: inject("e2eRoot"), name: "csr-verify" });
  client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
});

afterAll(async () => {
  await server?.stop();
});

function create(keyType: "rsa2048" | "p256v1", i: number) {
  return client.customCsrs.create({
    zone_id: ZONE,
    common_name: `host${i}.customer-four.com`,
    country: "NL",
    state: "Noord-Holland",
    locality: "Amsterdam",
    organization: "Klant Vier B.V.",
    sans: [`host${i}.customer-four.com`, `alt${i}.customer-four.net`],
    key_type: keyType,
  });
}

describe("each checker can fail", () => {
  for (const keyType of ["rsa2048", "p256v1"] as const) {
    it(`both reject a ${keyType} CSR with one flipped signature bit, and accept the original`, async () => {
      const created = await create(keyType, 0);
      await expectCsrsVerified([created]);

      const tampered = flipSignatureBit(created.csr!);
      expect(tampered).not.toBe(created.csr);
      // Same structure, same length: only the signature value differs.
      expect(pemToDer(tampered).length).toBe(pemToDer(created.csr!).length);

      const openssl = await opensslCheck(tampered);
      expect(openssl.verified, openssl.text).toBe(false);
      expect(openssl.text).toMatch(/verify failure/);
      // It still parsed the request: the refusal is about the signature.
      expect(openssl.sans).toEqual(created.sans);

      const [python] = await pythonCheck([tampered]);
      expect(python).toMatchObject({ loaded: true, signature_valid: false, sans: created.sans });

      // And the signed content: one letter of a SAN changed, signature untouched.
      const der = pemToDer(created.csr!);
      const needle = Buffer.from("host0.customer-four.com");
      // The last occurrence: the SAN extension follows the subject's CN.
      const at = Buffer.from(der).lastIndexOf(needle);
      expect(at).toBeGreaterThan(0);
      const edited = new Uint8Array(der);
      edited[at + 3] = "u".charCodeAt(0);
      const forged = derToPem(edited);
      const forgedOpenssl = await opensslCheck(forged);
      expect(forgedOpenssl.verified, forgedOpenssl.text).toBe(false);
      expect(forgedOpenssl.sans[0]).toBe("hosu0.customer-four.com");
      const [forgedPython] = await pythonCheck([forged]);
      expect(forgedPython).toMatchObject({ loaded: true, signature_valid: false });
      expect(forgedPython!.sans![0]).toBe("hosu0.customer-four.com");
    });
  }
});

describe("ECDSA signature encodings", () => {
  it("covers r/s with the top bit set and with leading zero bytes, all verified by both checkers", async () => {
    const records: Array<Awaited<ReturnType<typeof create>>> = [];
    const seen = { topBit: 0, leadingZero: 0, signatures: 0 };
    const tally = (n: EcInteger): void => {
      if (n.topBitSet) seen.topBit++;
      if (n.leadingZero) seen.leadingZero++;
    };
    while (records.length < MAX_SIGNATURES && (seen.topBit === 0 || seen.leadingZero === 0 || records.length < 48)) {
      const base: number = records.length;
      const batch: typeof records = await mapLimit(Array.from({ length: BATCH }, (_, i) => base + i), 8, (i) => create("p256v1", i));
      for (const record of batch) {
        const { r, s } = ecdsaSignature(pemToDer(record.csr!));
        tally(r);
        tally(s);
        seen.signatures++;
      }
      records.push(...batch);
    }
    console.log(
      `ECDSA: ${seen.signatures} signatures, ${seen.topBit} integers with the top bit set, ${seen.leadingZero} with a leading zero byte`,
    );
    expect(seen.topBit).toBeGreaterThan(0);
    expect(seen.leadingZero).toBeGreaterThan(0);

    // Every one of them through both checkers, not just the edge cases.
    await expectCsrsVerified(records);
  });
});
