import { createHash } from "node:crypto";
import { ExitCode, UsageError } from "../errors.ts";
import { formatBytes } from "../lib/format.ts";
import { errorText, readOnlyQuery } from "../lib/sqlite.ts";
import { searchChange } from "../replica/change_search.ts";
import type { ChangeSearchResult } from "../replica/change_search.ts";
import { restorePointsOf } from "../replica/points.ts";
import { chooseRestorePlan } from "../replica/restore.ts";
import { describePointAt, pointJson, pointSpec, restoreFlags } from "../replica/restore_point.ts";
import type { RestorePoint, RestoreRequest } from "../replica/restore_point.ts";
import type { Output } from "./context.ts";
import { withTempDir } from "./safe_output.ts";
import { parsePointArg } from "./options.ts";
import { openFirstReplica } from "./target.ts";

export interface WhenOptions {
  config?: string;
  replica?: string;
  ageIdentity?: string[];
  from?: string;
  to: string;
  generation?: string;
  parallelism: number;
  json?: boolean;
  when?: string;
  itemGone?: string;
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The query `--item-gone UUID` stands for: the item's row is there (1) or not (0). */
function itemGoneQuery(uuid: string): string {
  if (!UUID.test(uuid)) {
    throw new UsageError(
      `invalid --item-gone ${uuid}: expected an item (cipher) uuid, e.g. 2d4161e5-2b2a-4c27-9de1-012528dbbc0a`,
    );
  }
  return `SELECT count(*) FROM ciphers WHERE uuid = '${uuid.toLowerCase()}'`;
}

/**
 * An answer as it may be printed: numbers and NULLs as they are (counts, flags, types), anything
 * else (text, blobs: possibly encrypted vault data) only as a row count and a fingerprint.
 */
function answerText(rows: unknown[][]): string {
  const plain = rows.length <= 1 &&
    rows.every((r) => r.every((v) => v === null || typeof v === "number" || typeof v === "bigint"));
  if (plain) {
    return rows.length === 0 ? "no rows" : rows[0].map((v) => String(v)).join(", ");
  }
  const digest = createHash("sha256");
  for (const r of rows) {
    digest.update(
      JSON.stringify(r.map((v) =>
        v instanceof Uint8Array
          ? {
            blob: [...v].map((b) => b.toString(16).padStart(2, "0")).join(""),
          }
          : typeof v === "bigint"
          ? String(v)
          : v
      )),
    );
    digest.update("\n");
  }
  return `${rows.length} ${rows.length === 1 ? "row" : "rows"} (fingerprint ${
    digest.digest("hex").slice(0, 12)
  })`;
}

/** Position of a point within one history, for "between --from and --to". */
function order(p: RestorePoint): [number, number] {
  return p.format === "v0.5"
    ? [Number(BigInt(`0x${p.txid}`)), 0]
    : [p.index, p.offset ?? Number.MAX_SAFE_INTEGER];
}
const notAfter = (a: RestorePoint, b: RestorePoint) => {
  const [x, y] = order(a);
  const [u, v] = order(b);
  return x < u || (x === u && y <= v);
};

/**
 * `snapshot-diff --when SQL` / `--item-gone UUID`: the first restore point between `--from` and
 * `--to` where the query's answer differs from its answer at `--from`, by a binary search that
 * builds as few points as it can (replica/change_search.ts).
 */
export async function runWhen(
  arg: string | undefined,
  opts: WhenOptions,
  output: Output,
): Promise<number> {
  if (opts.when !== undefined && opts.itemGone !== undefined) {
    throw new UsageError("use either --when or --item-gone, not both");
  }
  const sql = opts.when ?? itemGoneQuery(opts.itemGone!);
  if (sql.trim() === "") throw new UsageError('--when needs a query, e.g. --when "SELECT …"');
  const request = (spec: string, flag: string): RestoreRequest => {
    const p = parsePointArg(spec, opts.generation, flag);
    if ("file" in p) {
      throw new UsageError(
        `${flag} file:… is one database, not a point of the replica; --when searches restore points`,
      );
    }
    return p.restore;
  };
  const toReq = request(opts.to, "--to");
  const fromReq = opts.from === undefined ? undefined : request(opts.from, "--from");
  const { storage, listing } = await openFirstReplica(arg, opts, opts.parallelism);
  const to = chooseRestorePlan(listing, toReq).point;
  const generation = to.format === "v0.3" ? to.generation : undefined;
  const all = restorePointsOf(listing, { generation, format: to.format });
  const from = fromReq ? chooseRestorePlan(listing, fromReq).point : all[0];
  if (!from) throw new UsageError("no restore point to search from");
  if (from.format !== to.format || (from.format === "v0.3" && from.generation !== generation)) {
    throw new UsageError(
      `--from (${describePointAt(from)}) and --to (${
        describePointAt(to)
      }) are not in one history: --when searches one generation (or the v0.5 levels); give --from within ${
        generation ? `generation ${generation}` : "the levels"
      }`,
    );
  }
  // From the last enumerated point at or before --from to the last one at or before --to.
  const first = all.findLastIndex((p) => notAfter(p, from));
  const last = all.findLastIndex((p) => notAfter(p, to));
  if (first < 0 || last < first) {
    throw new UsageError(
      `--from (${describePointAt(from)}) is after --to (${describePointAt(to)}); swap them`,
    );
  }
  const points = all.slice(first, last + 1);
  const started = performance.now();
  const answer = (path: string, p: RestorePoint) => {
    try {
      return answerText(readOnlyQuery(path, sql));
    } catch (err) {
      throw new UsageError(
        `the --when query failed at ${describePointAt(p)}: ${
          errorText(err)
        }; give one SELECT (it runs read-only: no PRAGMA, ATTACH or writes)`,
      );
    }
  };
  const result = await withTempDir(
    "litewarden-when-",
    (dir) => searchChange(storage, listing, points, answer, dir, { parallelism: opts.parallelism }),
  );
  report(output, opts, listing.location, sql, result, (performance.now() - started) / 1000, arg);
  return ExitCode.ok;
}

function report(
  output: Output,
  opts: WhenOptions,
  location: string,
  sql: string,
  r: ChangeSearchResult<RestorePoint>,
  seconds: number,
  target: string | undefined,
): void {
  const now = new Date();
  const first = r.before.point;
  if (opts.json) {
    const probe = (p: { point: RestorePoint; answer: string }) => ({
      point: pointJson(p.point, now),
      restoreFlags: restoreFlags(p.point),
      answer: p.answer,
    });
    output.out(JSON.stringify(
      {
        ok: true,
        command: "snapshot-diff",
        location,
        when: {
          query: sql,
          changed: r.after !== undefined,
          before: probe(r.before),
          after: r.after ? probe(r.after) : null,
          points: r.points,
          restored: r.restored,
          downloads: r.downloads,
          bytesDownloaded: r.bytesDownloaded,
          seconds: Math.round(seconds * 1000) / 1000,
        },
      },
      null,
      2,
    ));
    return;
  }
  const lines: string[] = [];
  if (!r.after) {
    lines.push(
      `The answer does not change: ${r.before.answer} at all ${r.points} restore points searched, the last ${
        describePointAt(first)
      }.`,
    );
  } else {
    lines.push(
      `The answer changes from ${r.before.answer} to ${r.after.answer}:`,
      `  last point before: ${describePointAt(r.before.point)}`,
      `                     restore with ${restoreFlags(r.before.point)}`,
      `  first point after: ${describePointAt(r.after.point)}`,
      `                     restore with ${restoreFlags(r.after.point)}`,
    );
    if (opts.itemGone !== undefined && r.after.answer === "0") {
      const g = r.before.point.format === "v0.3"
        ? ` --generation ${r.before.point.generation}`
        : "";
      // A replica URL names no database: the operator says where Vaultwarden's is.
      const into = target === undefined || target.includes("://") ? " --into /data/db.sqlite3" : "";
      lines.push(
        `  bring it back (Vaultwarden stopped): litewarden recover ${target ?? ""} --at ${
          pointSpec(r.before.point)
        }${g} --item ${opts.itemGone.toLowerCase()}${into}`.replace(
          "recover  --at",
          "recover --at",
        ),
      );
    }
  }
  lines.push(
    `Searched ${r.points} restore points: built ${r.restored}, downloaded ${r.downloads} objects (${
      formatBytes(r.bytesDownloaded)
    }) in ${seconds.toFixed(1)}s.`,
  );
  output.out(lines.join("\n"));
}
