import { TaskQueue } from "../core/task-queue";
import type { JsonText, Page } from "../storage/paging";
import { releasedWhenSent } from "./envelope";
import { refuse } from "./results";

/**
 * Large reads are built in memory (an audit page of 100 entries, or a CSR
 * page of 50 records with 150 long SANs each, can reach megabytes): each
 * kind runs through a queue of its own, at most so many at once per isolate
 * and so many waiting; beyond that a read is refused with 429 (971) and
 * Retry-After, so concurrent large reads cannot exhaust memory or hold every
 * other request behind them.
 */
export const AUDIT_READS = new TaskQueue(4, 64);
export const LIST_READS = new TaskQueue(8, 128);

// A page at least this large (UTF-8) holds its slot until it has been sent,
// not only built: its bytes waiting for a slow client are what take memory.
// Smaller pages give it back at once (following a body to its end costs a
// stream: 30% of small-page throughput).
const SENT_BEFORE_RELEASE_BYTES = 64 * 1024;

/** The UTF-8 size of `text` when it may reach `limit`; a smaller number otherwise (no encoding for short text). */
function utf8Size(text: string, limit: number): number {
  // A UTF-16 code unit is at most 3 bytes of UTF-8.
  return text.length * 3 < limit ? text.length : new TextEncoder().encode(text).byteLength;
}

/** Runs one read in turn in `queue`; 429 when too many wait. */
export async function inTurn<T>(queue: TaskQueue, read: () => Promise<T>): Promise<T> {
  const done = await queue.run(read);
  if (done === null) refuse({ reason: "rate_limited" });
  return done;
}

/** A slot of `queue`, or the request ends with 429; call the answer to give it back. */
export async function slotOf(queue: TaskQueue): Promise<() => void> {
  const release = await queue.acquire();
  if (release === null) refuse({ reason: "rate_limited" });
  return release;
}

/** A page read in turn in `queue`; a large one keeps its slot until it has been sent. */
export async function pageInTurn(queue: TaskQueue, read: () => Promise<Page<JsonText>>, reply: (page: Page<JsonText>) => Response): Promise<Response> {
  const release = await slotOf(queue);
  try {
    const page = await read();
    if (utf8Size(page.items, SENT_BEFORE_RELEASE_BYTES) < SENT_BEFORE_RELEASE_BYTES) {
      release();
      return reply(page);
    }
    return releasedWhenSent(reply(page), release);
  } catch (error) {
    release();
    throw error;
  }
}
