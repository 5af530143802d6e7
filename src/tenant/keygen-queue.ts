/**
 * Runs at most `concurrency` tasks at once, with at most `waiting` more
 * queued in arrival order; a task beyond that is not run (`run` answers
 * null, and the caller refuses the request with 429). A tenant object runs
 * its fresh RSA key generations through one: each holds the isolate's one
 * JavaScript thread for 50–65 ms, so a scope flooded with creates would
 * otherwise queue every other scope's requests behind its generations.
 */
export class TaskQueue {
  #running = 0;
  readonly #queue: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly waiting: number,
  ) {}

  /** `task`'s value once it ran, or null when the queue was full. */
  async run<T>(task: () => Promise<T>): Promise<T | null> {
    if (this.#running >= this.concurrency) {
      if (this.#queue.length >= this.waiting) return null;
      await new Promise<void>((start) => this.#queue.push(start));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      // The slot passes to the next waiter; only when none waits is it freed.
      if (next) next();
      else this.#running--;
    }
  }

  /** How many tasks run or wait now. */
  get load(): number {
    return this.#running + this.#queue.length;
  }
}
