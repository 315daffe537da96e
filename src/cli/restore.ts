import { Option } from "commander";
import { describeTarget } from "../config/target.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { parentDir, tempPathFor } from "../lib/atomic_write.ts";
import { removeStaleTemps } from "../lib/stale_temps.ts";
import { formatBytes } from "../lib/format.ts";
import { restoreProgress } from "../report/progress.ts";
import { listReplica } from "../replica/listing.ts";
import {
  ALLOW_FRESH_START_ENV,
  judgeMissingBackup,
  judgeRollback,
  ON_DAMAGE_ENV,
  ON_DAMAGE_RESTORE_NEWEST_INTACT,
  readMarker,
  refreshMarker,
} from "../replica/marker.ts";
import { chooseRestoreSource, planObjects, restoreAvoidingDamage } from "../replica/restore.ts";
import type { ChosenPlan, RestoreResult, RestoreSource } from "../replica/restore.ts";
import {
  describePointAt,
  parsePointFlags,
  pointJson,
  requestsPoint,
} from "../replica/restore_point.ts";
import { openStorage } from "../storage/open.ts";
import type { Output } from "./context.ts";
import {
  cleanupOnSignal,
  existingOutputs,
  installFile,
  refuseInUse,
  refuseOverwrite,
} from "./safe_output.ts";
import {
  addPointOptions,
  envFlag,
  lossAcceptedByEnv,
  parseParallelism,
  replicaCommand,
} from "./options.ts";
import { ageIdentityOption, resolveCliTarget } from "./target.ts";

export interface RestoreOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  output?: string;
  timestamp?: string;
  index?: string;
  offset?: string;
  txid?: string;
  generation?: string;
  ifReplicaExists?: boolean;
  ifDbNotExists?: boolean;
  dryRun?: boolean;
  allowFreshStart?: boolean;
  acceptLoss?: boolean;
  parallelism: string;
  force?: boolean;
  json?: boolean;
}

export function restoreCommand(output: Output, done: (code: number) => void) {
  const command = replicaCommand(
    "restore",
    "Rebuild the database from a replica (latest or point in time), without Litestream; byte-identical to `litestream restore`.",
    {
      target: "database path from the config, or a replica URL (then -o is required)",
      replica: "restore from this replica of the database",
      json: "print a JSON summary",
    },
  );
  return addPointOptions(command, "restore")
    .addOption(ageIdentityOption())
    .option("-o, --output <path>", "where to write the database (default: the database path)")
    .option(
      "--if-replica-exists",
      "exit 0 when there is no backup (says so on stderr), unless one was seen there before",
    )
    .option("--if-db-not-exists", "exit 0 without doing anything when the output exists")
    .option(
      "--allow-fresh-start",
      `with --if-replica-exists: exit 0 even though a backup was seen there before (also ${ALLOW_FRESH_START_ENV}=1)`,
    )
    .option(
      "--accept-loss",
      `go on from the newest intact point when the chain is damaged, and (with --if-replica-exists) from a newest point older than the one seen there before (also ${ON_DAMAGE_ENV}=${ON_DAMAGE_RESTORE_NEWEST_INTACT} with --if-replica-exists)`,
    )
    .addOption(new Option("--parallelism <n>", "parallel downloads").default("8"))
    .option("--force", "replace an existing output and its -wal/-shm files")
    .option("--dry-run", "print the restore point and the objects it needs; download nothing")
    .addHelpText(
      "after",
      `
Litestream's single-dash spellings (-config, -o, -timestamp, -index, -txid, -generation,
-parallelism, -if-replica-exists, -if-db-not-exists) are accepted too.

With --if-replica-exists (the container gate) restore records in the replica that a backup was
seen (.litewarden/replica-seen.json, see \`litewarden mark\`). Once that marker exists, finding no
backup is exit 3 ("a backup was seen there before"), not a first boot; --allow-fresh-start or
${ALLOW_FRESH_START_ENV}=1 starts empty anyway. When the newest restorable point is older than the
one the marker recorded (part of the backup vanished), it refuses with exit 5 naming both points;
--accept-loss or ${ON_DAMAGE_ENV}=${ON_DAMAGE_RESTORE_NEWEST_INTACT} restores the older point and
records it.

Examples:
  litewarden restore /data/db.sqlite3 --config /etc/litestream.yml --if-db-not-exists
  litewarden restore s3://bucket/vaultwarden -o /tmp/vw.sqlite3 --timestamp 2026-11-20T09:00:00Z`,
    )
    .action(async (target, opts) => done(await runRestore(target, opts, output)));
}

/**
 * `restore`: a short pipeline of named steps over src/replica, like Litestream's
 * `cmd/litestream/restore.go` Run. Each step either returns what the next needs or ends the
 * command (an exit code, or a thrown typed error).
 */
export async function runRestore(
  arg: string | undefined,
  opts: RestoreOptions,
  output: Output,
): Promise<number> {
  const started = performance.now();
  const req = parsePointFlags(opts);
  const parallelism = parseParallelism(opts.parallelism);
  const resolved = await resolveCliTarget(arg, opts);
  const target = await checkOutput(opts.output ?? resolved.dbPath, opts, output);
  if (typeof target === "number") return target;
  const acceptLoss = opts.acceptLoss === true ||
    (opts.ifReplicaExists === true && lossAcceptedByEnv());
  const warn = (line: string) => output.err(line);

  const sources = await openSources(resolved.replicas, parallelism);
  const choice = chooseRestoreSource(sources, req, acceptLoss, warn);
  if (choice.kind === "none") return await noBackup(choice.empty, opts, output);
  const { source, chosen } = choice;
  for (const d of source.listing.damaged) {
    warn(`litewarden: warning: damaged, left out of the restore plan: ${d.message}`);
  }
  if (opts.ifReplicaExists && !requestsPoint(req)) {
    const warning = await judgeRollback(source.storage, chosen.point, acceptLoss);
    if (warning) warn(warning);
  }
  if (opts.dryRun) return printDryRun(target.path, source, chosen, opts, output);

  const result = await restoreAndInstall(target, source, chosen, {
    parallelism,
    acceptLoss,
    gate: opts.ifReplicaExists === true,
    force: opts.force === true,
  }, output);
  if (opts.ifReplicaExists) await recordSeen(source, result, acceptLoss, output);
  printRestored(target.path, source, chosen, result, started, opts, output);
  return ExitCode.ok;
}

/** Where the database goes, and what is there already (checked before any replica access). */
interface OutputTarget {
  path: string;
  /** The output and its -wal/-shm/-journal files that exist now. */
  existing: string[];
}

/**
 * Step 1, as Litestream does before touching the replica: `--if-db-not-exists` ends here (exit
 * 0), an existing output needs `--force`, and a database another process has open is refused.
 */
async function checkOutput(
  outPath: string | undefined,
  opts: RestoreOptions,
  output: Output,
): Promise<OutputTarget | number> {
  if (!outPath) {
    throw new UsageError("an output path is required with a replica URL: pass -o PATH");
  }
  const path = outPath.startsWith("/") ? outPath : `${Deno.cwd()}/${outPath}`;
  const existing = await existingOutputs(path);
  if (opts.ifDbNotExists && existing.includes(path)) {
    output.err(`litewarden: database already exists at ${path}, skipping restore`);
    if (opts.json) output.out(JSON.stringify({ ok: true, skipped: "database exists" }, null, 2));
    return ExitCode.ok;
  }
  if (existing.length > 0 && !opts.force && !opts.dryRun) refuseOverwrite(existing, path);
  if (existing.length > 0 && !opts.dryRun) refuseInUse(existing, path);
  return { path, existing };
}

/** Step 2: one listing of every replica of the database. */
async function openSources(
  targets: Parameters<typeof openStorage>[0][],
  parallelism: number,
): Promise<RestoreSource[]> {
  const sources: RestoreSource[] = [];
  for (const target of targets) {
    const storage = await openStorage(target);
    const listing = await listReplica(storage, { parallelism });
    sources.push({ storage, listing, location: describeTarget(target) });
  }
  return sources;
}

/** No replica holds a backup: the marker decides between a first boot and a lost backup. */
async function noBackup(
  empty: RestoreSource[],
  opts: RestoreOptions,
  output: Output,
): Promise<number> {
  const withMarkers = [];
  for (const e of empty) {
    withMarkers.push({ location: e.location, marker: await readMarker(e.storage) });
  }
  const verdict = judgeMissingBackup(withMarkers, {
    ifReplicaExists: opts.ifReplicaExists === true,
    allowFreshStart: opts.allowFreshStart === true || envFlag(ALLOW_FRESH_START_ENV),
    allowedBy: opts.allowFreshStart ? "--allow-fresh-start" : `${ALLOW_FRESH_START_ENV}=1`,
  });
  output.err(verdict.line);
  if (opts.json) {
    output.out(JSON.stringify(
      {
        ok: true,
        skipped: "no backup",
        searched: verdict.searched,
        ...(verdict.seenBefore.length > 0 ? { seenBefore: verdict.seenBefore } : {}),
      },
      null,
      2,
    ));
  }
  return ExitCode.ok;
}

/** `--dry-run`: the point and the objects it needs; nothing downloaded. */
function printDryRun(
  path: string,
  source: RestoreSource,
  chosen: ChosenPlan,
  opts: RestoreOptions,
  output: Output,
): number {
  const objects = planObjects(chosen);
  const bytes = objects.reduce((n, o) => n + o.size, 0);
  if (opts.json) {
    output.out(JSON.stringify(
      {
        ok: true,
        command: "restore",
        dryRun: true,
        output: path,
        source: source.listing.location,
        format: chosen.format,
        restorePoint: pointJson(chosen.point, new Date()),
        files: objects.length,
        bytesToDownload: bytes,
        objects: objects.map((o) => o.key),
      },
      null,
      2,
    ));
  } else {
    output.out(
      [
        `would restore ${path} from ${source.listing.location}: ${
          describePointAt(chosen.point)
        }; ${objects.length} files, ${formatBytes(bytes)} to download:`,
        ...objects.map((o) => `  ${o.key}  ${formatBytes(o.size)}`),
      ].join("\n"),
    );
  }
  return ExitCode.ok;
}

/**
 * Steps 3 and 4: restore into a temp file beside the output (removed on failure and on signals),
 * going on from the newest intact point when a damaged object turns up and the loss is
 * accepted; then install it without replacing what appeared meanwhile (unless `--force`).
 */
async function restoreAndInstall(
  target: OutputTarget,
  source: RestoreSource,
  chosen: ChosenPlan,
  how: { parallelism: number; acceptLoss: boolean; gate: boolean; force: boolean },
  output: Output,
): Promise<RestoreResult> {
  const dir = parentDir(target.path);
  // 0700: the directories hold a copy of the vault; under umask 000 anything wider is world-open.
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  removeStaleTemps(dir);
  const temp = tempPathFor(target.path);
  const uninstall = cleanupOnSignal(() => [temp]);
  try {
    const result = await restoreAvoidingDamage(source, chosen, temp, {
      ...how,
      progress: (c) => restoreProgress(output.progress, "restoring", c),
      warn: (line) => output.err(line),
    });
    // Looked at again: the app or Litestream may have started while the download ran.
    if (target.existing.length > 0) refuseInUse(target.existing, target.path);
    // Never replaces what appeared at the target meanwhile unless --force (exit 9 otherwise).
    await installFile(temp, target.path, { replace: how.force });
    return result;
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  } finally {
    uninstall();
  }
}

/** The gate remembers that this replica held a backup (best effort: never fails the restore). */
async function recordSeen(
  source: RestoreSource,
  result: RestoreResult,
  acceptLoss: boolean,
  output: Output,
): Promise<void> {
  const warn = (line: string) => output.err(line);
  await refreshMarker(source.storage, result.point.time, warn, acceptLoss).catch((err: unknown) =>
    warn(
      `litewarden: warning: could not record the replica marker at ${source.listing.location}: ${
        err instanceof Error ? err.message : String(err)
      }; a later loss of this backup will look like a first boot until \`litewarden mark\` succeeds`,
    )
  );
}

function printRestored(
  path: string,
  source: RestoreSource,
  chosen: ChosenPlan,
  result: RestoreResult,
  started: number,
  opts: RestoreOptions,
  output: Output,
): void {
  const seconds = (performance.now() - started) / 1000;
  if (opts.json) {
    output.out(JSON.stringify(
      {
        ok: true,
        command: "restore",
        output: path,
        source: source.listing.location,
        format: chosen.format,
        restorePoint: pointJson(result.point, new Date()),
        files: result.objects,
        bytesDownloaded: result.bytesDownloaded,
        bytesWritten: result.bytesWritten,
        pageSize: result.pageSize,
        checksumVerified: result.checksumVerified,
        seconds: Math.round(seconds * 1000) / 1000,
      },
      null,
      2,
    ));
  } else {
    output.err(
      `restored ${path} from ${source.listing.location}: ${
        describePointAt(result.point)
      }; ${result.objects} files, ${formatBytes(result.bytesDownloaded)} downloaded, ${
        formatBytes(result.bytesWritten)
      } written in ${seconds.toFixed(1)}s`,
    );
  }
}
