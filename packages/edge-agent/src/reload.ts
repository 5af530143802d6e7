// The operator's reload command (`nginx -s reload`), run once when files changed.
import { spawn } from "node:child_process";
import { EdgeError } from "./errors.ts";

/** Runs the command through /bin/sh, its output on ours; a failure says the new files are in place. */
export function runReload(command: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn("/bin/sh", ["-c", command], { stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", (error) => fail(new EdgeError(`reload command could not start: ${error.message}`)));
    child.once("exit", (code, signal) => {
      if (code === 0) done();
      else fail(new EdgeError(`reload command failed (${signal ? `signal ${signal}` : `exit ${code}`}): the new files are in place`));
    });
  });
}
