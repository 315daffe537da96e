import { refusedError, usageError } from "../errors.ts";

export const SIDECARS = ["-wal", "-shm", "-journal"] as const;

/** Existing files that a restore to `path` would replace or that SQLite would apply on open. */
export async function existingOutputs(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const p of [path, ...SIDECARS.map((s) => path + s)]) {
    const st = await Deno.lstat(p).catch(() => undefined);
    if (!st) continue;
    if (p === path && st.isDirectory) {
      throw usageError(`output path ${path} is a directory; give the database file's path`);
    }
    found.push(p);
  }
  return found;
}

/** Refuses (exit 9) unless --force; a stale -wal beside a fresh restore would corrupt it. */
export function refuseOverwrite(paths: string[], path: string): never {
  const what = paths.includes(path)
    ? `${path} already exists`
    : `stale ${paths.map((p) => p.slice(path.length)).join(", ")} file(s) exist beside ${path}`;
  throw refusedError(
    `${what}; refusing to overwrite: restore elsewhere with -o, or pass --force to replace it`,
  );
}

/** A unique temp name in the target's directory, so the final rename is atomic. */
export function tempPathFor(path: string): string {
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash) : ".";
  const base = path.slice(slash + 1);
  return `${dir}/.${base}.litewarden-${crypto.randomUUID().slice(0, 8)}.tmp`;
}

export function parentDir(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
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
 * Removes `tempPath` if the process is interrupted (SIGINT/SIGTERM) and exits 130, so an
 * interrupted restore never leaves a partial file. Returns a function that uninstalls it.
 */
export function cleanupOnSignal(tempPaths: () => string[], onInterrupt?: () => void): () => void {
  const handler = () => {
    for (const p of tempPaths()) {
      try {
        Deno.removeSync(p, { recursive: true });
      } catch {
        // Already gone.
      }
    }
    onInterrupt?.();
    Deno.exit(130);
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, handler);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, handler);
  };
}
