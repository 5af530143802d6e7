// V8's sampling profiler over workerd's inspector (the DevTools protocol),
// for machines without perf: self time by JavaScript function.
import { prop } from "./api-client.ts";

/** Self time by function, as shares of all samples, heaviest first. */
export interface V8Profile {
  self: Array<{ name: string; share: number }>;
}

/** A CPU profile's nodes and samples (Profiler.Profile), the fields read here. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
}

function isCpuProfile(value: unknown): value is CpuProfile {
  return Array.isArray(prop(value, "nodes")) && Array.isArray(prop(value, "samples"));
}

/** Starts sampling the isolate behind `url` (ws://host:port/<service>); stop() gives the profile. */
export async function startV8Profile(url: string): Promise<{ stop(): Promise<V8Profile> }> {
  const ws = new WebSocket(url);
  let next = 1;
  const pending = new Map<number, (message: unknown) => void>();
  ws.onmessage = (event: MessageEvent) => {
    const msg: unknown = JSON.parse(String(event.data));
    const id = prop(msg, "id");
    const reply = typeof id === "number" ? pending.get(id) : undefined;
    if (typeof id === "number" && reply) {
      reply(msg);
      pending.delete(id);
    }
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  return {
    async stop() {
      const profile = prop(prop(await send("Profiler.stop"), "result"), "profile");
      ws.close();
      if (!isCpuProfile(profile)) throw new Error("Profiler.stop answered without a profile");
      const { nodes, samples } = profile;
      const byId = new Map(nodes.map((n) => [n.id, n]));
      const counts = new Map<string, number>();
      for (const id of samples) {
        const f = byId.get(id)?.callFrame;
        if (!f) continue;
        const key = `${f.functionName || "(anonymous)"} ${f.url ? f.url.split("/").pop() : ""}:${f.lineNumber + 1}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const total = samples.length || 1;
      return { self: [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => ({ name, share: n / total })) };
    },
  };
}
