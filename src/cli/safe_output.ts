import { ownerTag, removeStaleTemps, tempRoot } from "../lib/stale_temps.ts";
import { processesHolding } from "../lib/open_handles.ts";
import { listForMessage } from "../lib/message_list.ts";
import { localFsError, RefusedError, UsageError } from "../errors.ts";
import { installIfAbsent, installReplacing } from "../lib/atomic_write.ts";

export const SIDECARS = ["-wal", "-shm", "-journal"] as const;

/** Existing files that a restore to `path` would replace or that SQLite would apply on open. */
export async function existingOutputs(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const p of [path, ...SIDECARS.map((s) => path + s)]) {
    const st = await Deno.lstat(p).catch(() => undefined);
    if (!st) continue;
    if (p === path && st.isDirectory) {
      throw new UsageError(`output path ${path} is a directory; give the database file's path`);
    }
    found.push(p);
  }
  return found;
}

/**
 * Refuses (exit 9) unless --force; a stale -wal beside a fresh restore would corrupt it.
 * `when` says when they were found, e.g. that they appeared while restoring.
 */
export function refuseOverwrite(paths: string[], path: string, when = ""): never {
  const what = paths.includes(path)
    ? `${path} already exists${when}`
    : `stale ${
      paths.map((p) => p.slice(path.length)).join(", ")
    } file(s) exist beside ${path}${when}`;
  throw new RefusedError(
    `${what}; refusing to overwrite: restore elsewhere with -o, or pass --force to replace it`,
  );
}

/**
 * Refuses (exit 9) to replace a database that another process has open: the app or Litestream
 * would go on with the old file's pages and WAL, and Litestream loses track of its WAL state.
 * `--force` replaces files, never a database in use. `refusal` says what was refused and what to
 * do (recover says it its own way).
 */
export function refuseInUse(
  paths: readonly string[],
  path: string,
  refusal =
    "refusing to restore over a database that is open (--force does not override this): stop the app and Litestream first, or restore elsewhere with -o",
): void {
  const holders = processesHolding([path, ...SIDECARS.map((s) => path + s), ...paths]);
  if (holders.length === 0) return;
  const byPid = new Map<number, string>();
  for (const h of holders) byPid.set(h.pid, `${h.command} (pid ${h.pid})`);
  throw new RefusedError(`${path} is in use by ${listForMessage([...byPid.values()])}; ${refusal}`);
}

/**
 * Puts the finished restore at `path`. With `replace` (--force) the stale -wal/-shm/-journal go
 * and a rename replaces `path`. Without it nothing is ever replaced, not even a file that
 * appeared at `path` while the restore ran (another restore, the app starting): exit 9, and the
 * loser of two restores racing to one path is the one that gets it.
 */
export async function installFile(
  temp: string,
  path: string,
  opts: { replace: boolean },
): Promise<void> {
  if (opts.replace) {
    for (const s of SIDECARS) await Deno.remove(path + s).catch(() => {});
    await installReplacing(temp, path);
    return;
  }
  const appeared = await existingOutputs(path);
  if (appeared.length > 0) refuseOverwrite(appeared, path, APPEARED);
  if (!(await installIfAbsent(temp, path))) refuseOverwrite([path], path, APPEARED);
}

const APPEARED = " (it appeared while restoring: another restore to it, or the app starting?)";

/** What to clean up when the process is interrupted; see {@link cleanupOnSignal}. */
interface InterruptCleanup {
  tempPaths: () => string[];
  onInterrupt?: () => void;
}

const INTERRUPT_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
const activeCleanups = new Set<InterruptCleanup>();
/** True once main.ts has installed the listener for the whole run (see below). */
let installedForProcess = false;

/**
 * One listener for the whole process: it runs every registered cleanup before exiting. (With one
 * listener per caller, the first one to run would exit and strand the others' temp files, e.g.
 * `verify --all` restoring several databases at once.)
 */
function onInterruptSignal(): void {
  for (const c of activeCleanups) {
    for (const p of c.tempPaths()) {
      try {
        Deno.removeSync(p, { recursive: true });
      } catch {
        // Already gone.
      }
    }
  }
  for (const c of activeCleanups) c.onInterrupt?.();
  if (shutdownHook) {
    // A resident command (the companion) finishes its last turn first, within a bound.
    const hook = shutdownHook;
    shutdownHook = undefined;
    const bound = new Promise<void>((r) => setTimeout(r, SHUTDOWN_BOUND_MS));
    void Promise.race([hook().catch(() => {}), bound]).finally(() => Deno.exit(130));
    return;
  }
  Deno.exit(130);
}

const SHUTDOWN_BOUND_MS = 10_000;
let shutdownHook: (() => Promise<void>) | undefined;

/**
 * Lets a long-running command flush on SIGINT/SIGTERM (a last heartbeat) before the exit 130: the
 * hook runs once, for at most 10 s. Returns a function that removes it.
 */
export function onShutdown(hook: () => Promise<void>): () => void {
  shutdownHook = hook;
  return () => {
    if (shutdownHook === hook) shutdownHook = undefined;
  };
}

/**
 * Installs the interrupt listener for the rest of the process, before any work: main.ts calls it
 * before it even loads the commands, so SIGINT/SIGTERM at any moment of a run exits 130 (and
 * cleans up whatever is registered then) instead of the signal's default death (130/143).
 */
export function installInterruptHandlers(): void {
  if (installedForProcess) return;
  installedForProcess = true;
  for (const s of INTERRUPT_SIGNALS) Deno.addSignalListener(s, onInterruptSignal);
}

/**
 * Removes the paths `tempPaths()` returns at that moment if the process is interrupted
 * (SIGINT/SIGTERM) and exits 130, so an interrupted restore never leaves a partial file. Install
 * it before creating the temp path, and uninstall it only after removing the path. Without the
 * process-wide listener (in-process callers such as tests) the listener lives while a cleanup is
 * registered; once the last is uninstalled the signal's default action applies again.
 * Returns a function that uninstalls it.
 */
export function cleanupOnSignal(tempPaths: () => string[], onInterrupt?: () => void): () => void {
  const entry: InterruptCleanup = { tempPaths, onInterrupt };
  if (activeCleanups.size === 0 && !installedForProcess) {
    for (const s of INTERRUPT_SIGNALS) Deno.addSignalListener(s, onInterruptSignal);
  }
  activeCleanups.add(entry);
  return () => {
    if (!activeCleanups.delete(entry)) return;
    if (activeCleanups.size === 0 && !installedForProcess) {
      for (const s of INTERRUPT_SIGNALS) Deno.removeSignalListener(s, onInterruptSignal);
    }
  };
}

/**
 * Runs `fn` with a fresh temp directory that is removed on every exit path, SIGINT and SIGTERM
 * included: the signal cleanup is installed before the directory exists (created synchronously,
 * so no signal is handled between its creation and its registration) and stays until it is gone.
 */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  let dir: string | undefined;
  removeStaleTemps(tempRoot());
  const uninstall = cleanupOnSignal(() => (dir ? [dir] : []));
  try {
    try {
      dir = Deno.makeTempDirSync({ prefix: `${prefix}${ownerTag()}-` });
    } catch (err) {
      // Deno names no path here; the temp directory is TMPDIR's (or /tmp).
      throw localFsError(err, `${tempRoot()}/${prefix}*`, {
        doing: "create the temp directory",
        hint: "set TMPDIR to a writable directory with room for the database",
      });
    }
    return await fn(dir);
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    uninstall();
  }
}
