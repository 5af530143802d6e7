// Native profile of workerd with Linux perf: where the CPU of a request goes,
// JavaScript and runtime alike (HTTP, RPC, SQLite, BoringSSL, V8's GC).
// workerd runs with V8's --perf-basic-prof-only-functions, so JavaScript
// frames carry their function names (from /tmp/perf-<pid>.map).
import { execFileSync, spawn } from "node:child_process";

/** Is `perf` usable here (installed, and allowed to attach to our children)? */
export function perfAvailable(): boolean {
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
  } catch {
    return false;
  }
  if (process.getuid?.() === 0) return true;
  try {
    return Number(execFileSync("cat", ["/proc/sys/kernel/perf_event_paranoid"], { encoding: "utf8" })) <= 1;
  } catch {
    return false;
  }
}

/** Samples `pid` (all threads, call graphs) for `seconds`; resolves when perf has written `out`. */
export function perfRecord(pid: number, seconds: number, out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("perf", ["record", "-F", "997", "-g", "-p", String(pid), "-o", out, "--", "sleep", String(seconds)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`perf record failed (${code}): ${err.slice(-500)}`))));
  });
}

// A sample belongs to the first category that matches a frame, walking from
// the leaf towards the root. Frames of the kernel, libc and the allocator
// match nothing, so their time goes to whoever called them (e.g. pwrite and
// fsync to SQLite, memcpy to the structured clone).
const CATEGORIES: ReadonlyArray<readonly [string, RegExp]> = [
  ["WebCrypto (BoringSSL)", /^(__)?(ecp_|ec_|EC_|ECDSA|bn_|BN_|RSA|rsa_|EVP_|aes|gcm|CRYPTO_|sha256|SHA256|bssl::|fiat_|p256|x25519|ed25519|HMAC|hmac|mulx4x|sqrx8x|mul4x|sqr8x|generate_prime|maybe_(add|rshift)|block_cipher_df|OPENSSL_|BCM_|CTR_DRBG)|workerd::api::(SubtleCrypto|CryptoKey|.*Key(Impl)?::)/],
  ["SQLite (incl. WAL writes, fsync)", /^(sqlite3|wal[A-Z]|btree|pager|unix[A-Z]|vdbe|pcache|memjrnl|subjournal)|workerd::(Sqlite|api::SqlStorage|ActorSqlite)/],
  ["V8 garbage collection", /v8::internal::(Heap::(Collect|Scavenge|MarkCompact|PerformGarbageCollection|GarbageCollection)|Scavenger|Scavenge|MarkCompact|MinorMarkSweep|MarkingVisitor|MainMarkingVisitor|ConcurrentMarking|Sweeper|ArrayBufferSweeper|IncrementalMarking|Evacuat|GCTracer|MarkingBarrier)|^cppgc::|workerd::jsg::HeapTracer/],
  ["ArrayBuffer / typed array allocation", /BackingStore|JSTypedArray|JSArrayBuffer|CreateTypedArray|Builtins_TypedArray|Builtins_ArrayBuffer|ExternalEntityTable|ExternalPointerTable|AllocateExternalBackingStore/],
  ["RPC: structured clone", /ValueSerializer|ValueDeserializer|workerd::jsg::(Serializer|Deserializer)/],
  ["RPC / DO plumbing (capnp, actors)", /^capnp::|workerd::api::(JsRpc|.*Rpc|DurableObject|Fetcher|GlobalActorOutgoingFactory)|workerd::.*(Rpc|Actor|OutputGate|InputGate)|workerd::server::Server::Actor/],
  ["HTTP, Request/Response, streams", /kj::.*(Http|AsyncIoStream|AsyncStreamFd|Socket|Network|Fd)|workerd::api::(Request|Response|Headers|Body|ReadableStream|WritableStream|.*Stream|Url|URL)|workerd::(WorkerEntrypoint|server::Server::HttpListener|.*Http)/],
  ["JavaScript (our code, libraries, builtins)", /^Builtins_|^(JS|LazyCompile|Function|Script):|v8::internal::(Runtime_|.*IC|JSObject|Object|String|Factory|Compiler|maglev|compiler|interpreter|JSON|Json|Deoptimizer|Map|Builtin|Isolate::|Execution|Invoke)/],
  ["runtime glue (kj event loop, jsg bindings, V8 API)", /^kj::|^workerd::|^v8::/],
];

const explained = new Map<string, number>();
function explainFrames(frames: readonly string[]): void {
  const f = frames.find((x) => CATEGORIES.some(([, p]) => p.test(x))) ?? frames[0];
  if (f !== undefined) explained.set(f, (explained.get(f) ?? 0) + 1);
}
export const explainedFrames = () => [...explained].sort((a, b) => b[1] - a[1]).slice(0, 40);

function categorize(frames: readonly string[]): string {
  for (const sym of frames) {
    for (const [name, pattern] of CATEGORIES) if (pattern.test(sym)) return name;
  }
  return "other (kernel, libc, allocator)";
}

/** One perf sample: the thread's name and its frames, leaf first. */
interface Sample {
  comm: string;
  frames: string[];
  /** Whether the leaf frame is in the kernel (null until a frame is read). */
  kernel: boolean | null;
}

/** Where a profiled endpoint's CPU went, as shares of all samples. */
export interface PerfProfile {
  samples: number;
  helperShare: number;
  kernelShare: number;
  categories: Array<{ name: string; share: number; kernel: number }>;
  jsFunctions: Array<{ name: string; share: number }>;
}

// JavaScript frames as V8 names them in the perf map ("JS:*buildCsr index.js:123" and the like).
const JS_FRAME = /^(?:JS|LazyCompile|Function):[*~^+']*(\S*)\s+(\S+)/;

/**
 * Reads a perf.data file. Returns the share of samples by category, split by
 * thread (the JavaScript thread vs V8's helper threads), and the JavaScript
 * functions with the most inclusive time.
 */
export function perfReport(file: string, { explain }: { explain?: string } = {}): PerfProfile {
  const text = execFileSync("perf", ["script", "-i", file, "-F", "comm,tid,ip,sym,dso"], {
    encoding: "utf8",
    maxBuffer: 1024 * 1024 * 1024,
    stdio: ["ignore", "pipe", "ignore"],
  });
  const samples: Sample[] = [];
  let current: Sample | null = null;
  for (const line of text.split("\n")) {
    if (!line.trim()) {
      if (current) samples.push(current);
      current = null;
      continue;
    }
    if (!line.startsWith("\t") && !line.startsWith(" ")) {
      current = { comm: line.trim().split(/\s+/)[0] ?? "", frames: [], kernel: null };
      continue;
    }
    if (current) {
      const frame = line.trim().replace(/^[0-9a-f]+\s+/, "");
      current.kernel ??= frame.endsWith("([kernel.kallsyms])");
      current.frames.push(frame.replace(/\s+\([^()]*\)$/, ""));
    }
  }
  if (current) samples.push(current);

  const total = samples.length || 1;
  const byCategory = new Map<string, number>();
  const kernelBy = new Map<string, number>();
  const jsInclusive = new Map<string, number>();
  let helperThreads = 0;
  for (const s of samples) {
    const helper = !/^workerd$/.test(s.comm);
    if (helper) helperThreads++;
    const category = helper && !s.frames.some((f) => /SubtleCrypto|sqlite/i.test(f)) ? "V8 garbage collection" : categorize(s.frames);
    if (explain && category === explain) explainFrames(s.frames);
    const key = helper ? `${category} [helper threads]` : category;
    byCategory.set(key, (byCategory.get(key) ?? 0) + 1);
    if (s.kernel) kernelBy.set(key, (kernelBy.get(key) ?? 0) + 1);
    const seen = new Set<string>();
    for (const f of s.frames) {
      const m = JS_FRAME.exec(f);
      if (!m || !m[1] || seen.has(m[1])) continue;
      seen.add(m[1]);
      jsInclusive.set(m[1], (jsInclusive.get(m[1]) ?? 0) + 1);
    }
  }
  const share = (n: number) => n / total;
  return {
    samples: samples.length,
    helperShare: share(helperThreads),
    kernelShare: share(samples.filter((s) => s.kernel).length),
    // kernel: the part of the category spent in the kernel (syscalls: writes, fsync, sockets).
    categories: [...byCategory].sort((a, b) => b[1] - a[1]).map(([name, n]) => ({ name, share: share(n), kernel: share(kernelBy.get(name) ?? 0) })),
    jsFunctions: [...jsInclusive].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, n]) => ({ name, share: share(n) })),
  };
}
