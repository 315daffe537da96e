import { Option } from "commander";
import { parseDuration } from "../checks/freshness.ts";
import { describeTarget } from "../config/target.ts";
import type { ReplicaTarget } from "../config/target.ts";
import { ExitCode, exitCodeOf, LitewardenError, NoBackupError } from "../errors.ts";
import { markedMessage, refreshMarker } from "../replica/marker.ts";
import { newestRestorablePoint } from "../replica/restore.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import type { Output } from "./context.ts";
import { replicaCommand } from "./options.ts";
import { resolveCliTarget } from "./target.ts";

/**
 * The replica marker (src/replica/marker.ts) as the container gate uses it:
 * - `restore --if-replica-exists` refreshes it after every restore, and refuses (exit 3) when no
 *   backup is found but the marker says one was seen, unless a fresh start is allowed;
 * - `mark` writes it once the replica holds a restorable point: the entrypoint runs
 *   `mark --wait … --with-parent` in the background after a first boot, so the marker exists as
 *   soon as Litestream has uploaded the first snapshot.
 * `list`, `verify` and `prune` never write it (they stay read-only on the replica).
 */

export interface MarkOptions {
  config?: string;
  replica?: string;
  wait?: string;
  interval: string;
  withParent?: boolean;
  json?: boolean;
}

export function markCommand(output: Output, done: (code: number) => void) {
  return replicaCommand(
    "mark",
    "Record in the replica that a backup was seen there, once it holds a restorable point; from then on `restore --if-replica-exists` refuses to start on an empty database when the backup is missing.",
    { json: "print what was marked as JSON" },
  )
    .option(
      "--wait <duration>",
      "keep looking this long for a restorable point (e.g. 15m) instead of failing at once",
    )
    .addOption(new Option("--interval <duration>", "time between looks with --wait").default("5s"))
    .option(
      "--with-parent",
      "stop waiting once the process that started this one exits (after one last look)",
    )
    .addHelpText(
      "after",
      `
The marker is one small object, .litewarden/replica-seen.json under the replica prefix; Litestream
and every other command ignore it. Exit 3 when no restorable point appeared in time.

Examples:
  litewarden mark /data/db.sqlite3 --config /etc/litestream.yml
  litewarden mark /data/db.sqlite3 --wait 15m --with-parent &   # the container entrypoint`,
    )
    .action(async (target, opts) => done(await runMark(target, opts, output)));
}

interface Marked {
  location: string;
  newestPoint: Date;
  firstSeen: string;
}

export async function runMark(
  arg: string | undefined,
  opts: MarkOptions,
  output: Output,
): Promise<number> {
  const waitMs = opts.wait !== undefined ? parseDuration(opts.wait, "--wait") : 0;
  const intervalMs = parseDuration(opts.interval, "--interval");
  const resolved = await resolveCliTarget(arg, opts);
  const parent = Deno.ppid;
  const deadline = Date.now() + waitMs;

  const pending = new Map<ReplicaTarget, { storage?: Storage; why?: LitewardenError }>(
    resolved.replicas.map((t) => [t, {}]),
  );
  const marked: Marked[] = [];
  for (;;) {
    // Read before looking, so the look after the parent's exit is the last one.
    const parentGone = opts.withParent === true && Deno.ppid !== parent;
    for (const [target, state] of pending) {
      try {
        state.storage ??= await openStorage(target);
        const point = (await newestRestorablePoint(state.storage))?.time;
        if (point === undefined) {
          state.why = new NoBackupError("no backup there yet");
          continue;
        }
        const previous = await refreshMarker(state.storage, point, (l) => output.err(l));
        marked.push({
          location: describeTarget(target),
          newestPoint: point,
          firstSeen: previous?.firstSeen ?? new Date().toISOString(),
        });
        pending.delete(target);
      } catch (err) {
        // Storage hiccups and half-uploaded replicas are worth another look; bugs are not.
        if (!(err instanceof LitewardenError)) throw err;
        state.why = err;
      }
    }
    if (pending.size === 0 || parentGone || Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }

  for (const m of marked) output.err(markedMessage(m.location, m.newestPoint));
  const marks = marked.map((m) => ({
    location: m.location,
    newestPoint: m.newestPoint.toISOString(),
    firstSeen: m.firstSeen,
  }));
  if (pending.size === 0) {
    if (opts.json) {
      output.out(JSON.stringify({ ok: true, command: "mark", marked: marks }, null, 2));
    }
    return ExitCode.ok;
  }

  const notMarked = [...pending.entries()].map(([t, s]) => ({
    location: describeTarget(t),
    reason: s.why?.message ?? "not looked at",
  }));
  const when = opts.withParent && Deno.ppid !== parent
    ? " (stopped looking: the parent process exited)"
    : opts.wait !== undefined
    ? ` after waiting ${opts.wait}`
    : "";
  const message = `no restorable backup${when} at ${
    notMarked.map((n) => `${n.location} (${n.reason})`).join(", ")
  }; marker not written (run \`litewarden mark\` again once Litestream has uploaded a snapshot)`;
  // Storage trouble says more than "nothing there yet".
  const failure = [...pending.values()].map((s) => s.why)
    .find((why) => why !== undefined && !(why instanceof NoBackupError));
  const code = exitCodeOf(failure ?? new NoBackupError(message));
  if (opts.json) {
    output.out(JSON.stringify(
      { ok: false, exitCode: code, error: message, command: "mark", marked: marks, notMarked },
      null,
      2,
    ));
  }
  output.err(`litewarden: ${message}`);
  return code;
}

function sleep(ms: number): Promise<void> {
  // Timers overflow past 2^31-1 ms (about 24.8 days) and would fire at once; the caller's loop
  // re-checks its deadline after each sleep.
  return new Promise((r) => setTimeout(r, Math.min(ms, 2 ** 31 - 1)));
}
