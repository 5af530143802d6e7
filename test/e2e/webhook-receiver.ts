// A real HTTP receiver for webhook notifications: a Node server on
// 127.0.0.1 that records every request (method, path, headers, JSON body)
// and answers each with the status the test chooses at that moment.
import { type IncomingHttpHeaders, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  at: number;
  /** The status it was answered with. */
  status: number;
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** The status the next requests are answered with. */
  status = 200;
  url = "";
  #server: Server | null = null;

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      let text = "";
      req.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      req.on("end", () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { unparsed: text };
        }
        this.received.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body, at: Date.now(), status: this.status });
        res.writeHead(this.status, { "content-type": "text/plain" }).end("ok");
      });
    });
    await new Promise<void>((done) => this.#server!.listen(0, "127.0.0.1", done));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks/certificates`;
    return this;
  }

  /** The alerts received (everything but test messages). */
  alerts(): Received[] {
    return this.received.filter((r) => typeof r.body.alert_type === "string");
  }

  /** Waits until `done` holds of what was received, or fails naming what was. */
  async until(what: string, done: (received: Received[]) => boolean, timeoutMs = 30_000, logs: () => string = () => ""): Promise<Received[]> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (done(this.received)) return this.received;
      await sleep(100);
    }
    throw new Error(`${what}: not received in ${timeoutMs} ms; received ${JSON.stringify(this.received.map((r) => r.body))}\n${logs()}`);
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((done) => (this.#server ? this.#server.close(() => done()) : done()));
  }
}
