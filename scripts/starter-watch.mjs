// Whether whoever started this process (npm, through `sh -c`) is still
// there: shared by npm start (scripts/start.mjs) and the edge agent's
// --watch (scripts/edge.mjs), which both must stop when npm is signalled
// and does not pass it on.
import { readFileSync } from "node:fs";

/**
 * Calls `onGone(reason)` once when whoever started this process stops
 * without telling it. npm does not always pass a signal on: it runs the
 * script through `sh -c`, and dash (Debian's sh) dies of the SIGTERM npm
 * forwards, leaving this process re-parented, and holds a forwarded SIGINT
 * until its child exits. So, every 250 ms: our parent changed (the shell or
 * npm is gone); under npm through a shell, the shell's parent changed (npm
 * is gone); or the shell woke up (it sleeps in wait() but for a signal: its
 * context-switch count on Linux). A wake right after this process was
 * itself paused (Ctrl-Z, a frozen cgroup: a tick late by a second) is not
 * taken for a stop, since the shell wakes then too.
 */
export function watchStarter(starter, onGone, intervalMs = 250) {
  if (starter === null) return;
  // A wake while this process was still starting (a build) counts: the shell slept all along.
  starter.tick = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const paused = now - starter.tick > intervalMs + 1000;
    starter.tick = now;
    let reason = null;
    if (process.ppid !== starter.parent) reason = "parent_exited";
    else if (starter.npm !== null && procStat(starter.parent)?.ppid !== starter.npm) reason = "npm_exited";
    else if (starter.wakes !== null) {
      const wakes = contextSwitches(starter.parent);
      if (wakes !== starter.wakes && !paused) reason = "npm_signalled";
      starter.wakes = wakes;
    }
    if (reason !== null) {
      clearInterval(timer);
      onGone(reason);
    }
  }, intervalMs);
  timer.unref();
}

/**
 * Who started this process, read once at start (before a parent can go);
 * null when npm did not: run directly (systemd, `nohup node ... &`), the
 * signals come to this process, and a parent that exits (a shell logging
 * out, a double fork) is no request to stop.
 */
export function starterOf() {
  if (process.env.npm_lifecycle_event === undefined) return null;
  const parent = process.ppid;
  const viaShell = /^(?:sh|dash|bash|ash|zsh)$/.test(readProc(parent, "comm")?.trim() ?? "");
  const npm = viaShell ? (procStat(parent)?.ppid ?? null) : parent;
  // npm's title is its command line ("npm start ..."); a test runner that npm started, spawning this
  // script itself, passes npm's environment on but is not npm.
  const command = npm === null ? null : readProc(npm, "cmdline");
  if (command !== null && !/^(?:\S*\/)?(?:npm|npx)(?:-cli\.js)?(?:[\0 ]|$)|\/npm-cli\.js\0/.test(command)) return null;
  return { parent, npm: viaShell ? npm : null, wakes: viaShell ? contextSwitches(parent) : null, tick: Date.now() };
}

function readProc(pid, name) {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "utf8");
  } catch {
    return null; // not Linux, or gone
  }
}

/** A process's state and parent, from /proc/PID/stat (the fields after "(comm)"). */
function procStat(pid) {
  const text = readProc(pid, "stat");
  if (text === null) return null;
  const [state, ppid] = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state, ppid: Number(ppid) };
}

function contextSwitches(pid) {
  const text = readProc(pid, "status");
  if (text === null) return null;
  return [...text.matchAll(/^(?:non)?voluntary_ctxt_switches:\s*(\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}
