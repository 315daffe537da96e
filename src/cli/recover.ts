import { DatabaseSync } from "node:sqlite";
import { applyRecovery, planRecovery, POINT_SCHEMA } from "../apps/vaultwarden/recover.ts";
import { isVaultwardenFile } from "../apps/vaultwarden/check.ts";
import type { RecoveryItem, RecoveryPlan } from "../apps/vaultwarden/recover.ts";
import { checkApplication } from "../apps/check_application.ts";
import { checkDatabaseFile } from "../checks/database.ts";
import type { Check } from "../checks/check.ts";
import {
  ExitCode,
  LitewardenError,
  localFsError,
  RefusedError,
  UsageError,
  worstExitCode,
} from "../errors.ts";
import { installIfAbsent, parentDir, syncDir, tempPathFor } from "../lib/atomic_write.ts";
import { formatBytes, formatTime } from "../lib/format.ts";
import { listForMessage } from "../lib/message_list.ts";
import { readOnlyUri } from "../lib/sqlite.ts";
import { removeStaleTemps } from "../lib/stale_temps.ts";
import { chooseRestorePlan, restoreToTemp } from "../replica/restore.ts";
import { describePoint, pointJson } from "../replica/restore_point.ts";
import type { RestorePoint } from "../replica/restore_point.ts";
import type { Output } from "./context.ts";
import { parseParallelism, parsePointArg, replicaCommand } from "./options.ts";
import { cleanupOnSignal, refuseInUse, SIDECARS, withTempDir } from "./safe_output.ts";
import { ageIdentityOption, openFirstReplica, resolveCliTarget } from "./target.ts";

export interface RecoverOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  at: string;
  item: string;
  into?: string;
  backup?: string;
  generation?: string;
  parallelism: string;
  dryRun?: boolean;
  json?: boolean;
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const IN_USE =
  "refusing to recover into a database that is open: stop Vaultwarden and Litestream first";

export function recoverCommand(output: Output, done: (code: number) => void) {
  return replicaCommand(
    "recover",
    "Bring deleted Vaultwarden items back from a restore point into the current database, without rolling anyone else back (Vaultwarden stopped).",
    {
      target: "database path from the config (also the default --into), or a replica URL",
      json: "print JSON",
    },
  )
    .addOption(ageIdentityOption())
    .requiredOption(
      "--at <point>",
      "where the items still exist: an RFC 3339 time, index:HEX (v0.3), txid:HEX (v0.5), latest, or file:PATH (a local database)",
    )
    .requiredOption("--item <uuids>", "the items (cipher uuids), comma-separated")
    .option("--into <path>", "the database to bring them into (default: the TARGET database path)")
    .option(
      "--backup <path>",
      "where the copy of the database taken first goes (default: beside it, DB.before-recover-TIME); never overwritten",
    )
    .option("--generation <id>", "v0.3: --at points of this generation")
    .option("--parallelism <n>", "parallel downloads", "8")
    .option("--dry-run", "print what would be copied; change nothing")
    .addHelpText(
      "after",
      `
Copies each item's cipher row and what hangs on it (its folder links where the folder is still
the same user's, collection links, favorites, archive marks, attachment rows) in one transaction,
after a copy of the database was taken, then runs verify's database and Vaultwarden checks on the
result. The database is replaced only when all of that succeeded; otherwise it is left exactly as
it was. Refuses (naming why) an item whose owner or organization is gone or re-keyed since the
point, one of whose collections is gone, or whose uuid is already there. Item names are encrypted:
items are named by uuid, type and owner; nothing encrypted is ever printed.

Examples:
  litewarden recover /data/db.sqlite3 --at 2026-11-20T09:00:00Z --item 2d4161e5-2b2a-4c27-9de1-012528dbbc0a --dry-run
  litewarden recover s3://bucket/vw --at index:1f --generation 0123456789abcdef --item UUID --into /data/db.sqlite3`,
    )
    .action(async (target, opts) => done(await runRecover(target, opts, output)));
}

function parseItems(spec: string): string[] {
  const items = [...new Set(spec.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean))];
  const bad = items.filter((u) => !UUID.test(u));
  if (items.length === 0 || bad.length > 0) {
    throw new UsageError(
      `invalid --item ${spec}: expected item uuids, comma-separated (e.g. 2d4161e5-2b2a-4c27-9de1-012528dbbc0a)`,
    );
  }
  return items;
}

/** `DB.before-recover-20261204T051500Z`: sorts by time, says what it is. */
function defaultBackupPath(into: string, now: Date): string {
  const base = `${into}.before-recover-${now.toISOString().replace(/[-:]|\.\d+/g, "")}`;
  // Two recovers within one second: the second one's copy gets its own name.
  for (let n = 2;; n++) {
    const path = n === 2 ? base : `${base}-${n - 1}`;
    try {
      Deno.lstatSync(path);
    } catch {
      return path;
    }
  }
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

/** A copy of `from` at `to` (a new file), on disk before anything relies on it. */
async function copyDurably(from: string, to: string): Promise<void> {
  try {
    await Deno.copyFile(from, to);
    using f = await Deno.open(to, { read: true, write: true });
    await f.sync();
  } catch (err) {
    throw localFsError(err, to, { needBytes: (await Deno.stat(from)).size });
  }
}

/** Failures of the database and Vaultwarden checks (warnings do not stop a recovery). */
async function checkFailures(path: string): Promise<Check[]> {
  const checks = await checkDatabaseFile(path, { quick: false, restored: false });
  if (!checks.some((c) => c.status === "fail" && c.id.startsWith("file."))) {
    checks.push(...(await checkApplication(path, "vaultwarden")).checks);
  }
  return checks.filter((c) => c.status === "fail");
}

/** One connection: `main` the database at `mainUri`, the point attached read-only. */
function withPoint<T>(
  mainUri: string,
  pointPath: string,
  readOnly: boolean,
  fn: (db: DatabaseSync) => T,
): T {
  const db = new DatabaseSync(mainUri, { readOnly });
  try {
    db.exec(
      `ATTACH DATABASE '${
        readOnlyUri(pointPath, { ignoreWal: false }).replaceAll("'", "''")
      }' AS ${POINT_SCHEMA}`,
    );
    return fn(db);
  } finally {
    db.close();
  }
}

/** A `file:` URI that opens `path` read-write (percent-encoded like readOnlyUri's). */
function writableUri(path: string): string {
  return readOnlyUri(path, { ignoreWal: true }).replace(/\?immutable=1$/, "");
}

export async function runRecover(
  arg: string | undefined,
  opts: RecoverOptions,
  output: Output,
): Promise<number> {
  const items = parseItems(opts.item);
  const at = parsePointArg(opts.at, opts.generation, "--at");
  const parallelism = parseParallelism(opts.parallelism);
  const replica = "restore" in at ? await openFirstReplica(arg, opts, parallelism) : undefined;
  let into = opts.into;
  if (into === undefined && arg !== undefined && !arg.includes("://")) {
    into = (await resolveCliTarget(arg, opts)).dbPath;
  }
  if (!into) {
    throw new UsageError(
      "recover needs the database to bring the items into: pass --into PATH (Vaultwarden's db.sqlite3)",
    );
  }
  const target = into.startsWith("/") ? into : `${Deno.cwd()}/${into}`;
  const started = new Date();
  const backup = opts.backup === undefined
    ? defaultBackupPath(target, started)
    : opts.backup.startsWith("/")
    ? opts.backup
    : `${Deno.cwd()}/${opts.backup}`;

  // The target: a Vaultwarden database, closed cleanly, nobody using it.
  const st = await Deno.stat(target).catch(() => undefined);
  if (!st?.isFile) {
    throw new UsageError(`--into ${target} is not a database file; give Vaultwarden's db.sqlite3`);
  }
  for (const s of SIDECARS) {
    const side = await Deno.stat(target + s).catch(() => undefined);
    if (side && side.size > 0 && s !== "-shm") {
      throw new RefusedError(
        `${target}${s} (${
          formatBytes(side.size)
        }) lies beside the database: it was not closed cleanly, and those changes are not in the file yet; start and stop Vaultwarden once (or run sqlite3 ${target} 'PRAGMA wal_checkpoint(TRUNCATE)'), then recover`,
        target + s,
      );
    }
  }
  refuseInUse([], target, IN_USE);
  if (!isVaultwardenFile(target)) {
    throw new LitewardenError(
      "appCheck",
      `${target} is not a Vaultwarden database; recover brings Vaultwarden items back`,
    );
  }
  if (!opts.dryRun && await exists(backup)) {
    throw new RefusedError(
      `backup path ${backup} already exists; refusing to overwrite it: give another --backup PATH`,
      backup,
    );
  }

  return await withTempDir("litewarden-recover-", async (dir) => {
    let point: RestorePoint | undefined;
    let pointPath: string;
    if ("file" in at) pointPath = at.file;
    else {
      const chosen = chooseRestorePlan(replica!.listing, at.restore);
      point = chosen.point;
      pointPath = `${dir}/point.sqlite3`;
      await restoreToTemp(replica!.storage, chosen, pointPath, { parallelism });
    }
    if (!isVaultwardenFile(pointPath)) {
      throw new LitewardenError(
        "appCheck",
        `the database at ${opts.at} is not a Vaultwarden database; recover brings Vaultwarden items back`,
      );
    }
    const source = point ? describePoint(point) : `file ${pointPath}`;
    const plan = withPoint(
      readOnlyUri(target, { ignoreWal: true }),
      pointPath,
      true,
      (db) => planRecovery(db, items),
    );
    if (opts.dryRun) {
      report(output, opts.json === true, {
        dryRun: true,
        target,
        backup: null,
        source,
        point,
        plan,
      });
      return ExitCode.ok;
    }

    const before = await checkFailures(target);
    removeStaleTemps(parentDir(target));
    removeStaleTemps(parentDir(backup));
    const working = tempPathFor(target);
    const backupTemp = tempPathFor(backup);
    const temps = () => [working, ...SIDECARS.map((s) => working + s), backupTemp];
    const uninstall = cleanupOnSignal(temps);
    try {
      await copyDurably(target, backupTemp);
      await copyDurably(target, working);
      withPoint(writableUri(working), pointPath, false, (db) => {
        // Planned again on the copy: the same bytes, so the same plan, now on the connection
        // that writes.
        const again = planRecovery(db, items);
        applyRecovery(db, again, new Date());
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      });
      for (const s of SIDECARS) await Deno.remove(working + s).catch(() => {});
      const was = new Set(before.map((c) => c.id));
      const failed = (await checkFailures(working)).filter((c) => !was.has(c.id));
      if (failed.length > 0) {
        const worst = worstExitCode(failed.map((c) => c.exitCode ?? ExitCode.unhealthy));
        throw new LitewardenError(
          worst === ExitCode.appCheck ? "appCheck" : "unhealthy",
          `the database with the items recovered fails ${
            listForMessage(failed.map((c) => `${c.id} (${c.message})`), 3)
          }; nothing was changed: ${target} is as it was`,
        );
      }
      // Looked at again: Vaultwarden or Litestream may have started, or written, meanwhile.
      refuseInUse([], target, IN_USE);
      const now = await Deno.stat(target);
      if (now.size !== st.size || now.mtime?.getTime() !== st.mtime?.getTime()) {
        throw new RefusedError(
          `${target} changed while recovering (Vaultwarden running?); nothing was changed by recover: stop Vaultwarden and try again`,
          target,
        );
      }
      if (!(await installIfAbsent(backupTemp, backup))) {
        throw new RefusedError(
          `backup path ${backup} appeared while recovering; refusing to overwrite it: give another --backup PATH`,
          backup,
        );
      }
      await Deno.chmod(working, st.mode! & 0o7777);
      if (st.uid !== null && st.gid !== null) {
        // Vaultwarden's user must keep owning its database; only root may hand it over.
        await Deno.chown(working, st.uid, st.gid).catch(() => {});
      }
      try {
        await Deno.rename(working, target);
      } catch (err) {
        throw localFsError(err, target);
      }
      await syncDir(parentDir(target));
    } finally {
      for (const p of temps()) await Deno.remove(p).catch(() => {});
      uninstall();
    }
    report(output, opts.json === true, { dryRun: false, target, backup, source, point, plan });
    return ExitCode.ok;
  });
}

interface Outcome {
  dryRun: boolean;
  target: string;
  backup: string | null;
  source: string;
  point: RestorePoint | undefined;
  plan: RecoveryPlan;
}

function ownerText(i: RecoveryItem): string {
  return "user" in i.owner
    ? `of ${i.owner.email ?? "?"} (${i.owner.user})`
    : `of organization ${i.owner.organization}`;
}

function report(output: Output, json: boolean, o: Outcome): void {
  const attachments = o.plan.items.flatMap((i) => i.attachments);
  if (json) {
    output.out(JSON.stringify(
      {
        ok: true,
        command: "recover",
        dryRun: o.dryRun,
        into: o.target,
        backup: o.backup,
        at: o.point ? pointJson(o.point, new Date()) : { file: o.source.slice("file ".length) },
        items: o.plan.items.map((i) => ({
          uuid: i.uuid,
          type: i.type,
          owner: i.owner,
          rows: i.rows,
          skipped: i.skipped,
          attachments: i.attachments.map((a) => ({ ...a, fileCopied: false })),
        })),
        revisedUsers: o.plan.revisedUsers,
      },
      null,
      2,
    ));
    return;
  }
  const n = o.plan.items.length;
  const lines = [
    `${o.dryRun ? "would recover" : "recovered"} ${n} ${
      n === 1 ? "item" : "items"
    } from ${o.source}${o.point ? ` (${formatTime(o.point.time)})` : ""} into ${o.target}${
      o.backup ? ` (the database before: ${o.backup})` : ""
    }:`,
  ];
  for (const i of o.plan.items) {
    lines.push(
      `  item ${i.uuid} (${i.type}) ${ownerText(i)}: ${
        Object.entries(i.rows).map(([t, k]) => `${t} ${k}`).join(", ")
      }`,
    );
    for (const s of i.skipped) {
      lines.push(`    left out: ${s.table} ${s.key} (${s.reason})`);
    }
  }
  if (o.plan.revisedUsers.length > 0) {
    lines.push(
      `  revision date of ${o.plan.revisedUsers.length} ${
        o.plan.revisedUsers.length === 1 ? "user" : "users"
      } moved to now, so their clients fetch the ${n === 1 ? "item" : "items"} at the next sync`,
    );
  }
  if (attachments.length > 0) {
    lines.push(
      `  attachment files are not in the database: copy ${
        listForMessage(attachments.map((a) => `data/${a.file}`), 5)
      } back from a backup of Vaultwarden's data folder`,
    );
  }
  output.out(lines.join("\n"));
}
