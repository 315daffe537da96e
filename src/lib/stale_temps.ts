/**
 * Temp files and directories say who made them (`<pid namespace>-<pid>` in the name), so a later
 * run can remove what a killed run (SIGKILL, OOM, power loss) left behind — once, and only once,
 * its owner is provably gone.
 */

/**
 * Who owns a temp file: the PID namespace and pid of this process, e.g. `4026531836-1234`. A later
 * run removes a temp file only when its owner is provably gone (see {@link ownerGone}), so names
 * carry both: a pid alone says nothing about a process in another container sharing the dir.
 */
export function ownerTag(): string {
  return `${pidNamespace() ?? 0}-${Deno.pid}`;
}

let cachedNamespace: string | null | undefined;

/** The inode of this process's PID namespace (`/proc/self/ns/pid` → `pid:[4026531836]`). */
function pidNamespace(): string | null {
  if (cachedNamespace === undefined) {
    try {
      cachedNamespace = /^pid:\[(\d+)\]$/.exec(Deno.readLinkSync("/proc/self/ns/pid"))?.[1] ?? null;
    } catch {
      cachedNamespace = null;
    }
  }
  return cachedNamespace;
}

/**
 * True only when the process that made a temp path is certainly gone: same PID namespace as
 * ours, not us, and no `/proc/<pid>`. Anything unknown (no /proc, another namespace, a reused
 * pid that is alive again) counts as alive: never touch another live run's files.
 */
function ownerGone(ns: string, pid: number): boolean {
  const own = pidNamespace();
  if (own === null || ns !== own || pid === Deno.pid) return false;
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

const TEMP_FILE = /^\..+\.litewarden-(\d+)-(\d+)-[0-9a-f]{8}\.tmp$/;
const TEMP_DIR = /^litewarden-[a-z]+-(\d+)-(\d+)-/;

/**
 * Removes the temp files (`.<db>.litewarden-<ns>-<pid>-<id>.tmp`) and temp directories
 * (`litewarden-<command>-<ns>-<pid>-…`) in `dir` that a killed run (SIGKILL, OOM, power loss)
 * left behind, once their owner is provably gone, and only our own user's. Returns what it removed.
 * Best effort: a directory that cannot be read is left alone.
 */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return removed;
  }
  const uid = Deno.uid();
  for (const e of entries) {
    const m = (e.isFile ? TEMP_FILE : e.isDirectory ? TEMP_DIR : undefined)?.exec(e.name);
    if (!m || !ownerGone(m[1], Number(m[2]))) continue;
    const path = `${dir}/${e.name}`;
    try {
      if (uid !== null && Deno.lstatSync(path).uid !== uid) continue;
      Deno.removeSync(path, { recursive: e.isDirectory });
      removed.push(path);
    } catch {
      // Raced with another cleaner, or not ours to remove.
    }
  }
  return removed;
}

/** Deno's temp directory, where temp directories are created. */
export function tempRoot(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}
