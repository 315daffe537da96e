import { Command, Option } from "commander";
import { parseDuration } from "../checks/freshness.ts";
import { describeTarget } from "../config/target.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { heartbeatTask, runCompanion } from "../replica/companion.ts";
import type { CompanionTask } from "../replica/companion.ts";
import { defaultMetaPath } from "../replica/heartbeat.ts";
import { markedMessage, refreshMarker } from "../replica/marker.ts";
import { newestRestorablePoint } from "../replica/restore.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import type { Output } from "./context.ts";
import { onShutdown } from "./safe_output.ts";
import { resolveCliTarget } from "./target.ts";

/**
 * `companion`: the resident process beside `litestream replicate` (the container entrypoint
 * starts it). Pipeline: resolve the database and its replicas → open their storage → build the
 * tasks (heartbeat; mark while the replica is not marked yet) → run them until the parent exits
 * or a signal arrives → one last turn of each task.
 */
export interface CompanionOptions {
  config?: string;
  replica?: string;
  heartbeatInterval: string;
  metaPath?: string;
  markWait?: string;
  markInterval: string;
  withParent?: boolean;
  parentPid?: string;
}

export const DEFAULT_HEARTBEAT_INTERVAL = "60s";

export function companionCommand(output: Output, done: (code: number) => void) {
  return new Command("companion")
    .description(
      "Run beside `litestream replicate`: write a heartbeat with the live database's position to every replica each interval (and mark the replica once a backup is there), so `verify` tells a quiet vault from a dead replicator.",
    )
    .argument("[db]", "database path from the config")
    .option(
      "--config <path>",
      "litestream.yml (default: $LITESTREAM_CONFIG or /etc/litestream.yml)",
    )
    .option("--replica <name>", "only this replica of the database")
    .addOption(
      new Option("--heartbeat-interval <duration>", "time between heartbeats").default(
        DEFAULT_HEARTBEAT_INTERVAL,
      ),
    )
    .option(
      "--meta-path <dir>",
      "Litestream's meta directory of the database (default: <dir>/.<file>-litestream)",
    )
    .option(
      "--mark-wait <duration>",
      "also write the replica marker once a restorable point appears, looking this long",
    )
    .addOption(
      new Option("--mark-interval <duration>", "time between looks for --mark-wait").default("5s"),
    )
    .option("--with-parent", "exit (after a last heartbeat) when the process that started it exits")
    .option(
      "--parent-pid <pid>",
      "with --with-parent: the parent's PID (default: the parent at start; give it when the parent may exit before this process is up)",
    )
    .addHelpText(
      "after",
      `
The heartbeat is one small object, .litewarden/heartbeat.json under the replica prefix: its time,
the interval, and the live position as Litestream v0.3 names it (generation, WAL index, offset),
never database contents. One PUT per replica per interval; a failed write is logged and retried at
the next interval. SIGTERM or SIGINT: a last heartbeat, then exit 130.

Examples:
  litewarden companion /data/db.sqlite3 --config /etc/litestream.yml --with-parent &
  litewarden companion /data/db.sqlite3 --mark-wait 15m --with-parent &   # the entrypoint`,
    )
    .action(async (target, opts) => done(await runCompanionCommand(target, opts, output)));
}

export async function runCompanionCommand(
  arg: string | undefined,
  opts: CompanionOptions,
  output: Output,
): Promise<number> {
  const intervalMs = parseDuration(opts.heartbeatInterval, "--heartbeat-interval");
  if (intervalMs < 1000) {
    throw new UsageError(
      `--heartbeat-interval ${opts.heartbeatInterval} is below 1s; use 1s or more`,
    );
  }
  const markWaitMs = opts.markWait !== undefined
    ? parseDuration(opts.markWait, "--mark-wait")
    : undefined;
  const markIntervalMs = parseDuration(opts.markInterval, "--mark-interval");
  const resolved = await resolveCliTarget(arg, opts);
  if (!resolved.dbPath) {
    throw new UsageError(
      "companion needs the live database: name it as in litestream.yml (with --config), not a replica URL",
    );
  }
  const storages: Storage[] = [];
  for (const t of resolved.replicas) storages.push(await openStorage(t));
  const log = (line: string) => output.err(`litewarden: companion: ${line}`);

  const tasks: CompanionTask[] = [
    heartbeatTask({
      storages,
      dbPath: resolved.dbPath,
      metaPath: opts.metaPath ?? defaultMetaPath(resolved.dbPath),
      intervalMs,
    }),
  ];
  if (markWaitMs !== undefined && markWaitMs > 0) {
    tasks.push(markTask(storages, markIntervalMs, Date.now() + markWaitMs, output, log));
  }

  const parent = opts.parentPid !== undefined ? parsePid(opts.parentPid) : Deno.ppid;
  const stop = new AbortController();
  let finished!: () => void;
  const ran = new Promise<void>((r) => (finished = r));
  const removeHook = onShutdown(() => {
    stop.abort();
    return ran;
  });
  log(
    `heartbeat every ${opts.heartbeatInterval} to ${
      resolved.replicas.map(describeTarget).join(", ")
    }`,
  );
  try {
    await runCompanion(tasks, {
      shouldStop: () => opts.withParent === true && Deno.ppid !== parent,
      signal: stop.signal,
      log,
    });
  } finally {
    finished();
    removeHook();
  }
  log(stop.signal.aborted ? "stopped by a signal" : "the parent process exited; stopped");
  return ExitCode.ok;
}

/** Marks every replica once it holds a restorable point; gives up (logged) at the deadline. */
function markTask(
  storages: Storage[],
  intervalMs: number,
  deadline: number,
  output: Output,
  log: (line: string) => void,
): CompanionTask {
  const pending = new Set(storages);
  const look = async (): Promise<boolean> => {
    for (const s of [...pending]) {
      const point = (await newestRestorablePoint(s))?.time;
      if (point === undefined) continue;
      await refreshMarker(s, point, (line) => output.err(line));
      pending.delete(s);
      output.err(markedMessage(s.location, point));
    }
    if (pending.size > 0 && Date.now() >= deadline) {
      log(`mark: no restorable backup appeared in time; marker not written`);
      return true;
    }
    return pending.size === 0;
  };
  return { name: "mark", intervalMs, run: look, final: async () => void await look() };
}

function parsePid(text: string): number {
  const pid = Number(text);
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(pid)) {
    throw new UsageError(`invalid --parent-pid ${text}: give a process id such as 1234`);
  }
  return pid;
}
