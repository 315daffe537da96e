import { formatIndex } from "../formats/v03_layout.ts";
import { Option } from "commander";
import { describeTarget } from "../config/target.ts";
import { DamagedError, ExitCode, NoBackupError, UsageError } from "../errors.ts";
import { parentDir, tempPathFor } from "../lib/atomic_write.ts";
import { removeStaleTemps } from "../lib/stale_temps.ts";
import { formatAge, formatBytes, formatTime } from "../lib/format.ts";
import { pointJson } from "../report/list_report.ts";
import { Progress } from "../report/progress.ts";
import { listReplica } from "../replica/listing.ts";
import type { ReplicaListing } from "../replica/listing.ts";
import { readMarker } from "../replica/marker.ts";
import type { ReplicaMarker } from "../replica/marker.ts";
import {
  chooseRestorePlan,
  newestPointAvoiding,
  planObjects,
  restoreToTemp,
} from "../replica/restore.ts";
import type { ChosenPlan, RestoreRequest } from "../replica/restore.ts";
import { restoreFlags, summarize } from "../replica/summary.ts";
import type { RestorePoint } from "../replica/summary.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import type { Output } from "./context.ts";
import {
  ALLOW_FRESH_START_ENV,
  describeMarker,
  envFlag,
  lossAcceptedByEnv,
  ON_DAMAGE_ENV,
  ON_DAMAGE_RESTORE_NEWEST_INTACT,
  refreshMarker,
  rolledBackFrom,
} from "./mark.ts";
import {
  cleanupOnSignal,
  existingOutputs,
  installFile,
  refuseInUse,
  refuseOverwrite,
} from "./safe_output.ts";
import { parseParallelism, replicaCommand } from "./options.ts";
import { ageIdentityOption, resolveCliTarget } from "./target.ts";

export interface RestoreOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  output?: string;
  timestamp?: string;
  index?: string;
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
  return replicaCommand(
    "restore",
    "Rebuild the database from a replica (latest or point in time), without Litestream; byte-identical to `litestream restore`.",
    {
      target: "database path from the config, or a replica URL (then -o is required)",
      replica: "restore from this replica of the database",
      json: "print a JSON summary",
    },
  )
    .addOption(ageIdentityOption())
    .option("-o, --output <path>", "where to write the database (default: the database path)")
    .option("--timestamp <time>", "restore the state at this RFC 3339 time")
    .option("--index <hex>", "v0.3: restore through the end of this WAL index (hex)")
    .option("--txid <hex>", "v0.5: restore up to this TXID (16 hex digits)")
    .option("--generation <id>", "v0.3: restore from this generation")
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

export function parseRestoreRequest(opts: RestoreOptions): RestoreRequest {
  const given = [opts.timestamp, opts.index, opts.txid].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError("use only one of --timestamp, --index and --txid");
  const req: RestoreRequest = { generation: opts.generation };
  if (opts.generation !== undefined && !/^[0-9a-f]{16}$/.test(opts.generation)) {
    throw new UsageError(
      `invalid --generation ${opts.generation}: expected 16 lowercase hex digits`,
    );
  }
  if (opts.timestamp !== undefined) {
    const t = new Date(opts.timestamp);
    if (
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(opts.timestamp) ||
      Number.isNaN(t.getTime())
    ) {
      throw new UsageError(
        `invalid --timestamp ${opts.timestamp}: use RFC 3339, e.g. 2026-11-20T09:00:00Z`,
      );
    }
    req.timestamp = t;
  }
  if (opts.index !== undefined) {
    if (!/^[0-9a-fA-F]{1,8}$/.test(opts.index) || Number.parseInt(opts.index, 16) > 0x7fffffff) {
      throw new UsageError(
        `invalid --index ${opts.index}: expected a hexadecimal WAL index, e.g. 1f`,
      );
    }
    req.index = Number.parseInt(opts.index, 16);
  }
  if (opts.txid !== undefined) {
    if (!/^[0-9a-fA-F]{16}$/.test(opts.txid)) {
      throw new UsageError(`invalid --txid ${opts.txid}: expected exactly 16 hex digits`);
    }
    req.txid = BigInt(`0x${opts.txid}`);
  }
  return req;
}

export async function runRestore(
  arg: string | undefined,
  opts: RestoreOptions,
  output: Output,
): Promise<number> {
  const started = performance.now();
  const req = parseRestoreRequest(opts);
  const parallelism = parseParallelism(opts.parallelism);
  const resolved = await resolveCliTarget(arg, opts);
  const outPath = opts.output ?? resolved.dbPath;
  if (!outPath) {
    throw new UsageError("an output path is required with a replica URL: pass -o PATH");
  }
  const absOut = outPath.startsWith("/") ? outPath : `${Deno.cwd()}/${outPath}`;

  // Checked before any replica access, as Litestream does.
  const existing = await existingOutputs(absOut);
  if (opts.ifDbNotExists && existing.includes(absOut)) {
    output.err(`litewarden: database already exists at ${absOut}, skipping restore`);
    if (opts.json) output.out(JSON.stringify({ ok: true, skipped: "database exists" }, null, 2));
    return ExitCode.ok;
  }
  if (existing.length > 0 && !opts.force && !opts.dryRun) refuseOverwrite(existing, absOut);
  if (existing.length > 0 && !opts.dryRun) refuseInUse(existing, absOut);

  const acceptLoss = opts.acceptLoss === true ||
    (opts.ifReplicaExists === true && lossAcceptedByEnv());
  // Pick the replica whose newest point is newest (Litestream compares replicas the same way).
  let best: { storage: Storage; listing: ReplicaListing; chosen: ChosenPlan } | undefined;
  const empty: { location: string; storage: Storage }[] = [];
  let firstError: unknown;
  for (const target of resolved.replicas) {
    const storage = await openStorage(target);
    const listing = await listReplica(storage, { parallelism });
    if (!listing.v03 && !listing.v05 && listing.damaged.length === 0) {
      empty.push({ location: describeTarget(target), storage });
      continue;
    }
    try {
      const chosen = chooseRestorePlan(listing, req);
      if (!best || chosen.point.time > best.chosen.point.time) best = { storage, listing, chosen };
    } catch (err) {
      const intact = acceptLoss && err instanceof DamagedError
        ? newestIntactPlan(listing, err, output)
        : undefined;
      if (intact && (!best || intact.point.time > best.chosen.point.time)) {
        best = { storage, listing, chosen: intact };
      } else firstError ??= err;
    }
  }
  if (!best) {
    if (firstError) throw firstError;
    const searched = empty.map((e) => e.location);
    const where = searched.join(", ");
    // A marker turns "nothing here" from a first boot into a lost backup (or a wrong prefix).
    const seen: { location: string; marker: ReplicaMarker }[] = [];
    for (const e of empty) {
      const marker = await readMarker(e.storage);
      if (marker) seen.push({ location: e.location, marker });
    }
    const seenText = empty.length === 1
      ? seen.map((s) => describeMarker(s.marker)).join("")
      : seen.map((s) => `${s.location}: ${describeMarker(s.marker)}`).join("; ");
    const allowFresh = opts.allowFreshStart === true || envFlag(ALLOW_FRESH_START_ENV);
    if (seen.length > 0 && !(opts.ifReplicaExists && allowFresh)) {
      throw new NoBackupError(
        `no backup found at ${where}, but one was seen there before (${seenText}): the backup is lost or the bucket or prefix is wrong; ${
          opts.ifReplicaExists
            ? `refusing to start on an empty database (to start empty anyway pass --allow-fresh-start or set ${ALLOW_FRESH_START_ENV}=1)`
            : "check the bucket and path"
        }`,
      );
    }
    if (opts.ifReplicaExists) {
      output.err(
        seen.length > 0
          ? `litewarden: warning: no backup found at ${where}, although one was seen there before (${seenText}); nothing restored, starting fresh (${
            opts.allowFreshStart ? "--allow-fresh-start" : `${ALLOW_FRESH_START_ENV}=1`
          })`
          : `litewarden: no backup found at ${where}; nothing restored (--if-replica-exists)`,
      );
      if (opts.json) {
        output.out(JSON.stringify(
          {
            ok: true,
            skipped: "no backup",
            searched,
            ...(seen.length > 0
              ? { seenBefore: seen.map((s) => ({ location: s.location, ...s.marker })) }
              : {}),
          },
          null,
          2,
        ));
      }
      return ExitCode.ok;
    }
    throw new NoBackupError(
      `no backup found at ${where}: nothing stored there is a Litestream replica; check the bucket and path`,
      where,
    );
  }

  for (const d of best.listing.damaged) {
    output.err(`litewarden: warning: damaged, left out of the restore plan: ${d.message}`);
  }
  if (opts.ifReplicaExists) {
    await refuseRollback(best.storage, best.chosen.point, req, acceptLoss, output);
  }
  if (opts.dryRun) {
    const objects = planObjects(best.chosen);
    const bytes = objects.reduce((n, o) => n + o.size, 0);
    if (opts.json) {
      output.out(JSON.stringify(
        {
          ok: true,
          command: "restore",
          dryRun: true,
          output: absOut,
          source: best.listing.location,
          format: best.chosen.format,
          restorePoint: pointJson(best.chosen.point, new Date()),
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
          `would restore ${absOut} from ${best.listing.location}: ${
            describeRestorePoint(best.chosen.point)
          }; ${objects.length} files, ${formatBytes(bytes)} to download:`,
          ...objects.map((o) => `  ${o.key}  ${formatBytes(o.size)}`),
        ].join("\n"),
      );
    }
    return ExitCode.ok;
  }

  const dir = parentDir(absOut);
  // 0700: the directories hold a copy of the vault; under umask 000 anything wider is world-open.
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  removeStaleTemps(dir);
  const temp = tempPathFor(absOut);
  const uninstall = cleanupOnSignal(() => [temp]);
  try {
    const result = await restoreNewestIntact(best, temp, parallelism, {
      acceptLoss,
      gate: opts.ifReplicaExists === true,
    }, output);
    // Looked at again: the app or Litestream may have started while the download ran.
    if (existing.length > 0) refuseInUse(existing, absOut);
    // Never replaces what appeared at the target meanwhile unless --force (exit 9 otherwise).
    await installFile(temp, absOut, { replace: !!opts.force });
    // The gate remembers that this replica held a backup (best effort: never fails the restore).
    if (opts.ifReplicaExists) {
      const location = best.listing.location;
      await refreshMarker(best.storage, result.point.time, output, acceptLoss).catch((
        err: unknown,
      ) =>
        output.err(
          `litewarden: warning: could not record the replica marker at ${location}: ${
            err instanceof Error ? err.message : String(err)
          }; a later loss of this backup will look like a first boot until \`litewarden mark\` succeeds`,
        )
      );
    }
    const seconds = (performance.now() - started) / 1000;
    if (opts.json) {
      output.out(JSON.stringify(
        {
          ok: true,
          command: "restore",
          output: absOut,
          source: best.listing.location,
          format: best.chosen.format,
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
        `restored ${absOut} from ${best.listing.location}: ${
          describeRestorePoint(result.point)
        }; ${result.objects} files, ${formatBytes(result.bytesDownloaded)} downloaded, ${
          formatBytes(result.bytesWritten)
        } written in ${seconds.toFixed(1)}s`,
      );
    }
    return ExitCode.ok;
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  } finally {
    uninstall();
  }
}

/**
 * With the loss accepted, a chain the plan found broken (a missing WAL segment or index, a TXID
 * gap) is restored up to its newest intact point (the one the error names), after a loud line.
 */
function newestIntactPlan(
  listing: ReplicaListing,
  err: DamagedError,
  output: Output,
): ChosenPlan | undefined {
  const newest = summarize(listing).newest;
  if (!newest) return undefined;
  let chosen: ChosenPlan;
  try {
    chosen = chooseRestorePlan(
      listing,
      newest.format === "v0.3"
        ? { generation: newest.generation, index: newest.index }
        : { txid: BigInt(`0x${newest.txid}`) },
    );
  } catch {
    return undefined; // not restorable either: the original error stands
  }
  output.err(
    `litewarden: WARNING: ${err.message}; restoring the newest intact point instead, ${
      describeRestorePoint(chosen.point)
    }, giving up every change after ${formatTime(chosen.point.time)}, loss accepted`,
  );
  return chosen;
}

/** How often a restore goes on to an older point when the one before turned out damaged too. */
const MAX_FALLBACKS = 8;

/**
 * Restores the chosen point into `temp`. When an object of its chain turns out damaged (a missing
 * or corrupt WAL segment, snapshot or LTX file), the error names the newest point whose plan
 * avoids it, with the flags that restore it; with `acceptLoss` that point is restored instead,
 * after one loud line saying what is given up.
 */
async function restoreNewestIntact(
  source: { storage: Storage; listing: ReplicaListing; chosen: ChosenPlan },
  temp: string,
  parallelism: number,
  how: { acceptLoss: boolean; gate: boolean },
  output: Output,
) {
  const damaged = new Set<string>();
  let chosen = source.chosen;
  for (let attempt = 0;; attempt++) {
    const objects = planObjects(chosen);
    const totalBytes = objects.reduce((n, o) => n + o.size, 0);
    const progress = new Progress(output.progress, "restoring", objects.length, totalBytes);
    try {
      return await restoreToTemp(source.storage, chosen, temp, {
        parallelism,
        onDownload: (n) => progress.addBytes(n),
        onObject: () => progress.addObject(),
      });
    } catch (err) {
      if (!(err instanceof DamagedError) || err.key === undefined || attempt >= MAX_FALLBACKS) {
        throw err;
      }
      await Deno.remove(temp).catch(() => {});
      damaged.add(err.key);
      const fallback = newestPointAvoiding(source.listing, damaged, chosen.point.time);
      if (!fallback) {
        throw new DamagedError(
          `${err.message}; no point of this replica can be restored without it: check the bucket, or restore from another replica`,
          err.key,
        );
      }
      const intact = `${describeRestorePoint(fallback.point)}, ${restoreFlags(fallback.point)}`;
      const lost = `${
        formatAge(source.chosen.point.time.getTime() - fallback.point.time.getTime())
      } of changes (${formatTime(fallback.point.time)} to ${formatTime(source.chosen.point.time)})`;
      if (!how.acceptLoss) {
        throw new DamagedError(
          `${err.message}; the newest point that does not need it is ${intact}: restore it with those flags, losing ${lost}, or pass --accept-loss${
            how.gate
              ? ` (the container gate: ${ON_DAMAGE_ENV}=${ON_DAMAGE_RESTORE_NEWEST_INTACT})`
              : ""
          }`,
          err.key,
        );
      }
      output.err(
        `litewarden: WARNING: ${err.message}; restoring the newest point that does not need it instead, ${intact}, giving up ${lost}, loss accepted`,
      );
      chosen = fallback;
    } finally {
      progress.done();
    }
  }
}

/**
 * The gate's rollback check: the newest point is older than the one the marker recorded, so part
 * of the backup vanished (deleted objects, a lifecycle rule, a restored bucket). Starting on it
 * silently would serve older data and hide the loss from every later start: refuse (exit 5)
 * unless the operator accepted the loss. An explicitly requested point is not a rollback.
 */
async function refuseRollback(
  storage: Storage,
  point: RestorePoint,
  req: RestoreRequest,
  acceptLoss: boolean,
  output: Output,
): Promise<void> {
  if (req.timestamp !== undefined || req.index !== undefined || req.txid !== undefined) return;
  const marker = await readMarker(storage);
  const seen = rolledBackFrom(marker, point.time);
  if (!marker || !seen) return;
  const span = formatAge(seen.getTime() - point.time.getTime());
  const what = `the newest restorable point at ${storage.location} (${
    describeRestorePoint(point)
  }) is older than the one seen there before (${describeMarker(marker)})`;
  if (acceptLoss) {
    output.err(
      `litewarden: WARNING: ${what}: part of the backup is gone; restoring it anyway and giving up ${span} of changes (${
        formatTime(point.time)
      } to ${formatTime(seen)}), loss accepted`,
    );
    return;
  }
  throw new DamagedError(
    `${what}: part of the backup is gone (deleted objects, a lifecycle rule, a restored bucket), ${span} of changes would be lost; refusing to start on older data (check the bucket; to accept the loss pass --accept-loss or set ${ON_DAMAGE_ENV}=${ON_DAMAGE_RESTORE_NEWEST_INTACT})`,
  );
}

function describeRestorePoint(p: RestorePoint): string {
  return `${
    p.format === "v0.3"
      ? `generation ${p.generation}, WAL index ${formatIndex(p.index!)}`
      : `TXID ${p.txid}`
  } (${formatTime(p.time)})`;
}
