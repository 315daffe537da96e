import { Option } from "commander";
import { parseDuration } from "../checks/freshness.ts";
import { describeTarget } from "../config/target.ts";
import type { ReplicaTarget } from "../config/target.ts";
import { ExitCode, LitewardenError, UsageError } from "../errors.ts";
import { Progress, restoreProgress } from "../report/progress.ts";
import { pruneReport, pruneText } from "../report/prune_report.ts";
import { listReplica, requireBackup } from "../replica/listing.ts";
import type { ReplicaListing } from "../replica/listing.ts";
import { chooseRestorePlan, restoreToTemp } from "../replica/restore.ts";
import type { RestoreRequest } from "../replica/restore.ts";
import { planPrune, v03TreeRemoval } from "../replica/retention.ts";
import type { KeepRules, PrunePlan, PruneRequest, VaultFiles } from "../replica/retention.ts";
import type { RestorePoint } from "../replica/restore_point.ts";
import { FILES_BASE, listFileObjects, listVersions } from "../replica/vault_files.ts";
import type { VaultStore } from "../replica/vault_files.ts";
import { readReferencedFiles } from "../apps/vaultwarden/data_folder.ts";
import { formatBytes } from "../lib/format.ts";
import { executePrunePlan, probeDeletePermission, reconcile } from "../replica/retention_apply.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import type { Output } from "./context.ts";
import { parseWholeNumber, replicaCommand } from "./options.ts";
import { cleanupOnSignal, withTempDir } from "./safe_output.ts";
import { ageIdentityOption, resolveCliTarget } from "./target.ts";

export interface PruneOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
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

export function pruneCommand(output: Output, done: (code: number) => void) {
  return replicaCommand(
    "prune",
    "Retention with keep rules (like restic forget): a dry run unless --apply; never deletes what a kept restore point needs.",
    { json: "print the plan (and what was deleted) as JSON" },
  )
    .addOption(ageIdentityOption())
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
    .addHelpText(
      "after",
      `
The newest point is always kept, and with it the newest restorable chain. --keep-within counts
back from the newest point, not from now, so a replica whose writer stopped is never wiped.
Give at least one rule; a rule of 0 is refused (it would delete all but the newest point). An
interrupted --apply leaves every kept point restorable; run it again to finish.

Examples:
  litewarden prune /data/db.sqlite3 --keep-daily 7 --keep-weekly 4 --keep-monthly 6
  litewarden prune s3://bucket/vw --keep-within 48h --keep-daily 30 --apply --json`,
    )
    .action(async (target, opts) => done(await runPrune(target, opts, output)));
}

/** A keep count beyond any real retention; bounds the rule arithmetic. */
const MAX_KEEP = 1_000_000;

const RULE_FLAGS =
  "--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-within";

/**
 * The request the flags make. A rule of 0 would keep only the newest point and, with --apply,
 * delete all other history, so it is refused like a missing rule (as restic's `forget` refuses).
 */
function parseRequest(opts: PruneOptions): PruneRequest {
  const count = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    if (/^0+$/.test(v)) throw zeroRule(flag, v);
    return parseWholeNumber(v, flag, 1, MAX_KEEP);
  };
  const withinMs = opts.keepWithin !== undefined
    ? parseDuration(opts.keepWithin, "--keep-within")
    : undefined;
  if (withinMs === 0) throw zeroRule("--keep-within", opts.keepWithin!);
  const rules: KeepRules = {
    last: count(opts.keepLast, "--keep-last"),
    hourly: count(opts.keepHourly, "--keep-hourly"),
    daily: count(opts.keepDaily, "--keep-daily"),
    weekly: count(opts.keepWeekly, "--keep-weekly"),
    monthly: count(opts.keepMonthly, "--keep-monthly"),
    withinMs,
  };
  const hasRule = Object.values(rules).some((v) => v !== undefined);
  if (!hasRule && !opts.v03Tree) {
    throw new UsageError(`give at least one keep rule (${RULE_FLAGS}) or --v03-tree`);
  }
  return {
    rules,
    minAgeMs: parseDuration(opts.minAge, "--min-age"),
    now: new Date(),
    dropV03Tree: !!opts.v03Tree,
    // `--v03-tree` alone touches only the v0.3 tree.
    keepAllV05: !hasRule,
  };
}

function zeroRule(flag: string, value: string) {
  return new UsageError(
    `invalid ${flag} ${value}: a rule of 0 keeps nothing and would delete the history it names; give at least 1, or leave ${flag} out`,
  );
}

export async function runPrune(
  arg: string | undefined,
  opts: PruneOptions,
  output: Output,
): Promise<number> {
  const request = parseRequest(opts);
  const resolved = await resolveCliTarget(arg, opts);
  const reports = [];
  for (const target of resolved.replicas) {
    reports.push(await pruneReplica(target, request, opts, output));
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

/** One replica: list → plan → (apply: probe, re-list, reconcile, delete) → report. */
async function pruneReplica(
  target: ReplicaTarget,
  request: PruneRequest,
  opts: PruneOptions,
  output: Output,
) {
  const storage = await openStorage(target);
  const location = describeTarget(target);
  const listing = await listReplica(storage);
  requireBackup(listing, location);
  const notes = opts.v03Tree ? await v03TreeNotes(storage, listing, location, output) : [];
  let plan = planPrune(listing, request.rules, request);
  const store: VaultStore = { storage, base: FILES_BASE };
  const vault = await vaultFilesForPrune(store, listing, plan, output);
  if (vault) {
    notes.push(...vault.notes);
    plan = planPrune(listing, request.rules, request, vault.files);
  }
  let deleted = 0;
  if (opts.apply && plan.deletions.length > 0) {
    await probeDeletePermission(storage, location);
    // Re-list right before deleting: stop if anything planned or kept changed under us.
    const fresh = await listReplica(storage, { readLtxHeaders: !!listing.v05 });
    const freshVault = vault ? await listVaultFiles(store) : undefined;
    plan = reconcile(plan, fresh, location, freshVault);
    deleted = await deleteReportingInterrupts(storage, plan, output);
  }
  const report = pruneReport(location, !!opts.apply, notes, plan, deleted);
  if (!opts.json) output.out(pruneText(report, plan, opts.minAge));
  return report;
}

/** The stored bodies and versions of the vault's files (nothing is read but the listing). */
async function listVaultFiles(store: VaultStore): Promise<Omit<VaultFiles, "referenced">> {
  const [objects, versions] = await Promise.all([listFileObjects(store), listVersions(store)]);
  return { objects, versions };
}

/**
 * The vault's files for the plan, when any are stored: which bodies the kept points need is read
 * from their databases, so each kept point is restored into a temp directory (one at a time, each
 * removed before the next) and what its attachment and send rows reference is collected. Skipped
 * when no stored body could go anyway (none older than the oldest kept point and --min-age). A
 * kept point that does not restore keeps every body (and says why).
 */
async function vaultFilesForPrune(
  store: VaultStore,
  listing: ReplicaListing,
  plan: PrunePlan,
  output: Output,
): Promise<{ files: VaultFiles; notes: string[] } | undefined> {
  const stored = await listVaultFiles(store);
  const versions = [...stored.versions.values()].reduce((n, v) => n + v.length, 0);
  if (stored.objects.size === 0 && versions === 0) return undefined;
  const kept = plan.points.filter((p) => p.kept);
  const oldest = Math.min(...kept.map((p) => p.point.time.getTime()));
  const youngLimit = plan.request.now.getTime() - plan.request.minAgeMs;
  const bytes = [...stored.objects.values()].reduce((n, o) => n + o.size, 0);
  const what = `vault files: ${stored.objects.size} attachment and send bodies stored (${
    formatBytes(bytes)
  }), ${versions} key and settings version(s)`;
  const judged = [...stored.objects.values()].some((o) =>
    o.modified.getTime() < oldest && o.modified.getTime() <= youngLimit
  );
  if (!judged) {
    return {
      files: { ...stored, referenced: new Set() },
      notes: [
        `${what}; none is older than both the oldest kept point and --min-age, so every body stays (no kept point restored)`,
      ],
    };
  }
  const referenced = new Set<string>();
  const t0 = performance.now();
  let downloaded = 0;
  try {
    await withTempDir("litewarden-prune-", async (dir) => {
      for (const [i, p] of kept.entries()) {
        const chosen = chooseRestorePlan(listing, keptPointRequest(p.point));
        const progress = restoreProgress(
          output.progress,
          `reading kept point ${i + 1}/${kept.length}`,
          chosen,
        );
        const path = `${dir}/point.sqlite3`;
        const restored = await restoreToTemp(store.storage, chosen, path, {
          parallelism: 8,
          onDownload: progress.addBytes,
          onObject: progress.addObject,
        }).finally(() => progress.done());
        downloaded += restored.bytesDownloaded;
        for (const f of readReferencedFiles(path).files) referenced.add(f.rel);
        await Deno.remove(path);
      }
    });
  } catch (err) {
    if (!(err instanceof LitewardenError) || err.kind === "interrupted") throw err;
    return {
      files: { ...stored, referenced: undefined },
      notes: [
        `${what}; a kept point's database could not be restored (${err.message}), so which bodies the kept points need is unknown and every body stays`,
      ],
    };
  }
  return {
    files: { ...stored, referenced },
    notes: [
      `${what}; the ${kept.length} kept point(s) reference ${referenced.size} bod${
        referenced.size === 1 ? "y" : "ies"
      } (each restored to read its rows: ${formatBytes(downloaded)} downloaded in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      }s)`,
    ],
  };
}

/** The request that restores a kept point at its own time (its earliest state, for v0.3). */
function keptPointRequest(p: RestorePoint): RestoreRequest {
  return p.format === "v0.3"
    ? { generation: p.generation, timestamp: p.time }
    : { txid: BigInt(`0x${p.txid}`) };
}

/** Deletes in plan order; an interrupt says how far it got (any prefix of the plan is safe). */
async function deleteReportingInterrupts(
  storage: Storage,
  plan: PrunePlan,
  output: Output,
): Promise<number> {
  let deleted = 0;
  const uninstall = cleanupOnSignal(() => [], () => {
    output.err(
      `litewarden: interrupted after deleting ${deleted} of ${plan.deletions.length} objects; every kept point is still restorable; run prune again to finish`,
    );
  });
  const progress = new Progress(
    output.progress,
    "deleting",
    plan.deletions.length,
    plan.bytesFreed,
  );
  try {
    return await executePrunePlan(storage, plan, (n) => {
      for (; deleted < n; deleted++) {
        progress.addObject();
        progress.addBytes(plan.deletions[deleted].size);
      }
    });
  } finally {
    progress.done();
    uninstall();
  }
}

/** `--v03-tree`: the v0.3 tree goes only after the v0.5 history has just restored into a temp dir. */
async function v03TreeNotes(
  storage: Storage,
  listing: ReplicaListing,
  location: string,
  output: Output,
): Promise<string[]> {
  if (v03TreeRemoval(listing, location) === "absent") {
    return ["no v0.3 generations/ tree here; --v03-tree has nothing to remove"];
  }
  const chosen = chooseRestorePlan({ ...listing, v03: undefined }, {});
  await withTempDir("litewarden-prune-", async (dir) => {
    try {
      const progress = restoreProgress(output.progress, "checking the v0.5 history", chosen);
      await restoreToTemp(storage, chosen, `${dir}/v05.sqlite3`, {
        parallelism: 8,
        onDownload: progress.addBytes,
        onObject: progress.addObject,
      }).finally(() => progress.done());
    } catch (err) {
      if (!(err instanceof LitewardenError)) throw err;
      throw new LitewardenError(
        err.kind,
        `the v0.5 history does not restore, so the v0.3 tree stays: ${err.message}`,
        { cause: err },
      );
    }
  });
  return [
    "the v0.5 history restored cleanly (every LTX CRC-64 checked), so the v0.3 generations/ tree is planned for removal",
  ];
}
