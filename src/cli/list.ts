import { describeTarget } from "../config/target.ts";
import { EXIT_CODE_BY_KIND, ExitCode } from "../errors.ts";
import { listJson, listText, newestOf } from "../report/list_report.ts";
import type { ListedReplica } from "../report/list_report.ts";
import { listReplica, requireBackup } from "../replica/listing.ts";
import { summarize } from "../replica/summary.ts";
import { openStorage } from "../storage/open.ts";
import type { Output } from "./context.ts";
import { replicaCommand } from "./options.ts";
import { resolveCliTarget } from "./target.ts";

export interface ListOptions {
  config?: string;
  replica?: string;
  json?: boolean;
}

export function listCommand(output: Output, done: (code: number) => void) {
  return replicaCommand(
    "list",
    "List what a replica holds (generations or LTX levels) and its restorable window, without downloading payloads.",
    {
      target: "database path from the config, or a replica URL (s3://…, file:///…)",
      json: "print one JSON document",
    },
  )
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
    requireBackup(listing, describeTarget(target));
    listed.push({
      name: target.name,
      location: describeTarget(target),
      listing,
      summary: summarize(listing),
    });
  }
  if (opts.json) output.out(JSON.stringify(listJson(listed, now, resolved.dbPath), null, 2));
  else output.out(listText(listed, now));
  // Listed, but no point restores: the chain is broken (what the damage is, the text says).
  return newestOf(listed) ? ExitCode.ok : EXIT_CODE_BY_KIND.damaged;
}
