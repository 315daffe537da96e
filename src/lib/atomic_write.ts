/**
 * The one way litewarden replaces a local file: a temp file in the same directory (so the
 * rename is atomic), fsync, rename, fsync the directory (so the rename survives a crash). A
 * failure removes the temp file; readers see the old file or the new one, never half of one.
 */
import { localFsError } from "../errors.ts";
import { ownerTag, removeStaleTemps } from "./stale_temps.ts";

/** The directory part of a path ("." for a bare name). */
export function parentDir(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
}

/** A unique temp name in the target's directory, so the final rename is atomic. */
export function tempPathFor(path: string): string {
  const slash = path.lastIndexOf("/");
  const base = path.slice(slash + 1);
  return `${parentDir(path)}/.${base}.litewarden-${ownerTag()}-${
    crypto.randomUUID().slice(0, 8)
  }.tmp`;
}

/** Makes a completed rename durable. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself has happened.
  }
}

/**
 * Writes `data` to `path` atomically (see above). A permission problem or a full disk is a typed
 * error naming the path; the temp file is removed on every failure.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  opts: { mode?: number } = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  // A run killed mid-write (SIGKILL, power loss) left its temp file here; ours replaces it.
  removeStaleTemps(parentDir(path));
  const tmp = tempPathFor(path);
  let created = false;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: opts.mode ?? 0o644 });
    created = true;
    try {
      let at = 0;
      while (at < bytes.length) at += await f.write(bytes.subarray(at));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
    created = false;
  } catch (err) {
    if (created) await Deno.remove(tmp).catch(() => {});
    throw localFsError(err, created ? path : parentDir(path), { needBytes: bytes.length });
  }
  await syncDir(parentDir(path));
}

/**
 * Puts the finished (fsynced) `temp` file at `path` only if nothing is there, and makes that
 * durable: `temp` is hard-linked to `path` (link fails when `path` exists, so even a file created
 * a moment ago is never replaced), then unlinked, then the directory is fsynced. Returns false,
 * leaving `temp` in place, when `path` exists.
 */
export async function installIfAbsent(temp: string, path: string): Promise<boolean> {
  try {
    await Deno.link(temp, path);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    // Filesystems without hard links (some FUSE and network mounts): check, then rename. That
    // leaves a window of microseconds instead of the whole restore, never a partial file.
    if (await Deno.lstat(path).then(() => true, () => false)) return false;
    try {
      await Deno.rename(temp, path);
    } catch (renameErr) {
      throw localFsError(renameErr, path);
    }
    await syncDir(parentDir(path));
    return true;
  }
  await Deno.remove(temp).catch(() => {});
  await syncDir(parentDir(path));
  return true;
}

/** Renames the finished `temp` file over `path` (replacing it) and fsyncs the directory. */
export async function installReplacing(temp: string, path: string): Promise<void> {
  try {
    await Deno.rename(temp, path);
  } catch (err) {
    throw localFsError(err, path);
  }
  await syncDir(parentDir(path));
}
