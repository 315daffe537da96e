import { Command, Option } from "commander";
import { parseDuration } from "../checks/freshness.ts";
import { describeTarget } from "../config/target.ts";
import type { ReplicaTarget } from "../config/target.ts";
import {
  DamagedError,
  ExitCode,
  LitewardenError,
  noBackupError,
  refusedError,
  StorageError,
  storageError,
  usageError,
} from "../errors.ts";
import { formatBytes, formatTime, table } from "../lib/format.ts";
import { pointJson } from "../report/list_report.ts";
import { listReplica, onlyDamaged } from "../replica/listing.ts";
import type { ReplicaListing } from "../replica/listing.ts";
import { chooseRestorePlan, restoreToTemp } from "../replica/restore.ts";
import { planPrune } from "../replica/retention.ts";
import type { KeepRules, PrunePlan } from "../replica/retention.ts";
import { summarize } from "../replica/summary.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import type { Output } from "./context.ts";
import { parseWholeNumber } from "./options.ts";
import { cleanupOnSignal, withTempDir } from "./safe_output.ts";
import { resolveCliTarget } from "./target.ts";

export interface PruneOptions {
  config?: string;
  replica?: string;
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepWithin?: string;
  minAge: string;
  v03Tree?: boolean;
  apply?: boolean;
  json?: boolean;
}

/** Deletes per batch request; the S3 backend splits further if needed. */
const DELETE_BATCH = 100;

export function pruneCommand(output: Output, done: (code: number) => void) {
  return new Command("prune")
    .description(
      "Retention with keep rules (like restic forget): a dry run unless --apply; never deletes what a kept restore point needs.",
    )
    .argument("[target]", "database path from the config, or a replica URL")
    .option(
      "--config <path>",
      "litestream.yml (default: $LITESTREAM_CONFIG or /etc/litestream.yml)",
    )
    .option("--replica <name>", "only this replica of the database")
    .option("--keep-last <n>", "keep the n newest restore points")
    .option("--keep-hourly <n>", "keep the newest point of each of the last n hours that have one")
    .option("--keep-daily <n>", "… of each of the last n days")
    .option("--keep-weekly <n>", "… of each of the last n ISO weeks")
    .option("--keep-monthly <n>", "… of each of the last n months")
    .option(
      "--keep-within <duration>",
      "keep every point within this span of the newest one, e.g. 7d",
    )
    .addOption(
      new Option("--min-age <duration>", "never delete objects younger than this").default("1h"),
    )
    .option(
      "--v03-tree",
      "remove the old v0.3 generations/ tree once the v0.5 history under the same prefix restores",
    )
    .option("--apply", "delete (without it, only print the plan)")
    .option("--json", "print the plan (and what was deleted) as JSON")
    .addHelpText(
      "after",
      `
The newest point is always kept, and with it the newest restorable chain. --keep-within counts
back from the newest point, not from now, so a replica whose writer stopped is never wiped.

Examples:
  litewarden prune /data/db.sqlite3 --keep-daily 7 --keep-weekly 4 --keep-monthly 6
  litewarden prune s3://bucket/vw --keep-within 48h --keep-daily 30 --apply --json`,
    )
    .action(async (target, opts) => done(await runPrune(target, opts, output)));
}

/** A keep count beyond any real retention; bounds the rule arithmetic. */
const MAX_KEEP = 1_000_000;

function parseRules(opts: PruneOptions): KeepRules {
  const count = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    return parseWholeNumber(v, flag, 0, MAX_KEEP);
  };
  const rules: KeepRules = {
    last: count(opts.keepLast, "--keep-last"),
    hourly: count(opts.keepHourly, "--keep-hourly"),
    daily: count(opts.keepDaily, "--keep-daily"),
    weekly: count(opts.keepWeekly, "--keep-weekly"),
    monthly: count(opts.keepMonthly, "--keep-monthly"),
    withinMs: opts.keepWithin !== undefined
      ? parseDuration(opts.keepWithin, "--keep-within")
      : undefined,
  };
  return rules;
}

export async function runPrune(
  arg: string | undefined,
  opts: PruneOptions,
  output: Output,
): Promise<number> {
  const rules = parseRules(opts);
  const hasRule = Object.values(rules).some((v) => v !== undefined);
  if (!hasRule && !opts.v03Tree) {
    throw usageError(
      "give at least one keep rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-within) or --v03-tree",
    );
  }
  const minAgeMs = parseDuration(opts.minAge, "--min-age");
  const resolved = await resolveCliTarget(arg, opts);
  const reports = [];
  for (const target of resolved.replicas) {
    reports.push(await pruneReplica(target, rules, { ...opts, minAgeMs, hasRule }, output));
  }
  if (opts.json) {
    output.out(JSON.stringify(
      reports.length === 1 ? reports[0] : { ok: true, command: "prune", replicas: reports },
      null,
      2,
    ));
  }
  return ExitCode.ok;
}

async function pruneReplica(
  target: ReplicaTarget,
  rules: KeepRules,
  opts: PruneOptions & { minAgeMs: number; hasRule: boolean },
  output: Output,
) {
  const storage = await openStorage(target);
  const location = describeTarget(target);
  const listing = await listReplica(storage);
  const damaged = onlyDamaged(listing);
  if (damaged) throw damaged;
  if (!listing.v03 && !listing.v05) {
    throw noBackupError(
      `no backup found at ${location}; nothing to prune (check the bucket and path)`,
    );
  }
  const notes: string[] = [];
  if (opts.v03Tree) {
    if (!listing.v03) {
      notes.push("no v0.3 generations/ tree here; --v03-tree has nothing to remove");
    } else {
      await verifyV05Restorable(storage, listing);
      // The newest restorable chain is never deleted: a v0.3 history newer than the v0.5 one
      // is what Litestream v0.5.7+ restores from, so it is not an old tree.
      if (summarize(listing).restoreFrom === "v0.3") {
        throw refusedError(
          `the v0.3 generations/ tree at ${location} is newer than the v0.5 history (it holds the newest restorable point), so it stays; is a Litestream v0.3 still writing here?`,
        );
      }
      notes.push(
        "the v0.5 history restored cleanly (every LTX CRC-64 checked), so the v0.3 generations/ tree is planned for removal",
      );
    }
  }
  const now = new Date();
  let plan = planPrune(listing, opts.hasRule ? rules : { last: Number.MAX_SAFE_INTEGER }, {
    minAgeMs: opts.minAgeMs,
    now,
    dropV03Tree: opts.v03Tree && !!listing.v03,
    // `--v03-tree` alone touches only the v0.3 tree.
    keepAllV05: !opts.hasRule,
  });
  let deleted = 0;
  if (opts.apply && plan.deletions.length > 0) {
    await probeDeletePermission(storage, location);
    // Re-list right before deleting: stop if anything planned or kept changed under us.
    const fresh = await listReplica(storage, { readLtxHeaders: !!listing.v05 });
    const replan = planPrune(fresh, opts.hasRule ? rules : { last: Number.MAX_SAFE_INTEGER }, {
      minAgeMs: opts.minAgeMs,
      now,
      dropV03Tree: opts.v03Tree && !!fresh.v03,
      keepAllV05: !opts.hasRule,
    });
    plan = reconcilePlans(plan, replan, location);
    const uninstall = cleanupOnSignal(() => [], () => {
      output.err(
        `litewarden: interrupted after deleting ${deleted} of ${plan.deletions.length} objects; every kept point is still restorable; run prune again to finish`,
      );
    });
    try {
      for (let i = 0; i < plan.deletions.length; i += DELETE_BATCH) {
        const batch = plan.deletions.slice(i, i + DELETE_BATCH).map((d) => d.key);
        await storage.delete(batch);
        deleted += batch.length;
      }
    } finally {
      uninstall();
    }
  }
  const report = {
    ok: true,
    command: "prune",
    location,
    applied: !!opts.apply,
    notes,
    points: plan.points.map((p) => ({
      ...pointJson(p.point, now),
      key: p.key,
      kept: p.kept,
      reasons: p.reasons,
    })),
    delete: {
      objects: plan.deletions.length,
      bytes: plan.bytesFreed,
      requests: Math.ceil(plan.deletions.length / DELETE_BATCH),
      keys: plan.deletions.map((d) => d.key),
    },
    protectedYoung: plan.protectedYoung,
    deleted,
  };
  if (!opts.json) output.out(pruneText(report, plan, now, opts.minAge));
  return report;
}

function pruneText(
  report: { location: string; applied: boolean; notes: string[]; deleted: number },
  plan: PrunePlan,
  _now: Date,
  minAge: string,
): string {
  const lines = [
    `Prune plan for ${report.location}${report.applied ? "" : " (dry run: nothing deleted)"}`,
  ];
  for (const n of report.notes) lines.push(`  note: ${n}`);
  if (plan.points.length > 0) {
    const rows = [["", "TIME", "POINT", "KEPT BY"]];
    for (const p of plan.points) {
      rows.push([
        p.kept ? "keep" : "drop",
        formatTime(p.point.time),
        p.point.format === "v0.3"
          ? `v0.3 ${p.point.generation} index ${p.point.index}`
          : `v0.5 TXID ${p.point.txid}`,
        p.reasons.join(", "),
      ]);
    }
    lines.push(table(rows).split("\n").map((l) => `  ${l}`).join("\n"));
  }
  lines.push(
    `  ${plan.deletions.length} objects to delete, ${formatBytes(plan.bytesFreed)} freed, ${
      Math.ceil(plan.deletions.length / DELETE_BATCH)
    } delete request(s) after 2 listings${
      plan.protectedYoung
        ? `; ${plan.protectedYoung} more are younger than --min-age ${minAge} and stay`
        : ""
    }`,
  );
  lines.push(
    report.applied ? `  deleted ${report.deleted} objects` : "  run again with --apply to delete",
  );
  return lines.join("\n");
}

/** --v03-tree only after the v0.5 history has just restored cleanly into a temp dir. */
async function verifyV05Restorable(storage: Storage, listing: ReplicaListing): Promise<void> {
  if (!listing.v05) {
    throw usageError(
      "--v03-tree needs a v0.5 (LTX) history under the same prefix; there is none, so the v0.3 tree is the only backup and stays",
    );
  }
  const v05Only: ReplicaListing = { ...listing, v03: undefined };
  const chosen = chooseRestorePlan(v05Only, {});
  await withTempDir("litewarden-prune-", async (dir) => {
    try {
      await restoreToTemp(storage, chosen, `${dir}/v05.sqlite3`, { parallelism: 8 });
    } catch (err) {
      if (err instanceof LitewardenError) {
        throw new LitewardenError(
          err.kind,
          `the v0.5 history does not restore, so the v0.3 tree stays: ${err.message}`,
        );
      }
      throw err;
    }
  });
}

/** Fails early (exit 4) when the credentials may not delete, before any real deletion. */
async function probeDeletePermission(storage: Storage, location: string): Promise<void> {
  try {
    await storage.delete([`.litewarden-delete-probe-${crypto.randomUUID()}`]);
  } catch (err) {
    if (err instanceof StorageError) {
      throw storageError(
        `permission denied: cannot delete in ${location} (${err.message}); give the key s3:DeleteObject or run without --apply`,
        err,
      );
    }
    throw err;
  }
}

/**
 * The re-listed plan decides: only objects both plans delete go (new objects from a running
 * Litestream can only add protection). A kept point that vanished meanwhile means someone else
 * is deleting (Litestream's own retention, another prune): stop without deleting anything.
 */
function reconcilePlans(first: PrunePlan, second: PrunePlan, location: string): PrunePlan {
  const keptNow = new Set(second.points.map((p) => p.key));
  const vanished = first.points.filter((p) => p.kept && !keptNow.has(p.key));
  if (vanished.length > 0) {
    throw new DamagedError(
      `the replica at ${location} changed while planning: ${
        vanished[0].key
      } disappeared (a running retention or another prune?); nothing was deleted: run prune again`,
    );
  }
  const again = new Set(second.deletions.map((d) => d.key));
  const deletions = first.deletions.filter((d) => again.has(d.key));
  return { ...first, deletions, bytesFreed: deletions.reduce((n, d) => n + d.size, 0) };
}
