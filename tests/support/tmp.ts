/**
 * Temporary directories for tests that are always removed: explicitly (`cleanup()`, `await using`,
 * `withTempDir`) and, as a last resort, synchronously when the process unloads.
 */

/** A temporary directory; remove it with `cleanup()` or by `await using dir = await makeTempDir()`. */
export interface TempDir extends AsyncDisposable {
  /** Absolute path of the directory. */
  readonly path: string;
  /** Joins path segments below the directory with `/`. */
  join(...parts: string[]): string;
  /** Removes the directory and everything in it; idempotent. */
  cleanup(): Promise<void>;
  /** The path, so a TempDir can be used in template strings. */
  toString(): string;
}

const pending = new Set<string>();
let unloadHookInstalled = false;

function installUnloadHook(): void {
  if (unloadHookInstalled) return;
  unloadHookInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const path of pending) {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch {
        // Best effort only: the directory may already be gone.
      }
    }
    pending.clear();
  });
}

async function removeDir(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Creates a fresh temporary directory (prefix `litewarden-`). */
export async function makeTempDir(prefix = "litewarden-"): Promise<TempDir> {
  installUnloadHook();
  const path = await Deno.realPath(await Deno.makeTempDir({ prefix }));
  pending.add(path);
  let removed = false;
  const cleanup = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    pending.delete(path);
    await removeDir(path);
  };
  return {
    path,
    join: (...parts: string[]) => [path, ...parts].join("/"),
    cleanup,
    toString: () => path,
    [Symbol.asyncDispose]: cleanup,
  };
}

/** Runs `fn` with the path of a fresh temporary directory and removes the directory afterwards. */
export async function withTempDir<T>(
  fn: (dir: string) => Promise<T> | T,
  prefix?: string,
): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await fn(dir.path);
  } finally {
    await dir.cleanup();
  }
}

/**
 * Copies a directory tree (replicas, fixture trees) into `to`, creating it. Names in `skip` are
 * left out at every depth (e.g. a replica marker that must not carry over).
 */
export async function copyTree(from: string, to: string, skip: string[] = []): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    if (skip.includes(e.name)) continue;
    const src = `${from.replace(/\/$/, "")}/${e.name}`;
    if (e.isDirectory) await copyTree(src, `${to}/${e.name}`, skip);
    else await Deno.copyFile(src, `${to}/${e.name}`);
  }
}
