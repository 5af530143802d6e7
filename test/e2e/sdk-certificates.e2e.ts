// The SDK's customCertificates.create with custom_csr_id: a certificate
// issued for one of our CSRs is uploaded without a private key, the service
// pairs it with the stored key, and the CSR can no longer be deleted (409,
// 1420) until the certificate is.
import { join } from "node:path";
import Cloudflare, { APIError, ConflictError } from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { mintToken, scopeId } from "./credentials";
import { opensslCa } from "./openssl-ca";
import { sdkClient } from "./sdk-client";
import { type TestServer, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const ZONE = scopeId("cert");

let server: TestServer;
let client: Cloudflare;
let ca: ReturnType<typeof opensslCa>;


describe("cloudflare SDK: customCertificates with custom_csr_id", () => {
  beforeAll(async () => {
    server = await startServer({ root: inject("e2eRoot"), name: "sdk-certificates" });
    // No retries (sdkClient): the SDK would retry the 409, and the conflict is the answer here.
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
    ca = opensslCa(join(server.dir, "pki"), "/CN=e2e throwaway CA");
  });

  afterAll(async () => {
    await server?.stop();
  });

  for (const keyType of ["p256v1", "rsa2048"] as const) {
    it(`uploads a certificate for a ${keyType} custom CSR without a private key; the CSR is then in use`, async () => {
      const csr = await client.customCsrs.create({
        zone_id: ZONE,
        common_name: `secure-${keyType}.customer-seven.com`,
        country: "CA",
        state: "Ontario",
        locality: "Toronto",
        organization: "Customer Seven",
        sans: [`secure-${keyType}.customer-seven.com`],
        key_type: keyType,
      });
      await expectCsrsVerified([csr]);
      const certificate = ca.issue(csr.csr!, csr.id);

      const uploaded = await client.customCertificates.create({ zone_id: ZONE, certificate, custom_csr_id: csr.id });
      expect(uploaded.custom_csr_id).toBe(csr.id);
      expect(uploaded.zone_id).toBe(ZONE);
      const fetched = await client.customCertificates.get(uploaded.id, { zone_id: ZONE });
      expect(fetched.custom_csr_id).toBe(csr.id);

      // In use: the CSR and its key stay until the certificate goes.
      try {
        await client.customCsrs.delete(csr.id, { zone_id: ZONE });
        throw new Error("deleting a CSR in use succeeded");
      } catch (error) {
        expect(error).toBeInstanceOf(ConflictError);
        expect((error as ConflictError).errors.map((e) => e.code)).toEqual([1420]);
      }
      expect((await client.customCsrs.get(csr.id, { zone_id: ZONE })).id).toBe(csr.id);

      await client.customCertificates.delete(uploaded.id, { zone_id: ZONE });
      expect(await client.customCsrs.delete(csr.id, { zone_id: ZONE })).toEqual({ id: csr.id });
    });
  }

  it("refuses a certificate whose public key is not the custom CSR's", async () => {
    const [a, b] = await Promise.all(
      ["a", "b"].map((n) =>
        client.customCsrs.create({
          zone_id: ZONE,
          common_name: `${n}.customer-seven.com`,
          country: "CA",
          state: "Ontario",
          locality: "Toronto",
          organization: "Customer Seven",
          sans: [`${n}.customer-seven.com`],
          key_type: "p256v1",
        }),
      ),
    );
    const forB = ca.issue(b!.csr!, `${b!.id}-mismatch`);
    try {
      await client.customCertificates.create({ zone_id: ZONE, certificate: forB, custom_csr_id: a!.id });
      throw new Error("a certificate for another key was accepted");
    } catch (error) {
      // README: 1441, the certificate's public key is not the custom CSR's.
      expect(error).toBeInstanceOf(APIError);
      expect([(error as APIError).status, (error as APIError).errors.map((e) => e.code)]).toEqual([400, [1441]]);
    }
    // Nothing attached: a is still deletable.
    expect(await client.customCsrs.delete(a!.id, { zone_id: ZONE })).toEqual({ id: a!.id });
  });
});
