/** How often a waiting task looks for a free slot. */
const POLL_MS = 5;

/**
 * Runs at most `concurrency` tasks at once, with at most `waiting` more
 * waiting for a slot; a task beyond that is not run (`run` answers null, and
 * the caller refuses the request with 429). A tenant object runs its fresh
 * RSA key generations through one (each holds the isolate's one JavaScript
 * thread for 50–65 ms, so a scope flooded with creates would otherwise queue
 * every other scope's requests behind its generations), and the Worker its
 * audit-log pages and export batches (each up to megabytes of JSON, so
 * concurrent ones would otherwise exhaust the process's memory).
 *
 * A waiting task polls for a slot on its own timer rather than being woken
 * by the task it waits for: in a Worker, a promise of one request resolved
 * from another request's code can leave the waiting request hung (workerd
 * refuses I/O across request contexts), and a timer of its own cannot.
 */
export class TaskQueue {
  #running = 0;
  #waiting = 0;

  constructor(
    private readonly concurrency: number,
    private readonly waiting: number,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((done) => setTimeout(done, ms)),
  ) {}

  /** `task`'s value once it ran, or null when too many tasks were waiting already. */
  async run<T>(task: () => Promise<T>): Promise<T | null> {
    const release = await this.acquire();
    if (release === null) return null;
    try {
      return await task();
    } finally {
      release();
    }
  }

  /**
   * A slot, once one is free: call the answer to give it back (once); null
   * when too many tasks were waiting already. For work that outlives a
   * function call, such as a reply's body still being sent.
   */
  async acquire(): Promise<(() => void) | null> {
    if (this.#running >= this.concurrency) {
      if (this.#waiting >= this.waiting) return null;
      this.#waiting++;
      try {
        while (this.#running >= this.concurrency) await this.sleep(POLL_MS);
      } finally {
        this.#waiting--;
      }
    }
    this.#running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
    };
  }

  /** How many tasks run or wait now. */
  get load(): number {
    return this.#running + this.#waiting;
  }
}
