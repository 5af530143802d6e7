// The part of autocannon 8's API the bench uses (the package ships no types).
declare module "autocannon" {
  interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | undefined;
    connections?: number;
    /** Seconds; ignored when `amount` is given. */
    duration?: number;
    /** Requests in all, then stop. */
    amount?: number;
    /** Seconds a request may take before it counts as a timeout. */
    timeout?: number;
  }

  interface Result {
    requests: { total: number };
    non2xx: number;
    errors: number;
    timeouts: number;
  }

  /** A running load: awaitable for its result, and an event emitter. */
  interface Instance extends PromiseLike<Result> {
    /** responseTime: milliseconds, fractional. */
    on(event: "response", listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): this;
    stop(): void;
  }

  export default function autocannon(options: Options): Instance;
}
