import { formatIndex } from "../formats/v03_layout.ts";
import type { ReplicaListing } from "./listing.ts";
import type { V03Generation } from "./v03.ts";
import { formatTxid } from "../formats/ltx_header.ts";
import { planV05, V05PlanError } from "./v05.ts";
import { formatInstant, v03Point, v05Point } from "./restore_point.ts";
import type { RestorePoint, V03Point, V05Point } from "./restore_point.ts";

export interface GenerationSummary {
  id: string;
  snapshots: number;
  walSegments: number;
  firstIndex: number;
  lastIndex: number;
  start: Date;
  end: Date;
  bytes: number;
  /** Oldest and newest point this generation restores to; absent when it cannot restore at all. */
  restorable?: { from: V03Point; to: V03Point };
  problems: string[];
}

export interface LevelSummary {
  level: number;
  files: number;
  minTxid: string;
  maxTxid: string;
  start: Date;
  end: Date;
  bytes: number;
}

export interface ReplicaSummary {
  formats: ("v0.3" | "v0.5")[];
  /** The history Litestream v0.5.7+ restores from when both exist (the newer one, §3.8). */
  restoreFrom?: "v0.3" | "v0.5";
  generations: GenerationSummary[];
  /** The generation a plain `litestream restore` picks (greatest end time). */
  currentGeneration?: string;
  levels: LevelSummary[];
  v05Restorable?: { from: V05Point; to: V05Point };
  v05Problems: string[];
  /** Newest point a latest restore reaches, in the format chosen above. */
  newest?: RestorePoint;
  oldest?: RestorePoint;
  /**
   * The earliest `--timestamp` that restores (the oldest point's time, rounded up to the whole
   * second when that still lies inside its history): the printed start of the restorable window,
   * so the printed text itself restores (a time cut to the second would lie before the oldest
   * point and be refused).
   */
  windowStart?: Date;
}

/**
 * "T1 … T2", the restorable window, or "none". Both ends restore when pasted into `--timestamp`:
 * the start is {@link ReplicaSummary.windowStart}, the end the newest point's exact time (cut to
 * the second it could lie before the start, or before the newest point's last object).
 */
export function describeRestorableWindow(s: ReplicaSummary): string {
  return s.windowStart && s.newest
    ? `${formatInstant(s.windowStart)} … ${formatInstant(s.newest.time)}`
    : "none";
}

export function summarize(listing: ReplicaListing): ReplicaSummary {
  const s: ReplicaSummary = { formats: [], generations: [], levels: [], v05Problems: [] };
  if (listing.v03) {
    s.formats.push("v0.3");
    let current: V03Generation | undefined;
    for (const g of listing.v03.generations) {
      s.generations.push(summarizeGeneration(g));
      if (!current || g.end > current.end) current = g;
    }
    s.currentGeneration = current?.id;
  }
  if (listing.v05) {
    s.formats.push("v0.5");
    for (const [level, files] of listing.v05.levels) {
      s.levels.push({
        level,
        files: files.length,
        minTxid: formatTxid(
          files.reduce((m, f) => (f.minTxid < m ? f.minTxid : m), files[0].minTxid),
        ),
        maxTxid: formatTxid(
          files.reduce((m, f) => (f.maxTxid > m ? f.maxTxid : m), files[0].maxTxid),
        ),
        start: new Date(Math.min(...files.map((f) => f.time.getTime()))),
        end: new Date(Math.max(...files.map((f) => f.time.getTime()))),
        bytes: files.reduce((n, f) => n + f.size, 0),
      });
    }
    try {
      const plan = planV05(listing.v05, { kind: "latest" });
      const snapshots = [...listing.v05.levels.values()].flat().filter((f) => f.minTxid === 1n);
      const oldest = snapshots.reduce((a, b) => (b.time < a.time ? b : a), snapshots[0]);
      s.v05Restorable = {
        from: v05Point(oldest.maxTxid, oldest.time),
        to: v05Point(plan.txid, plan.time),
      };
    } catch (err) {
      if (!(err instanceof V05PlanError)) throw err;
      s.v05Problems.push(err.message);
    }
  }
  const v03Newest = s.generations.find((g) => g.id === s.currentGeneration)?.restorable;
  if (v03Newest && s.v05Restorable) {
    s.restoreFrom = v03Newest.to.time > s.v05Restorable.to.time ? "v0.3" : "v0.5";
  } else if (listing.v05 && !listing.v03) s.restoreFrom = "v0.5";
  else if (listing.v03 && !listing.v05) s.restoreFrom = "v0.3";
  else if (v03Newest) s.restoreFrom = "v0.3";
  else if (s.v05Restorable) s.restoreFrom = "v0.5";
  const chosen = s.restoreFrom === "v0.3" ? v03Newest : s.v05Restorable;
  s.newest = chosen?.to;
  const froms: RestorePoint[] = [
    ...s.generations.flatMap((g) => (g.restorable ? [g.restorable.from] : [])),
    ...(s.v05Restorable ? [s.v05Restorable.from] : []),
  ];
  s.oldest = froms.reduce<RestorePoint | undefined>(
    (a, b) => (!a || b.time < a.time ? b : a),
    undefined,
  );
  if (s.oldest) s.windowStart = earliestTimestamp(s, s.oldest);
  return s;
}

/**
 * The earliest time a `--timestamp` restore reaches `oldest` at: v0.3 takes objects at or before
 * T, v0.5 only files strictly before T (LITESTREAM-FORMATS §3.5), so v0.5 needs one millisecond
 * more. Rounded up to the whole second when that stays inside the point's history (a v0.3
 * timestamp must lie inside its generation, a v0.5 one inside the LTX times).
 */
function earliestTimestamp(s: ReplicaSummary, oldest: RestorePoint): Date {
  const exact = oldest.format === "v0.5" ? oldest.time.getTime() + 1 : oldest.time.getTime();
  const end = oldest.format === "v0.5"
    ? Math.max(...s.levels.map((l) => l.end.getTime()))
    : s.generations.find((g) => g.id === oldest.generation)?.end.getTime();
  const rounded = Math.ceil(exact / 1000) * 1000;
  return new Date(end !== undefined && rounded <= end ? rounded : exact);
}

/**
 * Name-level chain check of one generation: from its oldest snapshot, every WAL index must be
 * present and start at offset 0. The newest restorable point is the end of the last index before
 * the first gap (payload checks are `verify`'s job).
 */
function summarizeGeneration(g: V03Generation): GenerationSummary {
  const indexes = [...g.snapshots.map((x) => x.index), ...g.segments.map((x) => x.index)];
  const out: GenerationSummary = {
    id: g.id,
    snapshots: g.snapshots.length,
    walSegments: g.segments.length,
    firstIndex: Math.min(...indexes),
    lastIndex: Math.max(...indexes),
    start: g.start,
    end: g.end,
    bytes: g.bytes,
    problems: [],
  };
  if (g.snapshots.length === 0) {
    out.problems.push("no snapshot: this generation cannot be restored");
    return out;
  }
  const first = g.snapshots.reduce((a, b) => (b.time < a.time ? b : a), g.snapshots[0]);
  const latest = g.snapshots.reduce((a, b) => (b.time > a.time ? b : a), g.snapshots[0]);
  // Problems anywhere from the oldest snapshot on break point-in-time restores in between.
  const gaps = indexGaps(g, first.index);
  out.problems.push(...gaps.map((gap) => gap.message));
  // The latest restore starts at the newest snapshot and replays until the first gap after it.
  const gapAfter = gaps.find((gap) => gap.index >= latest.index);
  const lastGood = gapAfter ? gapAfter.index - 1 : Math.max(latest.index, out.lastIndex);
  let time = latest.time;
  for (const seg of g.segments) {
    if (seg.index >= latest.index && seg.index <= lastGood && seg.time > time) time = seg.time;
  }
  out.restorable = {
    from: v03Point(g.id, first.index, first.time),
    to: v03Point(g.id, Math.max(lastGood, latest.index), time),
  };
  return out;
}

/** WAL indexes from `from` to the highest one that are missing or lack their offset-0 segment. */
function indexGaps(g: V03Generation, from: number): { index: number; message: string }[] {
  const firstOffset = new Map<number, number>();
  for (const seg of g.segments) {
    if (!firstOffset.has(seg.index)) firstOffset.set(seg.index, seg.offset);
  }
  const top = Math.max(from, ...firstOffset.keys());
  const gaps: { index: number; message: string }[] = [];
  for (let i = from; i <= top; i++) {
    const off = firstOffset.get(i);
    if (off === undefined) {
      // The snapshot's own index may have no WAL yet when nothing was written after it.
      if (i === top) continue;
      gaps.push({
        index: i,
        message: `WAL index ${formatIndex(i)} is missing from generation ${g.id}`,
      });
    } else if (off !== 0) {
      gaps.push({
        index: i,
        message: `WAL index ${
          formatIndex(i)
        } of generation ${g.id} has no initial segment (offset 0)`,
      });
    }
  }
  return gaps;
}
