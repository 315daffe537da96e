import { ExitCode, UsageError } from "../errors.ts";
import { table } from "../lib/format.ts";
import { isVaultwardenFile } from "../apps/vaultwarden/check.ts";
import { summarizeVaultChanges, vaultSummaryText } from "../apps/vaultwarden/diff_summary.ts";
import type { VaultSummary } from "../apps/vaultwarden/diff_summary.ts";
import { pointBuilder } from "../replica/change_search.ts";
import { diffDatabases, withAttachedPair } from "../replica/diff.ts";
import { chooseRestorePlan, restoreToTemp } from "../replica/restore.ts";
import { describePointAt, pointJson, v03Point } from "../replica/restore_point.ts";
import type { Output } from "./context.ts";
import { withTempDir } from "./safe_output.ts";
import { runWhen } from "./when.ts";
import { parseParallelism, parsePointArg, parseWholeNumber, replicaCommand } from "./options.ts";
import type { PointArg } from "./options.ts";
import { ageIdentityOption, openFirstReplica } from "./target.ts";

/** More keys than anyone reads per table; also keeps SQLite's LIMIT an integer. */
const MAX_KEYS = 100_000;

export interface DiffOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  from?: string;
  to: string;
  generation?: string;
  keys: string;
  parallelism: string;
  json?: boolean;
  user?: string;
  item?: string;
  table?: string;
  when?: string;
  itemGone?: string;
}

/** A point resolved against the listing. */
type DiffSide = { plan: ReturnType<typeof chooseRestorePlan> } | { file: string };

export function snapshotDiffCommand(output: Output, done: (code: number) => void) {
  return replicaCommand(
    "snapshot-diff",
    "What changed between two restore points (schema and rows, by primary key): pick a restore point after an incident.",
    { json: "print JSON" },
  )
    .addOption(ageIdentityOption())
    .option(
      "--from <point>",
      "older point: an RFC 3339 time, index:HEX or index:HEX_OFFSET (v0.3: the end of a WAL index, or the WAL segment at that offset), txid:HEX (v0.5), latest, or file:PATH (a local database, opened read-only)",
    )
    .option("--to <point>", "newer point (same forms)", "latest")
    .option("--generation <id>", "v0.3: points of this generation")
    .option("--keys <n>", "list up to n changed primary keys per table (ids only)", "10")
    .option("--parallelism <n>", "parallel downloads", "8")
    .option("--table <name>", "only this table (and the Vaultwarden changes read from it)")
    .option("--user <email|uuid>", "Vaultwarden: only this user's changes")
    .option("--item <uuid>", "Vaultwarden: only this item's changes (and its attachments)")
    .option(
      "--when <sql>",
      "instead of a diff: the first restore point between --from (default: the generation's first) and --to where this read-only query's answer changes",
    )
    .option(
      "--item-gone <uuid>",
      "instead of a diff: the first restore point where this Vaultwarden item (cipher) is gone, i.e. --when \"SELECT count(*) FROM ciphers WHERE uuid = '…'\"",
    )
    .addHelpText(
      "after",
      `
Only table names, counts and primary-key values are shown, never column contents (vault data is
encrypted, but keys, hashes and tokens must not leak into terminals or logs). On a Vaultwarden
database a summary per user (uuid and e-mail) and per organization comes first.

Examples:
  litewarden snapshot-diff /data/db.sqlite3 --from 2026-11-20T09:00:00Z
  litewarden snapshot-diff s3://bucket/vw --from index:3 --to index:5 --json
  litewarden snapshot-diff /data/db.sqlite3 --from 2026-11-20T09:00:00Z --to file:/data/db.sqlite3 --user alice@example.com
  litewarden snapshot-diff /data/db.sqlite3 --item-gone 2d4161e5-2b2a-4c27-9de1-012528dbbc0a
  litewarden snapshot-diff s3://bucket/vw --when "SELECT atype FROM users_organizations WHERE user_uuid = '…'"`,
    )
    .action(async (target, opts) => done(await runSnapshotDiff(target, opts, output)));
}

export async function runSnapshotDiff(
  arg: string | undefined,
  opts: DiffOptions,
  output: Output,
): Promise<number> {
  if (opts.when !== undefined || opts.itemGone !== undefined) {
    return await runWhen(arg, { ...opts, parallelism: parseParallelism(opts.parallelism) }, output);
  }
  if (opts.from === undefined) {
    throw new UsageError(
      "snapshot-diff needs --from POINT (or --when SQL / --item-gone UUID to find when something changed)",
    );
  }
  const from = parsePointArg(opts.from, opts.generation, "--from");
  const to = parsePointArg(opts.to, opts.generation, "--to");
  const keyLimit = parseWholeNumber(opts.keys, "--keys", 0, MAX_KEYS);
  const parallelism = parseParallelism(opts.parallelism);
  const replica = "restore" in from || "restore" in to
    ? await openFirstReplica(arg, opts, parallelism)
    : undefined;
  const plan = (p: PointArg): DiffSide => {
    if ("file" in p) return { file: p.file };
    return { plan: chooseRestorePlan(replica!.listing, p.restore) };
  };
  const fromSide = plan(from);
  const toSide = plan(to);
  return await withTempDir("litewarden-diff-", async (dir) => {
    const materialize = async (side: DiffSide, name: string) => {
      if ("file" in side) return side.file;
      const path = `${dir}/${name}.sqlite3`;
      await restoreToTemp(replica!.storage, side.plan, path, { parallelism });
      return path;
    };
    let fromPath: string;
    let toPath: string;
    // The points as far as their plans reach (a time picks segments within an index).
    const reach = (side: DiffSide) => {
      if (!("plan" in side) || side.plan.format !== "v0.3") return undefined;
      const seg = side.plan.plan.indices.at(-1)?.segments.at(-1);
      return seg && v03Point(seg.generation, seg.index, side.plan.point.time, seg.offset);
    };
    const a = reach(fromSide);
    const b = reach(toSide);
    if (
      a && b && "plan" in fromSide && a.generation === b.generation &&
      (a.index < b.index || (a.index === b.index && a.offset! <= b.offset!))
    ) {
      // One generation, forward in time: the newer point is the older one plus the segments in
      // between, so its snapshot is not downloaded and decoded a second time.
      const names = ["from", "to"];
      const builder = pointBuilder(
        replica!.storage,
        replica!.listing,
        () => `${dir}/${names.shift()}.sqlite3`,
        { parallelism },
      );
      const older = await builder.fresh(fromSide.plan);
      fromPath = older.path;
      toPath = (await builder.forward(older, b)).path;
    } else {
      fromPath = await materialize(fromSide, "from");
      toPath = await materialize(toSide, "to");
    }
    const diff = diffDatabases(fromPath, toPath, keyLimit, opts.table);
    const vaultwarden = isVaultwardenFile(fromPath) && isVaultwardenFile(toPath)
      ? withAttachedPair(
        fromPath,
        toPath,
        (db) => summarizeVaultChanges(db, { user: opts.user, item: opts.item, table: opts.table }),
      )
      : null;
    if (!vaultwarden && (opts.user !== undefined || opts.item !== undefined)) {
      throw new UsageError(
        "--user and --item need two Vaultwarden databases; leave them out for this database",
      );
    }
    const now = new Date();
    const pointOf = (side: DiffSide) =>
      "file" in side ? { file: side.file } : pointJson(side.plan.point, now);
    if (opts.json) {
      output.out(JSON.stringify(
        {
          ok: true,
          command: "snapshot-diff",
          location: replica?.listing.location ?? null,
          from: pointOf(fromSide),
          to: pointOf(toSide),
          schema: diff.schema,
          tables: diff.tables,
          vaultwarden,
        },
        null,
        2,
      ));
    } else {
      const label = (side: DiffSide) =>
        "file" in side ? `file ${side.file}` : describePointAt(side.plan.point);
      output.out(diffText(label(fromSide), label(toSide), diff, vaultwarden));
    }
    return ExitCode.ok;
  });
}

function diffText(
  from: string,
  to: string,
  diff: ReturnType<typeof diffDatabases>,
  vaultwarden: VaultSummary | null,
): string {
  const lines = [`From ${from}`, `  to ${to}`, ""];
  if (vaultwarden) lines.push(...vaultSummaryText(vaultwarden), "");
  if (diff.schema.length === 0 && diff.tables.length === 0) {
    lines.push("No differences in schema or rows.");
    return lines.join("\n");
  }
  for (const s of diff.schema) lines.push(`schema: ${s.type} ${s.name} ${s.change}`);
  if (diff.tables.length > 0) {
    const rows = [["TABLE", "ROWS BEFORE", "ROWS AFTER", "ADDED", "REMOVED", "CHANGED"]];
    for (const t of diff.tables) {
      rows.push([
        t.table,
        String(t.rowsBefore),
        String(t.rowsAfter),
        String(t.added),
        String(t.removed),
        String(t.changed),
      ]);
    }
    if (diff.schema.length) lines.push("");
    lines.push(table(rows));
    for (const t of diff.tables) {
      const parts: string[] = [];
      if (t.addedKeys.length) parts.push(`added ${t.addedKeys.join(", ")}`);
      if (t.removedKeys.length) parts.push(`removed ${t.removedKeys.join(", ")}`);
      if (t.changedKeys.length) parts.push(`changed ${t.changedKeys.join(", ")}`);
      if (parts.length) lines.push(`  ${t.table} (${t.key.join(", ")}): ${parts.join("; ")}`);
    }
  }
  return lines.join("\n");
}
