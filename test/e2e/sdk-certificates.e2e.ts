// The SDK's customCertificates.create with custom_csr_id: a certificate
// issued for one of our CSRs is uploaded without a private key, the service
// pairs it with the stored key, and the CSR can no longer be deleted (409,
// 1420) until the certificate is.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Cloudflare, { APIError, BadRequestError, ConflictError, NotFoundError } from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { OPENSSL } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { opensslCa } from "./openssl-ca";
import { sdkClient } from "./sdk-client";
import { type TestServer, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const ZONE = scopeId("cert");

let server: TestServer;
let client: Cloudflare;
let ca: ReturnType<typeof opensslCa>;

/**
 * A certificate for `csrPem` that expires `seconds` from now, signed by the
 * throwaway CA in `dir` with `openssl ca` (OpenSSL 3.0's x509 takes whole days only).
 */
function issueShortLived(dir: string, csrPem: string, name: string, seconds: number): string {
  const at = (s: number) => new Date(Date.now() + s * 1000).toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
  const config = join(dir, "short.cnf");
  writeFileSync(join(dir, "short-index.txt"), "");
  writeFileSync(
    config,
    `[ca]\ndefault_ca = short\n[short]\ndatabase = ${join(dir, "short-index.txt")}\nnew_certs_dir = ${dir}\nserial = ${join(dir, "short.srl")}\n` +
      `default_md = sha256\npolicy = anything\ncopy_extensions = copy\nunique_subject = no\n[anything]\ncommonName = supplied\n`,
  );
  writeFileSync(join(dir, "short.srl"), "01\n");
  const csr = join(dir, `${name}.csr.pem`);
  const out = join(dir, `${name}.short.pem`);
  writeFileSync(csr, csrPem);
  const signer = ["-config", config, "-cert", join(dir, "ca.pem"), "-keyfile", join(dir, "ca.key")];
  execFileSync(OPENSSL, ["ca", "-batch", ...signer, "-in", csr, "-out", out, "-startdate", at(-60), "-enddate", at(seconds), "-notext"], { stdio: "pipe" });
  return readFileSync(out, "utf8");
}

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

  it("customCertificates.list takes the SDK's status and match: active and expired as time has them, the others nothing", async () => {
    const zone = scopeId("certlist");
    const sdk = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] }) });
    const uploaded: string[] = [];
    for (const [i, lifetime] of [null, 4, null].entries()) {
      const csr = await sdk.customCsrs.create({
        zone_id: zone,
        common_name: `list-${i}.customer-seven.com`,
        country: "CA",
        state: "Ontario",
        locality: "Toronto",
        organization: "Customer Seven",
        sans: [`list-${i}.customer-seven.com`],
        key_type: "p256v1",
      });
      const certificate = lifetime === null ? ca.issue(csr.csr!, `list-${i}`) : issueShortLived(join(server.dir, "pki"), csr.csr!, `list-${i}`, lifetime);
      uploaded.push((await sdk.customCertificates.create({ zone_id: zone, certificate, custom_csr_id: csr.id })).id);
    }
    const ids = async (params: Omit<Cloudflare.CustomCertificates.CustomCertificateListParams, "zone_id"> = {}) => {
      const found: string[] = [];
      // The SDK pages on its own (per_page 5 here): every page of the filtered list.
      for await (const certificate of sdk.customCertificates.list({ zone_id: zone, per_page: 5, ...params })) found.push(certificate.id);
      return found;
    };
    expect(await ids({ status: "active" })).toEqual(uploaded);
    expect(await ids({ status: "expired" })).toEqual([]);

    // The second one's four seconds run out.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(await ids({ status: "active" })).toEqual([uploaded[0], uploaded[2]]);
    expect(await ids({ status: "expired", match: "all" })).toEqual([uploaded[1]]);
    expect(await ids({ status: "expired", match: "any" })).toEqual([uploaded[1]]);
    for (const status of ["deleted", "pending", "initializing"] as const) expect(await ids({ status })).toEqual([]);
    expect(await ids()).toEqual(uploaded);
    const page = await sdk.customCertificates.list({ zone_id: zone, status: "active" });
    expect(page.result.map((c) => c.status)).toEqual(["active", "active"]);
    expect(page.result_info).toMatchObject({ total_count: 2, count: 2 });

    // A status the SDK does not have is refused (1435), not ignored.
    try {
      await sdk.customCertificates.list({ zone_id: zone, status: "revoked" as "active" });
      throw new Error("an unknown status was accepted");
    } catch (error) {
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).errors.map((e) => e.code)).toEqual([1435]);
    }
  });

  it("customCertificates.prioritize.update sets priorities and answers the list in its new order; an unknown id changes nothing", async () => {
    const zone = scopeId("certprio");
    const sdk = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] }) });
    const uploaded: string[] = [];
    for (const i of [0, 1, 2]) {
      const csr = await sdk.customCsrs.create({
        zone_id: zone,
        common_name: `prio-${i}.customer-seven.com`,
        country: "CA",
        state: "Ontario",
        locality: "Toronto",
        organization: "Customer Seven",
        sans: [`prio-${i}.customer-seven.com`],
        key_type: "p256v1",
      });
      uploaded.push((await sdk.customCertificates.create({ zone_id: zone, certificate: ca.issue(csr.csr!, `prio-${i}`), custom_csr_id: csr.id })).id);
    }
    const [a, b, c] = uploaded as [string, string, string];

    const reordered: Array<[string, number | undefined]> = [];
    for await (const certificate of sdk.customCertificates.prioritize.update({ zone_id: zone, certificates: [{ id: c, priority: 2 }, { id: b, priority: 1 }] })) {
      reordered.push([certificate.id, certificate.priority]);
    }
    expect(reordered).toEqual([[c, 2], [b, 1], [a, 0]]);
    const listed: string[] = [];
    for await (const certificate of sdk.customCertificates.list({ zone_id: zone })) listed.push(certificate.id);
    expect(listed).toEqual([c, b, a]);
    expect((await sdk.customCertificates.get(b, { zone_id: zone })).priority).toBe(1);

    try {
      await sdk.customCertificates.prioritize.update({ zone_id: zone, certificates: [{ id: a, priority: 9 }, { id: "2458ce5a-0c35-4c7f-82c7-8e9487d3ff60", priority: 1 }] });
      throw new Error("an unknown certificate was prioritized");
    } catch (error) {
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as NotFoundError).errors).toEqual([expect.objectContaining({ code: 1449, source: { pointer: "/certificates/1/id" } })]);
    }
    // The SDK's own example body (entries without id or priority) is refused, naming the first entry's id.
    try {
      await sdk.customCertificates.prioritize.update({ zone_id: zone, certificates: [{}, {}] });
      throw new Error("entries without id were accepted");
    } catch (error) {
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).errors).toEqual([expect.objectContaining({ code: 1478, source: { pointer: "/certificates/0/id" } })]);
    }
    expect((await sdk.customCertificates.get(a, { zone_id: zone })).priority).toBe(0);
  });
});
