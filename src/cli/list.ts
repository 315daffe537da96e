import { Command } from "commander";
import { describeTarget } from "../config/target.ts";
import { ExitCode, noBackupError } from "../errors.ts";
import { listJson, listText, newestOf } from "../report/list_report.ts";
import type { ListedReplica } from "../report/list_report.ts";
import { listReplica, onlyDamaged } from "../replica/listing.ts";
import { summarize } from "../replica/summary.ts";
import { openStorage } from "../storage/open.ts";
import type { Output } from "./context.ts";
import { resolveCliTarget } from "./target.ts";

export interface ListOptions {
  config?: string;
  replica?: string;
  json?: boolean;
}

export function listCommand(output: Output, done: (code: number) => void) {
  return new Command("list")
    .description(
      "List what a replica holds (generations or LTX levels) and its restorable window, without downloading payloads.",
    )
    .argument("[target]", "database path from the config, or a replica URL (s3://…, file:///…)")
    .option(
      "--config <path>",
      "litestream.yml (default: $LITESTREAM_CONFIG or /etc/litestream.yml)",
    )
    .option("--replica <name>", "only this replica of the database")
    .option("--json", "print one JSON document")
    .addHelpText(
      "after",
      "\nExamples:\n  litewarden list /data/db.sqlite3 --config /etc/litestream.yml\n  litewarden list s3://bucket/vaultwarden?endpoint=https://ACCOUNT.r2.cloudflarestorage.com --json",
    )
    .action(async (target, opts) => done(await runList(target, opts, output)));
}

export async function runList(
  arg: string | undefined,
  opts: ListOptions,
  output: Output,
): Promise<number> {
  const resolved = await resolveCliTarget(arg, opts);
  const now = new Date();
  const listed: ListedReplica[] = [];
  for (const target of resolved.replicas) {
    const storage = await openStorage(target);
    const listing = await listReplica(storage);
    if (listing.objectCount === 0) {
      throw noBackupError(
        `no backup found: nothing is stored at ${
          describeTarget(target)
        }; check the bucket and path (a wrong prefix is the usual cause)`,
      );
    }
    const damaged = onlyDamaged(listing);
    if (damaged) throw damaged;
    if (!listing.v03 && !listing.v05) {
      throw noBackupError(
        `no backup found at ${
          describeTarget(target)
        }: ${listing.objectCount} objects are there but none is a Litestream replica file (expected generations/… or LTX levels); check the path`,
      );
    }
    listed.push({
      name: target.name,
      location: describeTarget(target),
      listing,
      summary: summarize(listing),
    });
  }
  if (opts.json) output.out(JSON.stringify(listJson(listed, now, resolved.dbPath), null, 2));
  else output.out(listText(listed, now));
  return newestOf(listed) ? ExitCode.ok : ExitCode.damaged;
}
