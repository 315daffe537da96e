import { encodeHeartbeat, HEARTBEAT_KEY, readLivePosition, RECENT_POSITIONS } from "./heartbeat.ts";
import type { Heartbeat, LivePosition, SeenPosition } from "./heartbeat.ts";
import type { Storage } from "../storage/storage.ts";

/**
 * The resident companion beside Litestream: a loop over small tasks, each due every its own
 * interval. A task's failure is logged and retried at its next turn, never fatal (the companion
 * must outlive storage outages). When the stop condition holds (the parent exited, a signal), every
 * task gets one last turn (`final`), then the loop returns. New duties (e.g. uploading files) are
 * one more task.
 */
export interface CompanionTask {
  /** For log lines: `heartbeat`, `mark`. */
  readonly name: string;
  readonly intervalMs: number;
  /** One turn. Returns true when the task is finished for good (it is not run again). */
  run(): Promise<boolean | void>;
  /** The last turn before the companion exits (default: one more `run`). */
  final?(): Promise<void>;
}

export interface CompanionOptions {
  /** Checked at least every `pollMs`: true stops the loop (after the final turns). */
  shouldStop: () => boolean;
  /** Wakes the loop early, e.g. on SIGTERM. */
  signal?: AbortSignal;
  /** One line per failed turn. */
  log: (line: string) => void;
  /** How often `shouldStop` is looked at between turns. Default 1000 ms. */
  pollMs?: number;
}

export async function runCompanion(
  tasks: CompanionTask[],
  opts: CompanionOptions,
): Promise<void> {
  const pollMs = opts.pollMs ?? 1000;
  const active = tasks.map((task) => ({ task, due: 0 }));
  const turn = async (name: string, fn: () => Promise<boolean | void>) => {
    try {
      return await fn();
    } catch (err) {
      opts.log(`${name}: ${err instanceof Error ? err.message : String(err)}; trying again later`);
      return false;
    }
  };
  const stopped = () => opts.shouldStop() || opts.signal?.aborted === true;
  while (!stopped()) {
    const now = Date.now();
    for (const a of [...active]) {
      if (a.due > now) continue;
      const done = await turn(a.task.name, () => a.task.run());
      if (done === true) active.splice(active.indexOf(a), 1);
      else a.due = Date.now() + a.task.intervalMs;
      if (stopped()) break;
    }
    if (stopped()) break;
    const next = Math.min(...active.map((a) => a.due), Date.now() + pollMs);
    await sleep(Math.max(0, Math.min(next - Date.now(), pollMs)), opts.signal);
  }
  for (const a of active) {
    await turn(a.task.name, () => (a.task.final ?? a.task.run).call(a.task));
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The heartbeat task: reads the live position and writes one heartbeat object to every storage,
 * one PUT per storage per turn (no retry inside a turn: the next turn is the retry, so a turn
 * never costs more than one PUT).
 */
export function heartbeatTask(opts: {
  storages: Storage[];
  dbPath: string;
  metaPath: string;
  intervalMs: number;
  now?: () => Date;
}): CompanionTask & { last?: Heartbeat } {
  const now = opts.now ?? (() => new Date());
  let recent: SeenPosition[] = [];
  const beat = async (final: boolean) => {
    let position: LivePosition | null = null;
    let positionProblem: string | undefined;
    try {
      position = await readLivePosition(opts.dbPath, opts.metaPath);
    } catch (err) {
      positionProblem = err instanceof Error ? err.message : String(err);
    }
    const time = now();
    if (position) {
      const head = recent[0];
      const same = head && head.generation === position.generation &&
        head.index === position.index && head.offset === position.offset;
      if (!same) {
        recent = [{ ...position, since: time.toISOString() }, ...recent].slice(
          0,
          RECENT_POSITIONS,
        );
      }
    }
    const hb: Heartbeat = {
      time: time.toISOString(),
      intervalSeconds: opts.intervalMs / 1000,
      position,
      recent,
      final,
      ...(positionProblem !== undefined && { positionProblem }),
    };
    task.last = hb;
    const failures: string[] = [];
    for (const s of opts.storages) {
      try {
        await s.put(HEARTBEAT_KEY, encodeHeartbeat(hb));
      } catch (err) {
        failures.push(`${s.location}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (failures.length > 0) throw new Error(`heartbeat not written to ${failures.join("; ")}`);
  };
  const task: CompanionTask & { last?: Heartbeat } = {
    name: "heartbeat",
    intervalMs: opts.intervalMs,
    run: () => beat(false),
    final: () => beat(true),
  };
  return task;
}
