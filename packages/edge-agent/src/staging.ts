// Files written so that a reader (a reloading TLS server) sees the old file
// or the new one, never part of either; and a set of files that all land or
// none does.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { EdgeError, message } from "./errors.ts";

/** A file written in full beside its place, waiting to be renamed over it. */
export interface Staged {
  tmp: string;
  path: string;
}

/** A file to write: its path, its content, and its exact mode. */
export interface FileToWrite {
  path: string;
  data: string;
  mode: number;
}

/**
 * Writes data to a new temporary file beside path (created exclusively,
 * written in full, fsynced, with exactly mode) and answers it, to be renamed
 * over path; a failed write leaves no temporary file behind.
 */
export function stage(path: string, data: string, mode: number): Staged {
  // A directory where the file goes would fail only at its rename, after others were renamed.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${path} is a directory`);
  // Beside its place (a rename within one directory is atomic), under a short
  // name of its own: path plus a suffix would exceed NAME_MAX for a file named
  // by a long hostname. A dot file, so no glob (`include *.conf;`) matches it.
  const tmp = join(dirname(path), `.edge-tmp-${randomBytes(8).toString("hex")}`);
  const fd = openSync(tmp, "wx", mode);
  try {
    // write(2) may write less than asked (a disk filling up, a file size limit): write the rest, or fail.
    const bytes = Buffer.from(data, "utf8");
    for (let done = 0; done < bytes.length; ) {
      const wrote = writeSync(fd, bytes, done);
      if (wrote <= 0) throw new Error(`short write to ${tmp}`);
      done += wrote;
    }
    fsyncSync(fd);
    // The umask can only remove bits; chmod makes the mode exactly what was asked.
    chmodSync(tmp, mode);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  return { tmp, path };
}

/** Writes one file atomically: staged beside its place, then renamed over it. */
export function writeAtomic(path: string, data: string, mode: number): void {
  const staged = stage(path, data, mode);
  renameSync(staged.tmp, staged.path);
}

/**
 * Writes every file, all or nothing: each is written in full beside its
 * place first, and only then are they renamed into place, so a failed write
 * (a full disk, a read-only directory, a file in the way) leaves every file
 * as it was, never a new key beside an old certificate.
 */
export function writeAll(dir: string, files: readonly FileToWrite[]): void {
  const staged: Staged[] = [];
  try {
    for (const file of files) staged.push(stage(file.path, file.data, file.mode));
  } catch (error) {
    for (const { tmp } of staged) rmSync(tmp, { force: true });
    throw new EdgeError(`writing into ${dir} failed, nothing changed: ${message(error)}`);
  }
  for (const { tmp, path } of staged) renameSync(tmp, path);
}

/** The SHA-256 of a text, hex. */
export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The SHA-256 of a file's bytes, hex; null when it cannot be read. */
export function sha256File(path: string): string | null {
  try {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  } catch {
    return null;
  }
}
