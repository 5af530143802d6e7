import type { Posted } from "./alerting-store";

// How long a destination has to answer (a test message, an alert).
const POST_TIMEOUT_MS = 10_000;

/**
 * POSTs one JSON body to a webhook destination, its secret (if any) in
 * `cf-webhook-auth` as Cloudflare sends it. Any 2xx is success. Redirects are
 * not followed (an alert goes where the operator said, nowhere else). On
 * Cloudflare `fetch` reaches public addresses only; self-hosted, workerd's
 * network allows private ones only with `--allow-private-outbound`, so a
 * destination cannot be used to probe the operator's network.
 */
export async function postWebhook(url: string, secret: string | null, body: unknown): Promise<Posted> {
  try {
    const reply = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "custom-csr-api-notifications", ...(secret === null ? {} : { "cf-webhook-auth": secret }) },
      body: JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
    await reply.body?.cancel();
    if (reply.status >= 200 && reply.status < 300) return { ok: true, status: reply.status };
    // The status only (a clear error), not the reason phrase or the body: nothing of what answers is relayed.
    return { ok: false, status: reply.status, detail: `the destination answered HTTP ${reply.status}` };
  } catch (error) {
    console.error(JSON.stringify({ level: "warn", event: "webhook_post_failed", host: safeHost(url), message: error instanceof Error ? error.message : String(error) }));
    return { ok: false, status: null, detail: "the destination could not be reached, or did not answer in time" };
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "";
  }
}
