import { describe, expect, it, vi } from "vitest";
import { authenticate } from "../src/auth/authenticate";
import { CLOCK_SKEW_SECONDS } from "../src/auth/jwt";
import { call, csrBody, expectError, scope, scopeId } from "./shared";
import { LEGACY_EMAIL, LEGACY_TEST_KEY, authHeaders, b64url, claimsFor, mintIssuerToken, mintToken } from "./tokens";
import { env } from "cloudflare:workers";

const listAs = (headers: Record<string, string>, path = `/client/v4/zones/${scopeId()}/custom_csrs`) =>
  call("GET", path, { headers });

/** Flips one bit in the signature's first byte. */
function tamperSignature(token: string): string {
  const [h, p, s] = token.split(".") as [string, string, string];
  const first = s[0] === "A" ? "B" : "A";
  return `${h}.${p}.${first}${s.slice(1)}`;
}

/** An ES256 token naming the configured issuer's kid but signed with some other P-256 key. */
async function signEs256WithStrangerKey(claims: unknown): Promise<string> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const input = `${b64url(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "issuer-es256" }))}.${b64url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

function withPayload(token: string, claims: unknown): string {
  const [h, , s] = token.split(".") as [string, string, string];
  return `${h}.${b64url(JSON.stringify(claims))}.${s}`;
}

describe("credentials: which case gives which code", () => {
  it("1402 with no Authorization and no X-Auth headers", async () => {
    expectError(await listAs({}), 400, 1402);
  });

  it("1000 when no bearer token can be extracted", async () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "bearer", "Bearer a b"]) {
      expectError(await listAs({ authorization }), 401, 1000);
    }
  });

  it("1001 when the token is not a parseable JWT", async () => {
    const good = await mintToken({ zones: ["z"] });
    const [h, p, s] = good.split(".") as [string, string, string];
    for (const token of ["abc", "a.b", `${h}.${p}`, `${h}.${p}.${s}.x`, `!!.${p}.${s}`, `${h}.${b64url("not json")}.${s}`, `${h}.${p}.@@`, `${b64url("{")}.${p}.${s}`]) {
      expectError(await listAs(authHeaders(token)), 401, 1001);
    }
  });

  it("1002 for a bad header: alg none, unsupported alg, wrong typ, unknown kid, HMAC with a kid", async () => {
    const payload = b64url(JSON.stringify(claimsFor({ zones: ["z"] })));
    const unsigned = (header: unknown) => `${b64url(JSON.stringify(header))}.${payload}.`;
    for (const token of [
      unsigned({ alg: "none", typ: "JWT" }),
      unsigned({ alg: "RS256", typ: "JWT" }),
      unsigned({ alg: "HS512" }),
      unsigned([1, 2]),
      await mintToken({ zones: ["z"], header: { typ: "JWS+xml" } }),
      await mintToken({ zones: ["z"], header: { kid: "issuer-es256" } }),
      await mintIssuerToken("ES256", { zones: ["z"], header: { kid: "nobody" } }),
      await mintIssuerToken("EdDSA", { zones: ["z"], header: { kid: "issuer-es256" } }),
      await mintIssuerToken("ES256", { zones: ["z"], header: { kid: undefined } }),
      await mintToken({ zones: ["z"], header: { crit: ["b64"], b64: false } }),
      await mintIssuerToken("EdDSA", { zones: ["z"], header: { crit: ["exp"] } }),
    ]) {
      expectError(await listAs(authHeaders(token)), 401, 1002);
    }
  });

  it("1002 for algorithm confusion: an HS256 token keyed with an issuer's public key", async () => {
    const jwks = JSON.parse(env.API_TOKEN_JWKS) as { keys: Array<{ kid: string }> };
    const publicJwk = JSON.stringify(jwks.keys[0]);
    const token = await mintToken({ zones: ["z"], header: { kid: "issuer-es256" } }, publicJwk);
    expectError(await listAs(authHeaders(token)), 401, 1002);
  });

  it("1003 for a tampered, wrong-key, expired, not-yet-valid or future-issued token", async () => {
    const now = Date.now();
    const skewMs = CLOCK_SKEW_SECONDS * 1000;
    const cases = [
      tamperSignature(await mintToken({ zones: ["z"] })),
      withPayload(await mintToken({ zones: ["z"] }), claimsFor({ zones: ["z", "other"] })),
      await mintToken({ zones: ["z"] }, "some-other-secret"),
      await mintToken({ zones: ["z"], now: now - 7200_000, ttlSeconds: 3600 }),
      await mintToken({ zones: ["z"], claims: { ...claimsFor({ zones: ["z"] }), nbf: Math.floor((now + skewMs + 60_000) / 1000) } }),
      await mintToken({ zones: ["z"], claims: { ...claimsFor({ zones: ["z"] }), iat: Math.floor((now + skewMs + 60_000) / 1000) } }),
      tamperSignature(await mintIssuerToken("ES256", { zones: ["z"] })),
      tamperSignature(await mintIssuerToken("EdDSA", { zones: ["z"] })),
      await signEs256WithStrangerKey(claimsFor({ zones: ["z"] })),
      // A DER-encoded ECDSA signature is not a JWS one (r‖s, 64 bytes).
      `${(await mintIssuerToken("ES256", { zones: ["z"] })).split(".").slice(0, 2).join(".")}.${b64url(new Uint8Array(70))}`,
    ];
    for (const token of cases) expectError(await listAs(authHeaders(token)), 401, 1003);
  });

  it("tolerates the documented clock skew and no more", async () => {
    const s = scopeId();
    const path = `/client/v4/zones/${s}/custom_csrs`;
    const now = Date.now();
    const justExpired = await mintToken({ zones: [s], now: now - 3600_000 - 30_000, ttlSeconds: 3600 });
    expect((await listAs(authHeaders(justExpired), path)).status).toBe(200);
    const longExpired = await mintToken({ zones: [s], now: now - 3600_000 - 90_000, ttlSeconds: 3600 });
    expectError(await listAs(authHeaders(longExpired), path), 401, 1003);
  });

  it("accepts nbf and iat up to the clock skew ahead", async () => {
    const now = Date.now();
    const ahead = Math.floor(now / 1000) + CLOCK_SKEW_SECONDS - 5;
    const token = await mintToken({ claims: { ...claimsFor({ zones: ["z"], now }), nbf: ahead, iat: ahead } });
    expect((await authenticate(new Request("https://x/", { headers: authHeaders(token) }), env, now)).ok).toBe(true);
  });

  it("1004 when the claims are not usable, 1005 when required ones are missing", async () => {
    const base = claimsFor({ zones: ["z"] });
    for (const claims of [[1], "text", 7, { ...base, exp: "tomorrow" }, { ...base, policies: "all" }, { ...base, policies: [{ effect: "maybe", resources: {}, permission_groups: [] }] }, { ...base, jti: 5 }]) {
      expectError(await listAs(authHeaders(await mintToken({ claims }))), 401, 1004);
    }
    const { exp: _exp, ...noExp } = base;
    const { policies: _p, ...noPolicies } = base;
    for (const claims of [noExp, noPolicies]) {
      expectError(await listAs(authHeaders(await mintToken({ claims }))), 401, 1005);
    }
  });

  it("accepts ES256 and EdDSA tokens from the configured JWKS", async () => {
    for (const alg of ["ES256", "EdDSA"] as const) {
      const id = scopeId();
      const token = await mintIssuerToken(alg, { zones: [id] });
      const reply = await call("POST", `/client/v4/zones/${id}/custom_csrs`, { token, body: csrBody({ key_type: "p256v1" }) });
      expect(reply.status, alg).toBe(201);
    }
  });

  it("prefers Authorization when both schemes are sent", async () => {
    const reply = await listAs({ authorization: "Basic x", "x-auth-email": LEGACY_EMAIL, "x-auth-key": LEGACY_TEST_KEY });
    expectError(reply, 401, 1000);
  });
});

describe("global API keys (X-Auth-Email + X-Auth-Key)", () => {
  const legacy = { "x-auth-email": LEGACY_EMAIL, "x-auth-key": LEGACY_TEST_KEY };

  it("a registered pair has full rights on its scopes", async () => {
    const created = await call<{ id: string }>("POST", "/client/v4/zones/legacyzone/custom_csrs", { headers: legacy, body: csrBody({ key_type: "p256v1" }) });
    expect(created.status).toBe(201);
    const deleted = await call("DELETE", `/client/v4/zones/legacyzone/custom_csrs/${created.body.result.id}`, { headers: legacy });
    expect(deleted.status).toBe(200);
    expect((await call("GET", "/client/v4/accounts/legacyacct/custom_csrs", { headers: { ...legacy, "x-auth-email": "OPS@customer-one.com" } })).status).toBe(200);
  });

  it("9103 for a wrong key, an unknown email, or only one header", async () => {
    const path = "/client/v4/zones/legacyzone/custom_csrs";
    const cases: Array<Record<string, string>> = [
      { ...legacy, "x-auth-key": `${LEGACY_TEST_KEY.slice(0, -1)}5` },
      { ...legacy, "x-auth-email": "someone@customer-one.com" },
      { "x-auth-email": LEGACY_EMAIL },
      { "x-auth-key": LEGACY_TEST_KEY },
    ];
    for (const headers of cases) {
      expectError(await call("GET", path, { headers }), 401, 9103);
    }
  });

  it("10000 outside the key's scopes", async () => {
    expectError(await call("GET", "/client/v4/zones/otherzone/custom_csrs", { headers: legacy }), 403, 10000);
    expectError(await call("GET", "/client/v4/accounts/legacyzone/custom_csrs", { headers: legacy }), 403, 10000);
  });
});

describe("authorization (403, 10000)", () => {
  it("refuses an account token on another account, a zone token on an account, a read-only token writing", async () => {
    const account = await scope("accounts");
    const zone = await scope("zones");
    const otherAccount = await mintToken({ accounts: [scopeId()] });
    const zoneToken = await mintToken({ zones: [account.id] });
    expectError(await call("GET", account.base, { token: otherAccount }), 403, 10000);
    expectError(await call("POST", account.base, { token: zoneToken, body: csrBody() }), 403, 10000);
    expectError(await call("GET", account.base, { token: zoneToken }), 403, 10000);

    const created = await zone.create(csrBody({ key_type: "p256v1" }));
    const readOnly = await mintToken({ zones: [zone.id], readOnly: true });
    expect((await call("GET", zone.base, { token: readOnly })).status).toBe(200);
    expect((await call("GET", `${zone.base}/${created.body.result.id}`, { token: readOnly })).status).toBe(200);
    expectError(await call("POST", zone.base, { token: readOnly, body: csrBody() }), 403, 10000);
    expectError(await call("DELETE", `${zone.base}/${created.body.result.id}`, { token: readOnly }), 403, 10000);
  });

  it("honours deny over allow, and * for every zone", async () => {
    const id = scopeId();
    const both = claimsFor({ zones: [id] });
    const denied = {
      ...both,
      policies: [
        ...(both.policies as unknown[]),
        { effect: "deny", resources: { [`com.cloudflare.api.account.zone.${id}`]: "*" }, permission_groups: [{ name: "SSL and Certificates Write" }] },
      ],
    };
    expectError(await listAs(authHeaders(await mintToken({ claims: denied })), `/client/v4/zones/${id}/custom_csrs`), 403, 10000);
    const everyZone = await mintToken({ zones: ["*"] });
    expect((await listAs(authHeaders(everyZone), `/client/v4/zones/${id}/custom_csrs`)).status).toBe(200);
    expectError(await listAs(authHeaders(everyZone), `/client/v4/accounts/${id}/custom_csrs`), 403, 10000);
  });

  it("checks the path before credentials, and credentials before the body", async () => {
    expectError(await call("POST", "/client/v4/zones//custom_csrs", { body: {} }), 400, 1401);
    expectError(await call("POST", `/client/v4/zones/${scopeId()}/custom_csrs`, { body: "garbage" }), 400, 1402);
    const token = await mintToken({ zones: ["elsewhere"] });
    expectError(await call("POST", `/client/v4/zones/${scopeId()}/custom_csrs`, { token, body: "garbage" }), 403, 10000);
  });
});

describe("secrets stay secret", () => {
  it("no credential, secret or key appears in a response or a log line", async () => {
    const lines: string[] = [];
    const capture = (...args: unknown[]) => lines.push(args.map(String).join(" "));
    const spies = [vi.spyOn(console, "log").mockImplementation(capture), vi.spyOn(console, "error").mockImplementation(capture), vi.spyOn(console, "warn").mockImplementation(capture)];
    try {
      const s = await scope();
      const bodies: string[] = [];
      const created = await s.create(csrBody({ key_type: "p256v1" }));
      bodies.push(JSON.stringify(created.body));
      bodies.push(JSON.stringify((await s.list()).body));
      bodies.push(JSON.stringify((await call("GET", s.base, { token: tamperSignature(s.token) })).body));
      bodies.push(JSON.stringify((await call("GET", "/client/v4/zones/legacyzone/custom_csrs", { headers: { "x-auth-email": LEGACY_EMAIL, "x-auth-key": "wrong-key" } })).body));
      const everything = [...bodies, ...lines].join("\n");
      expect(lines.length).toBeGreaterThan(0);
      for (const secret of [s.token, s.token.split(".")[2]!, env.API_TOKEN_SECRET, env.ADMIN_SECRET, env.KEY_ENCRYPTION_KEYS.split(":")[1]!, LEGACY_TEST_KEY, "wrong-key"]) {
        expect(everything).not.toContain(secret);
      }
      expect(everything).not.toMatch(/PRIVATE KEY|"d":|pkcs8/i);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

});

describe("verified-token cache, JWKS and hostile input", () => {
  it("a token verified once is still refused once it expires", async () => {
    const now = Date.now();
    const token = await mintToken({ zones: ["z"], now, ttlSeconds: 600 });
    const request = () => new Request("https://x/", { headers: authHeaders(token) });
    expect((await authenticate(request(), env, now)).ok).toBe(true);
    expect((await authenticate(request(), env, now + 60_000)).ok).toBe(true);
    expect(await authenticate(request(), env, now + 600_000 + (CLOCK_SKEW_SECONDS + 1) * 1000)).toMatchObject({
      ok: false,
      reason: "jwt_verification_failed",
    });
  });

  it("a rotated secret or JWKS empties the verified-token cache", async () => {
    const request = (token: string) => new Request("https://x/", { headers: authHeaders(token) });
    const token = await mintToken({ zones: ["z"] });
    expect((await authenticate(request(token), env)).ok).toBe(true);
    const rotated = { ...env, API_TOKEN_SECRET: "a-rotated-secret" } as Env;
    expect(await authenticate(request(token), rotated)).toMatchObject({ ok: false, reason: "jwt_verification_failed" });
    expect((await authenticate(request(token), env)).ok).toBe(true);

    const issued = await mintIssuerToken("ES256", { zones: ["z"] });
    expect((await authenticate(request(issued), env)).ok).toBe(true);
    const jwks = JSON.parse(env.API_TOKEN_JWKS) as { keys: Array<Record<string, unknown>> };
    const withdrawn = { ...env, API_TOKEN_JWKS: JSON.stringify({ keys: jwks.keys.filter((k) => k.kid !== "issuer-es256") }) } as Env;
    expect(await authenticate(request(issued), withdrawn)).toMatchObject({ ok: false, reason: "bad_jwt_header" });
  });

  it("ignores JWKS keys published for encryption, and a missing or broken JWKS", async () => {
    const request = (token: string) => new Request("https://x/", { headers: authHeaders(token) });
    const issued = await mintIssuerToken("ES256", { zones: ["z"] });
    const jwks = JSON.parse(env.API_TOKEN_JWKS) as { keys: Array<Record<string, unknown>> };
    const forEncryption = JSON.stringify({ keys: jwks.keys.map((k) => ({ ...k, use: "enc" })) });
    for (const API_TOKEN_JWKS of [forEncryption, "", "{not json", undefined]) {
      const result = await authenticate(request(issued), { ...env, API_TOKEN_JWKS } as Env);
      expect(result).toMatchObject({ ok: false, reason: "bad_jwt_header" });
    }
    // HS256 tokens keep working without any JWKS.
    const own = await mintToken({ zones: ["z"] });
    expect((await authenticate(request(own), { ...env, API_TOKEN_JWKS: undefined } as unknown as Env)).ok).toBe(true);
  });

  it("authenticate never throws on hostile headers", async () => {
    for (const authorization of ["Bearer " + "a".repeat(20_000), "Bearer ..", "Bearer \u00ff.\u00ff.\u00ff", `Bearer ${b64url("{}")}.${b64url("{}")}.`]) {
      const result = await authenticate(new Request("https://x/", { headers: { authorization } }), env);
      expect(result.ok).toBe(false);
    }
  });
});
