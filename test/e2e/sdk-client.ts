import Cloudflare from "cloudflare";

/**
 * The official SDK pointed at a test server: only baseURL changed, credentials
 * from the environment explicitly off, and no retries (the SDK retries 409 and
 * 5xx by default; a refusal is the answer under test).
 */
export function sdkClient(baseURL: string, auth: { apiToken: string } | { apiEmail: string; apiKey: string }): Cloudflare {
  return new Cloudflare({ baseURL, apiToken: null, apiKey: null, apiEmail: null, userServiceKey: null, maxRetries: 0, ...auth });
}
