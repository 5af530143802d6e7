// The deployment's ACME settings as the zone objects read them: what is
// taken, what is refused (and said to the operator), and the defaults.
import { describe, expect, it } from "vitest";
import { acmeConfig, parseRenewBefore, renewalDue } from "../src/tenant/acme-config";

const DIRECTORIES = JSON.stringify({ lets_encrypt: { directory: "https://acme-v02.api.letsencrypt.org/directory" } });
const DAY = 86_400_000;

describe("ACME configuration", () => {
  it("takes one CA as the default, a fresh key per renewal and one P-256 certificate per hostname unless told", () => {
    const config = acmeConfig({ ACME_DIRECTORIES: DIRECTORIES });
    expect(config).toMatchObject({ ok: true, value: { defaultCa: "lets_encrypt", reuseKey: false, dual: false, dnsResolver: null, renewBefore: { fraction: 1 / 3 } } });
  });

  it("MANAGED_KEY_TYPES: p256v1 alone, or with rsa2048 beside it (dual certificates); anything else is refused by name", () => {
    for (const [value, dual] of [["p256v1", false], [" p256v1 , rsa2048 ", true], ["", false]] as const) {
      expect(acmeConfig({ ACME_DIRECTORIES: DIRECTORIES, MANAGED_KEY_TYPES: value }), value).toMatchObject({ ok: true, value: { dual } });
    }
    for (const value of ["rsa2048", "rsa2048,p256v1", "p256v1,p256v1", "p256v1,rsa4096", "p256v1,rsa2048,rsa2048", "ed25519"]) {
      expect(acmeConfig({ ACME_DIRECTORIES: DIRECTORIES, MANAGED_KEY_TYPES: value }), value).toEqual({
        ok: false,
        reason: "acme_not_configured",
        problem: `MANAGED_KEY_TYPES ${JSON.stringify(value)} is neither "p256v1" nor "p256v1,rsa2048"`,
      });
    }
  });

  it("refuses what it cannot use, saying what to fix", () => {
    const refused = (env: Record<string, string>) => {
      const config = acmeConfig(env);
      return config.ok ? null : config.problem;
    };
    expect(refused({})).toBe("ACME_DIRECTORIES is not set");
    expect(refused({ ACME_DIRECTORIES: "{" })).toBe("ACME_DIRECTORIES is not JSON");
    expect(refused({ ACME_DIRECTORIES: JSON.stringify({ le: { directory: "http://ca.example/dir" } }) })).toBe('ACME_DIRECTORIES: le has no https "directory"');
    expect(refused({ ACME_DIRECTORIES: DIRECTORIES, ACME_DEFAULT_CA: "google" })).toBe('ACME_DEFAULT_CA "google" is not in ACME_DIRECTORIES');
    expect(refused({ ACME_DIRECTORIES: DIRECTORIES, RENEW_KEY_REUSE: "yes" })).toBe('RENEW_KEY_REUSE "yes" is not true or false');
    expect(refused({ ACME_DIRECTORIES: DIRECTORIES, RENEW_BEFORE: "2/1" })).toMatch(/^RENEW_BEFORE "2\/1" is not a fraction/);
  });

  it("renews at a third of the lifetime left, never later than 30 days before expiry for a long certificate, or a fixed time before", () => {
    expect(renewalDue(0, 90 * DAY, parseRenewBefore("1/3")!)).toBe(60 * DAY);
    expect(renewalDue(0, 200 * DAY, parseRenewBefore("")!)).toBe(200 * DAY - (200 * DAY) / 3);
    expect(renewalDue(0, 365 * DAY, { fraction: 0.05 })).toBe(335 * DAY);
    expect(renewalDue(0, 10 * DAY, parseRenewBefore("30d")!)).toBe(5 * DAY);
  });
});
