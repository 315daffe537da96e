import { formatIndex } from "../formats/v03_layout.ts";
import { DamagedError, LitewardenError, NoBackupError, UsageError } from "../errors.ts";
import { formatTime } from "../lib/format.ts";
import type { Storage } from "../storage/storage.ts";
import { onlyDamaged } from "./listing.ts";
import type { ReplicaListing } from "./listing.ts";
import { PageFile } from "./page_file.ts";
import { restoreFlags, summarize } from "./summary.ts";
import type { ReplicaSummary, RestorePoint } from "./summary.ts";
import { planV03, V03PlanError } from "./v03.ts";
import type { V03Plan } from "./v03.ts";
import { applyV03 } from "./v03_restore.ts";
import type { ApplyOptions } from "./v03_restore.ts";
import { formatTxid, parseLtxFileName } from "../formats/ltx_header.ts";
import { parseV03Key } from "../formats/v03_layout.ts";
import { parseV05Key } from "../formats/v05_layout.ts";
import { listForMessage } from "../lib/message_list.ts";
import { planV05, V05PlanError } from "./v05.ts";
import type { V05Plan } from "./v05.ts";
import { applyV05 } from "./v05_restore.ts";

/** What to restore to; at most one of index / txid / timestamp. */
export interface RestoreRequest {
  timestamp?: Date;
  /** v0.3 WAL index: restore through the end of it. */
  index?: number;
  /** v0.5 TXID. */
  txid?: bigint;
  generation?: string;
}

export type ChosenPlan =
  | { format: "v0.3"; plan: V03Plan; point: RestorePoint }
  | { format: "v0.5"; plan: V05Plan; point: RestorePoint };

export interface RestoreResult {
  point: RestorePoint;
  objects: number;
  bytesDownloaded: number;
  bytesWritten: number;
  pageSize: number;
  pages: number;
  /** v0.5 chains with database checksums: the rolling checksum matched after every file. */
  checksumVerified: boolean;
}

/**
 * Chooses the history and plans the restore the way Litestream does: v0.3 flags select v0.3, a
 * TXID selects v0.5; otherwise the newer history wins (v0.5.7+ behaviour, §3.8).
 */
export function chooseRestorePlan(listing: ReplicaListing, req: RestoreRequest): ChosenPlan {
  const damaged = onlyDamaged(listing);
  if (damaged) throw damaged;
  if (!listing.v03 && !listing.v05) {
    throw new NoBackupError(`no backup found at ${listing.location}`);
  }
  let format: "v0.3" | "v0.5";
  if (req.index !== undefined || req.generation !== undefined) {
    if (!listing.v03) {
      throw new UsageError(
        "--index and --generation need a v0.3 replica; this one holds only LTX files (use --txid)",
      );
    }
    format = "v0.3";
  } else if (req.txid !== undefined) {
    if (!listing.v05) {
      throw new UsageError(
        "--txid needs a v0.5 (LTX) replica; this one holds v0.3 generations (use --index)",
      );
    }
    format = "v0.5";
  } else if (!listing.v05) format = "v0.3";
  else if (!listing.v03) format = "v0.5";
  else {
    const s = summarize(listing);
    format = s.restoreFrom ?? "v0.5";
  }
  if (format === "v0.3") {
    if (
      req.generation !== undefined && !listing.v03!.generations.some((g) => g.id === req.generation)
    ) {
      throw new NoBackupError(
        `generation ${req.generation} not found at ${listing.location}; ${
          describeGenerations(summarize(listing))
        }`,
        listing.location,
      );
    }
    const target = req.index !== undefined
      ? { kind: "index" as const, index: req.index }
      : req.timestamp
      ? { kind: "timestamp" as const, time: req.timestamp }
      : { kind: "latest" as const };
    try {
      const plan = planV03(listing.v03!, target, req.generation);
      // Litestream restores the latest point for an index past the end; that is not what was asked.
      if (req.index !== undefined && plan.index < req.index) {
        const end = { format, generation: plan.generation.id, index: plan.index, time: plan.time };
        throw planFailure(
          listing,
          "not-found",
          `generation ${plan.generation.id} ends at index ${formatIndex(plan.index)} (${
            restoreFlags(end)
          })`,
          req,
        );
      }
      return {
        format,
        plan,
        point: { format, generation: plan.generation.id, index: plan.index, time: plan.time },
      };
    } catch (err) {
      if (!(err instanceof V03PlanError)) throw err;
      throw planFailure(
        listing,
        err.reason === "missing-wal" ? "damaged" : "not-found",
        err.message,
        req,
      );
    }
  }
  const target = req.txid !== undefined
    ? { kind: "txid" as const, txid: req.txid }
    : req.timestamp
    ? { kind: "timestamp" as const, time: req.timestamp }
    : { kind: "latest" as const };
  if (req.timestamp) checkV05Bounds(listing, req.timestamp);
  try {
    const plan = planV05(listing.v05!, target);
    return { format, plan, point: { format, txid: formatTxid(plan.txid), time: plan.time } };
  } catch (err) {
    if (!(err instanceof V05PlanError)) throw err;
    const lost = damagedBelow(listing, req.txid);
    const kind = err.reason === "gap" || (err.reason === "no-snapshot" && !req.timestamp) ||
        lost.length > 0
      ? "damaged"
      : "not-found";
    const reason = lost.length > 0
      ? `${err.message}; left out as damaged: ${listForMessage(lost, 3)}`
      : err.message;
    throw planFailure(listing, kind, reason, req);
  }
}

/**
 * Damaged LTX files (dropped from the model by the listing) that hold TXIDs at or below the
 * target: when the plan then fails, the point is not outside the window (3), the replica is
 * damaged (5) — the file that would have reached it is unreadable.
 */
function damagedBelow(listing: ReplicaListing, txid: bigint | undefined): string[] {
  const ranges = listing.damaged.map((d) => ({
    key: d.key,
    range: parseLtxFileName(d.key.slice(d.key.lastIndexOf("/") + 1)),
  }));
  if (txid !== undefined) {
    // A TXID beyond everything the replica ever held is outside the window, damage or not.
    let newest = 0n;
    for (const f of [...(listing.v05?.levels.values() ?? [])].flat()) {
      if (f.maxTxid > newest) newest = f.maxTxid;
    }
    for (const d of ranges) if (d.range && d.range.maxTxid > newest) newest = d.range.maxTxid;
    if (txid > newest) return [];
  }
  return ranges.filter((d) => d.range && (txid === undefined || d.range.minTxid <= txid))
    .map((d) => d.key);
}

/** v0.5 URL-form rule: a timestamp must lie within the replica's LTX time bounds. */
function checkV05Bounds(listing: ReplicaListing, t: Date): void {
  const times = [...listing.v05!.levels.values()].flat().map((f) => f.time.getTime());
  const min = Math.min(...times);
  const max = Math.max(...times);
  if (t.getTime() < min || t.getTime() > max) {
    throw new NoBackupError(
      `timestamp ${formatTime(t)} is outside the replica's window ${formatTime(new Date(min))} … ${
        formatTime(new Date(max))
      }; pick a time inside it (see \`litewarden list\`)`,
      listing.location,
    );
  }
}

/** "the generations there: G1 (restorable T1 … T2), G2 (no snapshot…)", for a wrong --generation. */
function describeGenerations(s: ReplicaSummary): string {
  if (s.generations.length === 0) return "there is no v0.3 generation";
  const named = s.generations.map((g) =>
    g.restorable
      ? `${g.id} (restorable ${formatTime(g.restorable.from.time)} … ${
        formatTime(g.restorable.to.time)
      })`
      : `${g.id} (${g.problems[0] ?? "not restorable"})`
  );
  return `the generations there: ${listForMessage(named)}`;
}

function planFailure(
  listing: ReplicaListing,
  kind: "damaged" | "not-found",
  reason: string,
  req: RestoreRequest,
): LitewardenError {
  const s = summarize(listing);
  const window = s.oldest && s.newest
    ? `${formatTime(s.oldest.time)} … ${formatTime(s.newest.time)}`
    : "none";
  if (kind === "damaged") {
    const newest = s.newest
      ? `; the newest point still restorable is ${formatTime(s.newest.time)} (${
        restoreFlags(s.newest)
      })`
      : "; no point is restorable";
    return new DamagedError(`replica at ${listing.location} is incomplete: ${reason}${newest}`);
  }
  const asked = req.timestamp
    ? `timestamp ${formatTime(req.timestamp)}`
    : req.index !== undefined
    ? `index ${req.index.toString(16)}`
    : req.txid !== undefined
    ? `TXID ${formatTxid(req.txid)}`
    : "the latest point";
  return new NoBackupError(
    `no restore point for ${asked} at ${listing.location} (${reason}); restorable window: ${window}`,
  );
}

/**
 * Restores into a new temp file beside `outputPath`, fsyncs it and returns its path: the caller
 * renames it into place (so a crash or signal never leaves a partial database at the target).
 */
export async function restoreToTemp(
  storage: Storage,
  chosen: ChosenPlan,
  tempPath: string,
  opts: ApplyOptions,
): Promise<RestoreResult> {
  const out = await PageFile.create(tempPath);
  try {
    const stats = chosen.format === "v0.3"
      ? { ...(await applyV03(storage, chosen.plan, out, opts)), checksumsVerified: false }
      : await applyV05(storage, chosen.plan, out, opts);
    await out.sync();
    return {
      point: chosen.point,
      objects: stats.objects,
      bytesDownloaded: stats.bytesDownloaded,
      bytesWritten: stats.pages * stats.pageSize,
      pageSize: stats.pageSize,
      pages: stats.pages,
      checksumVerified: stats.checksumsVerified,
    };
  } finally {
    out.close();
  }
}

/**
 * Where a restore can go on from when the objects in `damaged` cannot be read: the newest point no
 * later than `notAfter` whose plan needs none of them. v0.3: the end of the WAL index before the
 * damaged object in its generation, or another generation's newest point; v0.5: the TXID just
 * below the damaged LTX file. Undefined when no such point exists. The point is planned, not yet
 * restored: the objects it needs may be damaged too (the caller finds out by restoring it).
 */
export function newestPointAvoiding(
  listing: ReplicaListing,
  damaged: ReadonlySet<string>,
  notAfter: Date,
): ChosenPlan | undefined {
  const candidates: RestoreRequest[] = [];
  for (const key of damaged) {
    const v03 = parseV03Key(key);
    if (v03 && v03.index > 0) candidates.push({ generation: v03.generation, index: v03.index - 1 });
    const v05 = parseV05Key(key);
    if (v05 && v05.minTxid > 1n) candidates.push({ txid: v05.minTxid - 1n });
  }
  for (const g of listing.v03?.generations ?? []) candidates.push({ generation: g.id });
  let best: ChosenPlan | undefined;
  for (const req of candidates) {
    let chosen: ChosenPlan;
    try {
      chosen = chooseRestorePlan(listing, req);
    } catch (err) {
      if (err instanceof LitewardenError) continue; // nothing restorable that way
      throw err;
    }
    if (chosen.point.time.getTime() > notAfter.getTime()) continue;
    if (planObjects(chosen).some((o) => damaged.has(o.key))) continue;
    if (!best || chosen.point.time.getTime() > best.point.time.getTime()) best = chosen;
  }
  return best;
}

/** The objects a restore downloads, in apply order. */
export function planObjects(chosen: ChosenPlan): { key: string; size: number }[] {
  if (chosen.format === "v0.5") return chosen.plan.files.map((f) => ({ key: f.key, size: f.size }));
  const p = chosen.plan;
  return [
    { key: p.snapshot.key, size: p.snapshot.size },
    ...p.indices.flatMap((g) => g.segments.map((s) => ({ key: s.key, size: s.size }))),
  ];
}
