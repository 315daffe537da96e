import { formatIndex } from "../formats/v03_layout.ts";
import { DamagedError, LitewardenError, NoBackupError, UsageError } from "../errors.ts";
import { formatAge, formatTime } from "../lib/format.ts";
import type { Storage } from "../storage/storage.ts";
import { listReplica, requireBackup } from "./listing.ts";
import type { ReplicaListing } from "./listing.ts";
import { PageFile } from "./page_file.ts";
import {
  describePointAt,
  describePointWithFlags,
  describeRequest,
  requestFor,
  restoreFlags,
  samePoint,
  v03Point,
  v05Point,
} from "./restore_point.ts";
import type { RestorePoint, RestoreRequest } from "./restore_point.ts";
import { ON_DAMAGE_ENV, ON_DAMAGE_RESTORE_NEWEST_INTACT } from "./marker.ts";
import { describeRestorableWindow, summarize } from "./summary.ts";
import type { ReplicaSummary } from "./summary.ts";
import { planV03, V03PlanError } from "./v03.ts";
import type { V03Plan } from "./v03.ts";
import { applyV03 } from "./v03_restore.ts";
import type { ApplyOptions } from "./v03_restore.ts";
import { parseLtxFileName } from "../formats/ltx_header.ts";
import { parseV03Key } from "../formats/v03_layout.ts";
import { parseV05Key } from "../formats/v05_layout.ts";
import { listForMessage } from "../lib/message_list.ts";
import { planV05, V05PlanError } from "./v05.ts";
import type { V05Plan } from "./v05.ts";
import { applyV05 } from "./v05_restore.ts";

export type { RestoreRequest } from "./restore_point.ts";

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
  requireBackup(listing);
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
      ? { kind: "index" as const, index: req.index, offset: req.offset }
      : req.timestamp
      ? { kind: "timestamp" as const, time: req.timestamp }
      : { kind: "latest" as const };
    try {
      const plan = planV03(listing.v03!, target, req.generation);
      // Litestream restores the latest point for an index past the end; that is not what was asked.
      if (req.index !== undefined && plan.index < req.index) {
        const end = v03Point(plan.generation.id, plan.index, plan.time);
        throw planFailure(
          listing,
          "not-found",
          `generation ${plan.generation.id} ends at index ${formatIndex(plan.index)} (${
            restoreFlags(end)
          })`,
          req,
        );
      }
      // A segment boundary is named by its offset; the end of an index (or latest) is not.
      const offset = req.offset !== undefined ? plan.offset : undefined;
      return { format, plan, point: v03Point(plan.generation.id, plan.index, plan.time, offset) };
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
    return { format, plan, point: v05Point(plan.txid, plan.time) };
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
  const window = describeRestorableWindow(s);
  if (kind === "damaged") {
    const newest = s.newest
      ? `; the newest point still restorable is ${describePointWithFlags(s.newest)}`
      : "; no point is restorable";
    return new DamagedError(`replica at ${listing.location} is incomplete: ${reason}${newest}`);
  }
  return new NoBackupError(
    `no restore point for ${
      describeRequest(req)
    } at ${listing.location} (${reason}); restorable window: ${window}`,
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

/**
 * Plans exactly `point` (as printed by any command, or enumerated by `restorePointsOf`): the
 * request its flags make, checked to reach that very point (a usage or no-backup error when it
 * does not exist in this listing).
 */
export function planPoint(listing: ReplicaListing, point: RestorePoint): ChosenPlan {
  const chosen = chooseRestorePlan(listing, requestFor(point));
  if (!samePoint(chosen.point, point)) {
    throw new NoBackupError(
      `restore point ${describePointAt(point)} is not in ${listing.location}; ${
        describeRestorableWindow(summarize(listing))
      } is the restorable window`,
      listing.location,
    );
  }
  return chosen;
}

/**
 * Restores `point` into a new file at `path` (fsynced; the caller installs or removes it), with
 * every payload check of a normal restore. The one call that materializes any restore point.
 */
export async function restorePoint(
  storage: Storage,
  listing: ReplicaListing,
  point: RestorePoint,
  path: string,
  opts: ApplyOptions,
): Promise<RestoreResult> {
  return await restoreToTemp(storage, planPoint(listing, point), path, opts);
}

/** The newest point a latest restore reaches, or undefined when the replica holds nothing yet. */
export async function newestRestorablePoint(storage: Storage): Promise<RestorePoint | undefined> {
  const listing = await listReplica(storage);
  if (!listing.v03 && !listing.v05) return undefined;
  return chooseRestorePlan(listing, {}).point;
}

/** One replica as a restore source: its storage and one listing of it. */
export interface RestoreSource {
  storage: Storage;
  listing: ReplicaListing;
  /** How the replica is named to the operator (the configured target, endpoint included). */
  location: string;
}

/** The outcome of choosing among a database's replicas. */
export type SourceChoice =
  | { kind: "chosen"; source: RestoreSource; chosen: ChosenPlan }
  /** Every replica is empty or holds only foreign objects (no error to report but "no backup"). */
  | { kind: "none"; empty: RestoreSource[] };

/**
 * Picks the replica whose planned point is newest (Litestream compares replicas the same way).
 * A replica whose chain is damaged yields its newest intact point instead when `acceptLoss`
 * (after a loud line through `warn`); otherwise the first planning error is thrown when no
 * replica can restore at all.
 */
export function chooseRestoreSource(
  sources: RestoreSource[],
  req: RestoreRequest,
  acceptLoss: boolean,
  warn: (line: string) => void,
): SourceChoice {
  let best: { source: RestoreSource; chosen: ChosenPlan } | undefined;
  const empty: RestoreSource[] = [];
  let firstError: unknown;
  for (const source of sources) {
    const { listing } = source;
    if (!listing.v03 && !listing.v05 && listing.damaged.length === 0) {
      empty.push(source);
      continue;
    }
    let chosen: ChosenPlan | undefined;
    try {
      chosen = chooseRestorePlan(listing, req);
    } catch (err) {
      chosen = acceptLoss && err instanceof DamagedError
        ? newestIntactPlan(listing, err, warn)
        : undefined;
      if (!chosen) firstError ??= err;
    }
    if (chosen && (!best || chosen.point.time > best.chosen.point.time)) {
      best = { source, chosen };
    }
  }
  if (best) return { kind: "chosen", ...best };
  if (firstError) throw firstError;
  return { kind: "none", empty };
}

/**
 * With the loss accepted, a chain the plan found broken (a missing WAL segment or index, a TXID
 * gap) is restored up to its newest intact point (the one the error names), after a loud line.
 */
function newestIntactPlan(
  listing: ReplicaListing,
  err: DamagedError,
  warn: (line: string) => void,
): ChosenPlan | undefined {
  const newest = summarize(listing).newest;
  if (!newest) return undefined;
  let chosen: ChosenPlan;
  try {
    chosen = chooseRestorePlan(listing, requestFor(newest));
  } catch {
    return undefined; // not restorable either: the original error stands
  }
  warn(
    `litewarden: WARNING: ${err.message}; restoring the newest intact point instead, ${
      describePointAt(chosen.point)
    }, giving up every change after ${formatTime(chosen.point.time)}, loss accepted`,
  );
  return chosen;
}

/** How often a restore goes on to an older point when the one before turned out damaged too. */
const MAX_FALLBACKS = 8;

/** Progress callbacks for one restore attempt (the caller draws them; replica/ prints nothing). */
export interface AttemptProgress {
  addBytes(n: number): void;
  addObject(): void;
  done(): void;
}

export interface FallbackOptions {
  parallelism: number;
  /** Go on from the newest point that avoids a damaged object (else name it and its flags). */
  acceptLoss: boolean;
  /** The hint names the container gate's switch too. */
  gate: boolean;
  /** Progress for one attempt at `chosen`. */
  progress: (chosen: ChosenPlan) => AttemptProgress;
  warn: (line: string) => void;
}

/**
 * Restores the chosen point into `temp`. When an object of its chain turns out damaged (a missing
 * or corrupt WAL segment, snapshot or LTX file), the error names the newest point whose plan
 * avoids it, with the flags that restore it; with `acceptLoss` that point is restored instead,
 * after one loud line saying what is given up.
 */
export async function restoreAvoidingDamage(
  source: RestoreSource,
  first: ChosenPlan,
  temp: string,
  how: FallbackOptions,
): Promise<RestoreResult> {
  const damaged = new Set<string>();
  let chosen = first;
  for (let attempt = 0;; attempt++) {
    const progress = how.progress(chosen);
    try {
      return await restoreToTemp(source.storage, chosen, temp, {
        parallelism: how.parallelism,
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
      const intact = describePointWithFlags(fallback.point);
      const lost = `${
        formatAge(first.point.time.getTime() - fallback.point.time.getTime())
      } of changes (${formatTime(fallback.point.time)} to ${formatTime(first.point.time)})`;
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
      how.warn(
        `litewarden: WARNING: ${err.message}; restoring the newest point that does not need it instead, ${intact}, giving up ${lost}, loss accepted`,
      );
      chosen = fallback;
    } finally {
      progress.done();
    }
  }
}
