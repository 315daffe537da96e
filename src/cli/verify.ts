import { Option } from "commander";
import { checkApplication, judgeAsGate } from "../apps/check_application.ts";
import { dataFolderPaths } from "../apps/vaultwarden/data_folder.ts";
import {
  checkLocalVault,
  checkStoredVault,
  DEFAULT_FILES_GRACE_MS,
} from "../apps/vaultwarden/files_check.ts";
import type { AppMode } from "../apps/check_application.ts";
import { exitCodeFor, fail, pass, skip, warn, worstExitCode } from "../checks/check.ts";
import type { Check } from "../checks/check.ts";
import { chainChecks, listingChecks } from "../checks/chain.ts";
import { checkDatabaseFile } from "../checks/database.ts";
import { encryptionChecks } from "../checks/encryption.ts";
import { freshnessCheck, heartbeatCheck, lagCheck, parseDuration } from "../checks/freshness.ts";
import { loadLitestreamConfig } from "../config/litestream_yml.ts";
import { DEFAULT_CONFIG_PATH } from "../config/resolve.ts";
import { describeTarget } from "../config/target.ts";
import type { ReplicaTarget } from "../config/target.ts";
import { DamagedError, LitewardenError, UsageError } from "../errors.ts";
import { formatBytes } from "../lib/format.ts";
import { checkPingUrl, sendPing, writeMetrics } from "../report/notify.ts";
import { restoreProgress } from "../report/progress.ts";
import type { ProgressSink } from "../report/progress.ts";
import { replicaVerdict, verifyJson, verifyText } from "../report/verify_report.ts";
import type { VerifyResult } from "../report/verify_report.ts";
import { readHeartbeat, replicationLag } from "../replica/heartbeat.ts";
import type { Heartbeat, Lag } from "../replica/heartbeat.ts";
import { listReplica } from "../replica/listing.ts";
import { FILES_BASE } from "../replica/vault_files.ts";
import type { ReplicaListing } from "../replica/listing.ts";
import { chooseRestorePlan, newestPointAvoiding, restoreToTemp } from "../replica/restore.ts";
import type { ChosenPlan } from "../replica/restore.ts";
import {
  describePointWithFlags,
  parsePointFlags,
  requestsPoint,
} from "../replica/restore_point.ts";
import type { RestorePoint, RestoreRequest } from "../replica/restore_point.ts";
import { summarize } from "../replica/summary.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import type { Output } from "./context.ts";
import { withTempDir } from "./safe_output.ts";
import { addPointOptions, parseParallelism, replicaCommand } from "./options.ts";
import { ageIdentityOption, resolveCliTarget } from "./target.ts";

export interface VerifyOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  file?: string;
  all?: boolean;
  quick?: boolean;
  app: string;
  maxAge?: string;
  maxHeartbeatAge?: string;
  maxLag?: string;
  pingUrl?: string;
  metricsFile?: string;
  parallelism: string;
  json?: boolean;
  timestamp?: string;
  index?: string;
  offset?: string;
  txid?: string;
  generation?: string;
  gate?: boolean;
  strict?: boolean;
  dataDir?: string;
  filesGrace?: string;
}

export function verifyCommand(output: Output, done: (code: number) => void) {
  const command = replicaCommand(
    "verify",
    "Prove a replica is complete, uncorrupted, restorable and fresh, and restores to a healthy database (Vaultwarden-aware).",
    { json: "print the report as JSON" },
  );
  return addPointOptions(command, "verify")
    .addOption(ageIdentityOption())
    .option("--file <path>", "check a local SQLite file in place, strictly read-only (no replica)")
    .option(
      "--data-dir <dir>",
      "with --file: also check the data folder's attachments, sends, rsa_key.pem and config.json (read-only)",
    )
    .option(
      "--files-grace <duration>",
      "attachment and send rows younger than this may still be uploading: warn, not fail (default 1h)",
    )
    .option("--all", "verify every database in the config, concurrently")
    .option("--quick", "PRAGMA quick_check instead of the full integrity_check")
    .addOption(
      new Option("--app <app>", "application checks").choices(["auto", "vaultwarden", "none"])
        .default("auto"),
    )
    .option(
      "--max-age <duration>",
      "fail (exit 8) when the newest restorable point is older, e.g. 1h",
    )
    .option(
      "--max-heartbeat-age <duration>",
      "fail (exit 8) when the companion's heartbeat is older (default: 3 intervals + 1m)",
    )
    .option(
      "--max-lag <duration>",
      "fail (exit 8) when the replica has lacked the live position longer (default 5m)",
    )
    .option("--ping-url <url>", "send the verdict to a healthchecks-style URL (/fail on failure)")
    .option("--metrics-file <path>", "write Prometheus text-format gauges (atomically)")
    .addOption(new Option("--parallelism <n>", "parallel downloads").default("8"))
    .option(
      "--gate",
      "judge as the container gate: findings Vaultwarden starts and serves with (an orphan row) warn instead of failing",
    )
    .option("--strict", "with --gate: fail on those findings too (as a plain verify does)")
    .addHelpText(
      "after",
      `
Layers, in order: listing, chain, restore (into a temp directory), database (header,
integrity_check, foreign_key_check), application (Vaultwarden migrations, schema, content),
files (every attachment and send body the point's rows reference, the rsa_key.pem and
config.json versions for it), freshness. The exit code is the most severe finding (see README:
3, 4, 5, 6, 7, 8).

Examples:
  litewarden verify /data/db.sqlite3 --config /etc/litestream.yml --max-age 1h
  litewarden verify --file /data/db.sqlite3 --app vaultwarden
  litewarden verify --file /data/db.sqlite3 --data-dir /data
  litewarden verify --all --json --metrics-file /var/lib/node_exporter/litewarden.prom`,
    )
    .action(async (target, opts) => done(await runVerify(target, opts, output)));
}

export async function runVerify(
  arg: string | undefined,
  opts: VerifyOptions,
  output: Output,
): Promise<number> {
  const maxAgeMs = opts.maxAge !== undefined ? parseDuration(opts.maxAge, "--max-age") : undefined;
  const maxHeartbeatAgeMs = opts.maxHeartbeatAge !== undefined
    ? parseDuration(opts.maxHeartbeatAge, "--max-heartbeat-age")
    : undefined;
  const maxLagMs = opts.maxLag !== undefined ? parseDuration(opts.maxLag, "--max-lag") : undefined;
  const parallelism = parseParallelism(opts.parallelism);
  const filesGraceMs = opts.filesGrace !== undefined
    ? parseDuration(opts.filesGrace, "--files-grace")
    : DEFAULT_FILES_GRACE_MS;
  if (opts.dataDir !== undefined && opts.file === undefined) {
    throw new UsageError(
      "--data-dir checks a local data folder against a local database: give --file DB too (a replica's files are checked without it)",
    );
  }
  if (opts.pingUrl !== undefined) checkPingUrl(opts.pingUrl);
  const app = opts.app as AppMode;
  // Same point syntax and checks as restore: verify can prove an older point restores too.
  const point = parsePointFlags(opts);
  const settings: VerifySettings = {
    maxAgeMs,
    maxHeartbeatAgeMs,
    maxLagMs,
    parallelism,
    app,
    point,
    filesGraceMs,
  };
  let results: VerifyResult[];
  if (opts.file !== undefined) {
    if (arg !== undefined || opts.all) {
      throw new UsageError("--file checks one local file: give no TARGET and no --all");
    }
    if (requestsPoint(point)) {
      throw new UsageError(
        "--timestamp, --index and --txid choose a replica point; --file has none",
      );
    }
    results = [
      await verifyFile(opts.file, {
        quick: !!opts.quick,
        app,
        dataDir: opts.dataDir,
        filesGraceMs,
      }),
    ];
  } else if (opts.all) {
    if (arg !== undefined) {
      throw new UsageError("--all verifies every database in the config: give no TARGET");
    }
    const env = Deno.env.toObject();
    const configPath = opts.config ?? env.LITESTREAM_CONFIG ?? DEFAULT_CONFIG_PATH;
    const config = await loadLitestreamConfig(configPath, env, { cwd: Deno.cwd() });
    const dbs = config.dbs.map((d) => d.path);
    if (dbs.length === 0) throw new UsageError(`${configPath} lists no databases`);
    results = await Promise.all(
      dbs.map((db) =>
        verifyTarget(db, { ...opts, config: configPath }, settings)
          .catch((
            err,
          ) => failedResult(db, err))
      ),
    );
  } else {
    const progress = output.progress;
    results = [await verifyTarget(arg, opts, { ...settings, progress })];
  }

  if (opts.gate && !opts.strict) {
    for (const r of results) {
      const judged = judgeAsGate(r.checks, r.app);
      if (judged.some((c, i) => c !== r.checks[i])) {
        r.checks = judged;
        r.exitCode = exitCodeFor(judged);
      }
    }
  }

  const now = new Date();
  // One document shape for stdout and the ping: a single report, or `{ ok, exitCode, results }`.
  const report = () => {
    const docs = results.map((r) => verifyJson(r, now));
    return opts.all ? { ok: code === 0, exitCode: code, results: docs } : docs[0];
  };
  const code = worstExitCode(results.map((r) => r.exitCode));
  if (opts.json) {
    output.out(JSON.stringify(report(), null, 2));
  } else {
    output.out(results.map((r) => verifyText(r, now)).join("\n\n"));
  }
  if (opts.metricsFile) {
    // Like a failed ping, a metrics file that cannot be written is a warning: the exit code stays
    // the verdict (and the ping below still goes out).
    await writeMetrics(opts.metricsFile, results, now).catch((err: unknown) =>
      output.err(
        `litewarden: warning: could not write the metrics file ${opts.metricsFile}: ${
          err instanceof Error ? err.message : String(err)
        }`,
      )
    );
  }
  if (opts.pingUrl) {
    const err = await sendPing(opts.pingUrl, code === 0, report());
    if (err) output.err(`litewarden: warning: ${err}`);
  }
  return code;
}

interface VerifySettings {
  maxAgeMs?: number;
  maxHeartbeatAgeMs?: number;
  maxLagMs?: number;
  parallelism: number;
  app: AppMode;
  /** Attachment and send rows younger than this may still be uploading (`--files-grace`). */
  filesGraceMs: number;
  /** The restore point to verify; empty = latest. */
  point: RestoreRequest;
  /** Where the restore's progress bar goes (none for `--all`: concurrent bars would mix). */
  progress?: ProgressSink;
}

/** Layers 1–7 for one database (all its replicas; the newest one is restored and checked). */
async function verifyTarget(
  arg: string | undefined,
  opts: VerifyOptions,
  settings: VerifySettings,
): Promise<VerifyResult> {
  const started = performance.now();
  const resolved = await resolveCliTarget(arg, opts);
  const results: VerifyResult[] = [];
  for (const target of resolved.replicas) {
    results.push(await verifyReplica(target, opts, settings));
  }
  // One replica is the common case; with several, report the one with the most severe exit code
  // (which is the run's exit code) and name every replica's verdict.
  const code = worstExitCode(results.map((r) => r.exitCode));
  const worst = results.find((r) => r.exitCode === code) ?? results[0];
  if (results.length > 1) {
    const verdicts = results.map((r) =>
      `${r.location} ${r.exitCode === 0 ? "ok" : `exit ${r.exitCode}`}`
    );
    const text = `${results.length} replicas verified (${
      verdicts.join(", ")
    }); this report shows ${worst.location}`;
    const othersFailed = results.some((r) => r !== worst && r.exitCode !== 0);
    worst.replicas = results.map(replicaVerdict);
    worst.checks.push(othersFailed ? warn("replicas", text) : pass("replicas", text));
  }
  worst.subject = resolved.dbPath ?? worst.subject;
  worst.seconds = (performance.now() - started) / 1000;
  return worst;
}

async function verifyReplica(
  target: ReplicaTarget,
  opts: VerifyOptions,
  settings: VerifySettings,
): Promise<VerifyResult> {
  const started = performance.now();
  const location = describeTarget(target);
  const result: VerifyResult = {
    subject: target.dbPath ?? location,
    location,
    format: null,
    restorePoint: null,
    checks: [],
    app: null,
    exitCode: 0,
    seconds: 0,
  };
  const finish = () => {
    result.exitCode = exitCodeFor(result.checks);
    result.seconds = (performance.now() - started) / 1000;
    return result;
  };
  const checks = result.checks;
  let storage;
  let listing;
  try {
    storage = await openStorage(target);
    listing = await listReplica(storage, { parallelism: settings.parallelism });
  } catch (err) {
    checks.push(errorCheck("listing.found", err));
    return finish();
  }
  const summary = summarize(listing);
  checks.push(...listingChecks(listing, summary));
  // Without a backup nothing else can be judged; damaged LTX headers alone still let it go on.
  if (checks.some((c) => c.status === "fail" && c.id === "listing.found")) return finish();
  try {
    checks.push(...await encryptionChecks(storage, listing, target.age, settings.parallelism));
  } catch (err) {
    checks.push(errorCheck("replica.encryption", err));
  }

  // Layer 2: plan the latest restore; name-level and header-level chain checks.
  let chosen;
  try {
    chosen = chooseRestorePlan(listing, settings.point);
  } catch (err) {
    checks.push(errorCheck("chain.plan", err));
    return finish();
  }
  result.format = chosen.format;
  result.restorePoint = chosen.point;
  checks.push(...chainChecks(listing, summary, chosen));

  // Layer 3: restore into a temp directory that is removed on every exit path, signals included.
  await withTempDir("litewarden-verify-", async (tempDir) => {
    const dbPath = `${tempDir}/restored.sqlite3`;
    const t0 = performance.now();
    let restored;
    try {
      const progress = restoreProgress(settings.progress, "verifying", chosen);
      restored = await restoreToTemp(storage, chosen, dbPath, {
        parallelism: settings.parallelism,
        onDownload: progress.addBytes,
        onObject: progress.addObject,
      }).finally(() => progress.done());
    } catch (err) {
      checks.push(errorCheck("restore.apply", withNewestIntact(err, listing, chosen)));
      return;
    }
    checks.push(pass(
      "restore.apply",
      `restored ${restored.pages} pages (${
        formatBytes(restored.bytesWritten)
      }) from ${restored.objects} objects in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      }s; every ${
        chosen.format === "v0.3" ? "LZ4 stream, WAL salt and frame checksum" : "LTX file CRC-64"
      } checked`,
    ));
    checks.push(
      chosen.format === "v0.5" && restored.checksumVerified
        ? pass(
          "restore.checksum",
          "rolling database checksum equals the last file's post-apply checksum",
        )
        : skip(
          "restore.checksum",
          chosen.format === "v0.5"
            ? "no database checksums in these LTX files (Litestream v0.5 writes none)"
            : "v0.3 replicas carry no database checksum",
        ),
    );
    // Layers 4 and 5 on the restored copy.
    const dbChecks = await checkDatabaseFile(dbPath, { quick: !!opts.quick, restored: true });
    checks.push(...dbChecks);
    if (!dbChecks.some((c) => c.status === "fail" && c.id === "db.header")) {
      const appResult = await checkApplication(dbPath, settings.app);
      checks.push(...appResult.checks);
      result.app = appResult.app;
      // The whole vault: the restored database is the manifest of the files stored beside it.
      if (appResult.app?.name === "vaultwarden") {
        await storedFilesLayer(storage, dbPath, chosen.point.time, settings, result);
      }
    }
  });
  // Freshness is judged from the listing either way: a damaged replica can be stale too.
  checks.push(...await freshnessChecks(storage, listing, summary.newest, settings, result));
  return finish();
}

/**
 * Layer 7: the companion's heartbeat (alive?), the replication lag it lets us judge (does the
 * replica hold the live position?), and the newest point's age, which a live heartbeat with the
 * live position replicated excuses (nothing was written: a quiet database).
 */
async function freshnessChecks(
  storage: Storage,
  listing: ReplicaListing,
  newest: RestorePoint | undefined,
  settings: VerifySettings,
  result: VerifyResult,
): Promise<Check[]> {
  const now = new Date();
  let hb: Heartbeat | undefined;
  let lag: Lag | undefined;
  try {
    hb = await readHeartbeat(storage);
    if (hb) lag = await replicationLag(storage, listing, hb, now);
  } catch (err) {
    return [
      errorCheck("freshness.heartbeat", err),
      freshnessCheck(newest, settings.maxAgeMs, now),
    ];
  }
  const beat = heartbeatCheck(hb, settings.maxHeartbeatAgeMs, now);
  const lagged = lagCheck(hb, lag, settings.maxLagMs);
  if (hb) {
    result.heartbeat = {
      time: new Date(hb.time),
      final: hb.final,
      position: hb.position,
      lagSeconds: lag?.position ? lag.lagMs / 1000 : null,
    };
  }
  const current = beat.status === "pass" && lagged.status === "pass" && lag?.position
    ? `the companion's heartbeat is live and the replica ${
      lag.holds ? "holds the live position" : "is within --max-lag of it"
    }`
    : undefined;
  return [beat, lagged, freshnessCheck(newest, settings.maxAgeMs, now, current)];
}

/** `verify --file`: layers 4 and 5 on a local file, strictly read-only. */
async function verifyFile(
  path: string,
  settings: { quick: boolean; app: AppMode; dataDir?: string; filesGraceMs: number },
): Promise<VerifyResult> {
  const started = performance.now();
  const checks: Check[] = await checkDatabaseFile(path, { quick: settings.quick, restored: false });
  let app = null;
  if (!checks.some((c) => c.status === "fail" && c.id.startsWith("file."))) {
    const appResult = await checkApplication(path, settings.app);
    checks.push(...appResult.checks);
    app = appResult.app;
  }
  let files;
  if (
    settings.dataDir !== undefined &&
    !checks.some((c) => c.status === "fail" && c.id.startsWith("file."))
  ) {
    const local = await checkLocalVault(path, dataFolderPaths(settings.dataDir), {
      graceMs: settings.filesGraceMs,
      now: new Date(),
    });
    checks.push(...local.checks);
    files = local.files;
  }
  return {
    ...(files && { files }),
    subject: path,
    location: null,
    format: "file",
    restorePoint: null,
    checks,
    app,
    exitCode: exitCodeFor(checks),
    seconds: (performance.now() - started) / 1000,
  };
}

/** The files layer of a replica's point: the vault's files stored beside the replica. */
async function storedFilesLayer(
  storage: Storage,
  dbPath: string,
  pointTime: Date,
  settings: VerifySettings,
  result: VerifyResult,
): Promise<void> {
  try {
    const stored = await checkStoredVault({ storage, base: FILES_BASE }, dbPath, pointTime, {
      graceMs: settings.filesGraceMs,
      now: new Date(),
    });
    result.checks.push(...stored.checks);
    result.files = stored.files;
  } catch (err) {
    result.checks.push(errorCheck("files.attachments", err));
  }
}

/** A damaged object found while restoring: the error names where a restore can go on from. */
function withNewestIntact(err: unknown, listing: ReplicaListing, chosen: ChosenPlan): unknown {
  if (!(err instanceof DamagedError) || err.key === undefined) return err;
  const intact = newestPointAvoiding(listing, new Set([err.key]), chosen.point.time);
  return new DamagedError(
    `${err.message}; ${
      intact
        ? `the newest point that does not need it is ${
          describePointWithFlags(intact.point)
        }: restore it with those flags, or with --accept-loss`
        : "no point of this replica can be restored without it"
    }`,
    err.key,
  );
}

function errorCheck(id: string, err: unknown): Check {
  if (err instanceof LitewardenError) return fail(id, err.message, err.kind);
  throw err;
}

function failedResult(subject: string, err: unknown): VerifyResult {
  const check = err instanceof LitewardenError ? fail("target", err.message, err.kind) : fail(
    "target",
    `unexpected error: ${err instanceof Error ? err.message : String(err)}`,
    "unexpected",
  );
  return {
    subject,
    location: null,
    format: null,
    restorePoint: null,
    checks: [check],
    app: null,
    exitCode: exitCodeFor([check]),
    seconds: 0,
  };
}
