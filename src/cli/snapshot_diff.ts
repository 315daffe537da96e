import { ExitCode, UsageError } from "../errors.ts";
import { formatTime, table } from "../lib/format.ts";
import { pointJson } from "../report/list_report.ts";
import { diffDatabases } from "../replica/diff.ts";
import { listReplica } from "../replica/listing.ts";
import { chooseRestorePlan, restoreToTemp } from "../replica/restore.ts";
import type { RestoreRequest } from "../replica/restore.ts";
import type { RestorePoint } from "../replica/summary.ts";
import { openStorage } from "../storage/open.ts";
import type { Output } from "./context.ts";
import { parseRestoreRequest } from "./restore.ts";
import { withTempDir } from "./safe_output.ts";
import { parseParallelism, parseWholeNumber, replicaCommand } from "./options.ts";
import { ageIdentityOption, resolveCliTarget } from "./target.ts";

/** More keys than anyone reads per table; also keeps SQLite's LIMIT an integer. */
const MAX_KEYS = 100_000;

export interface DiffOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  from: string;
  to: string;
  generation?: string;
  keys: string;
  parallelism: string;
  json?: boolean;
}

export function snapshotDiffCommand(output: Output, done: (code: number) => void) {
  return replicaCommand(
    "snapshot-diff",
    "What changed between two restore points (schema and rows, by primary key): pick a restore point after an incident.",
    { json: "print JSON" },
  )
    .addOption(ageIdentityOption())
    .requiredOption(
      "--from <point>",
      "older point: an RFC 3339 time, index:HEX (v0.3), txid:HEX (v0.5) or latest",
    )
    .option("--to <point>", "newer point (same forms)", "latest")
    .option("--generation <id>", "v0.3: points of this generation")
    .option("--keys <n>", "list up to n changed primary keys per table (ids only)", "10")
    .option("--parallelism <n>", "parallel downloads", "8")
    .addHelpText(
      "after",
      `
Only table names, counts and primary-key values are shown, never column contents (vault data is
encrypted, but keys, hashes and e-mail addresses must not leak into terminals or logs).

Examples:
  litewarden snapshot-diff /data/db.sqlite3 --from 2026-11-20T09:00:00Z
  litewarden snapshot-diff s3://bucket/vw --from index:3 --to index:5 --json`,
    )
    .action(async (target, opts) => done(await runSnapshotDiff(target, opts, output)));
}

function parsePoint(spec: string, generation: string | undefined, flag: string): RestoreRequest {
  if (spec === "latest") return { generation };
  const m = /^(index|txid):(.+)$/.exec(spec);
  if (m) {
    return parseRestoreRequest({
      [m[1]]: m[2],
      generation,
      parallelism: "8",
    });
  }
  if (/^\d{4}-/.test(spec)) {
    return parseRestoreRequest({ timestamp: spec, generation, parallelism: "8" });
  }
  throw new UsageError(
    `invalid ${flag} ${spec}: use an RFC 3339 time, index:HEX, txid:HEX or latest`,
  );
}

export async function runSnapshotDiff(
  arg: string | undefined,
  opts: DiffOptions,
  output: Output,
): Promise<number> {
  const from = parsePoint(opts.from, opts.generation, "--from");
  const to = parsePoint(opts.to, opts.generation, "--to");
  const keyLimit = parseWholeNumber(opts.keys, "--keys", 0, MAX_KEYS);
  const parallelism = parseParallelism(opts.parallelism);
  const resolved = await resolveCliTarget(arg, opts);
  const storage = await openStorage(resolved.replicas[0]);
  const listing = await listReplica(storage, { parallelism });
  const fromPlan = chooseRestorePlan(listing, from);
  const toPlan = chooseRestorePlan(listing, to);
  return await withTempDir("litewarden-diff-", async (dir) => {
    await restoreToTemp(storage, fromPlan, `${dir}/from.sqlite3`, { parallelism });
    await restoreToTemp(storage, toPlan, `${dir}/to.sqlite3`, { parallelism });
    const diff = diffDatabases(`${dir}/from.sqlite3`, `${dir}/to.sqlite3`, keyLimit);
    const now = new Date();
    if (opts.json) {
      output.out(JSON.stringify(
        {
          ok: true,
          command: "snapshot-diff",
          location: listing.location,
          from: pointJson(fromPlan.point, now),
          to: pointJson(toPlan.point, now),
          schema: diff.schema,
          tables: diff.tables,
        },
        null,
        2,
      ));
    } else {
      output.out(diffText(fromPlan.point, toPlan.point, diff));
    }
    return ExitCode.ok;
  });
}

function describe(p: RestorePoint): string {
  return `${formatTime(p.time)} (${
    p.format === "v0.3" ? `generation ${p.generation} index ${p.index}` : `TXID ${p.txid}`
  })`;
}

function diffText(
  from: RestorePoint,
  to: RestorePoint,
  diff: ReturnType<typeof diffDatabases>,
): string {
  const lines = [`From ${describe(from)}`, `  to ${describe(to)}`, ""];
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
