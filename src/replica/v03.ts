import { formatIndex } from "../formats/v03_layout.ts";
import { parseV03Key } from "../formats/v03_layout.ts";
import type { ObjectInfo } from "../storage/storage.ts";

/** One v0.3 snapshot object (LITESTREAM-FORMATS §2.3). */
export interface V03Snapshot {
  generation: string;
  index: number;
  key: string;
  size: number;
  time: Date;
  compressed: boolean;
}

/** One v0.3 WAL segment object (§2.4); a legacy whole-file WAL is a segment at offset 0. */
export interface V03Segment {
  generation: string;
  index: number;
  offset: number;
  key: string;
  size: number;
  time: Date;
  compressed: boolean;
}

export interface V03Generation {
  id: string;
  /** Ascending index. */
  snapshots: V03Snapshot[];
  /** Ascending (index, offset). */
  segments: V03Segment[];
  /** Minimum / maximum object time over snapshots and segments (§2.5). */
  start: Date;
  end: Date;
  bytes: number;
}

export interface V03Replica {
  /** In listing (key) order, as Litestream iterates them. */
  generations: V03Generation[];
}

/** Groups listed objects into generations; returns undefined when there is no v0.3 object. */
export function buildV03Replica(objects: Iterable<ObjectInfo>): V03Replica | undefined {
  const byId = new Map<string, V03Generation>();
  for (const obj of objects) {
    const k = parseV03Key(obj.key);
    if (!k) continue;
    let g = byId.get(k.generation);
    if (!g) {
      g = {
        id: k.generation,
        snapshots: [],
        segments: [],
        start: obj.modified,
        end: obj.modified,
        bytes: 0,
      };
      byId.set(k.generation, g);
    }
    if (k.kind === "snapshot") {
      g.snapshots.push({ ...k, key: obj.key, size: obj.size, time: obj.modified });
    } else {
      g.segments.push({ ...k, key: obj.key, size: obj.size, time: obj.modified });
    }
    if (obj.modified < g.start) g.start = obj.modified;
    if (obj.modified > g.end) g.end = obj.modified;
    g.bytes += obj.size;
  }
  if (byId.size === 0) return undefined;
  const generations = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const g of generations) {
    g.snapshots.sort((a, b) => a.index - b.index);
    g.segments.sort((a, b) => a.index - b.index || a.offset - b.offset);
    // A legacy replica can hold both `<idx>.wal` and `<idx>.wal.lz4` for the same index; keep one.
    g.segments = g.segments.filter((s, i, all) =>
      i === 0 || all[i - 1].index !== s.index || all[i - 1].offset !== s.offset
    );
  }
  return { generations };
}

/**
 * Restore target within a v0.3 replica (§2.6): latest, through the end of an index (or, with
 * `offset`, through the WAL segment of that index starting at that byte offset), or a time.
 */
export type V03Target =
  | { kind: "latest" }
  | { kind: "index"; index: number; offset?: number }
  | { kind: "timestamp"; time: Date };

export interface V03Plan {
  generation: V03Generation;
  snapshot: V03Snapshot;
  /** Segments to replay in (index, offset) order, grouped per index. */
  indices: { index: number; segments: V03Segment[] }[];
  /** The restore point reached: last index replayed and the time of its newest object. */
  index: number;
  /** Offset of the last segment replayed (undefined when the index has none). */
  offset?: number;
  time: Date;
}

/** Why a plan could not be made; `exitCode`-free so callers choose how to report it. */
export class V03PlanError extends Error {
  constructor(
    readonly reason: "no-generation" | "no-snapshot" | "missing-wal" | "bad-offsets" | "no-segment",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Picks the generation (greatest end time; a timestamp must fall inside [start, end]), the
 * snapshot and the WAL segments, exactly as `litestream restore` v0.3.13 does (§2.6 steps 3–8).
 * Only names and times are used; payload checks happen while applying.
 */
export function planV03(
  replica: V03Replica,
  target: V03Target,
  generationId?: string,
): V03Plan {
  let best: V03Generation | undefined;
  for (const g of replica.generations) {
    if (generationId !== undefined && g.id !== generationId) continue;
    if (target.kind === "timestamp" && (target.time < g.start || target.time > g.end)) continue;
    if (!best || g.end > best.end) best = g;
  }
  if (!best) {
    throw new V03PlanError(
      "no-generation",
      generationId !== undefined
        ? `generation ${generationId} not found`
        : "no generation holds the requested point",
    );
  }
  const g = best;
  let snapshot: V03Snapshot | undefined;
  if (target.kind === "index") {
    for (const s of g.snapshots) if (s.index <= target.index) snapshot = s;
  } else {
    for (const s of g.snapshots) {
      if (target.kind === "timestamp" && s.time > target.time) continue;
      if (!snapshot || s.time > snapshot.time) snapshot = s;
    }
  }
  if (!snapshot) {
    throw new V03PlanError(
      "no-snapshot",
      `generation ${g.id} has no snapshot at or before the requested point`,
    );
  }
  const indices: { index: number; segments: V03Segment[] }[] = [];
  for (const seg of g.segments) {
    if (target.kind === "timestamp" && seg.time > target.time) break;
    if (target.kind === "index" && seg.index > target.index) break;
    if (
      target.kind === "index" && target.offset !== undefined && seg.index === target.index &&
      seg.offset > target.offset
    ) break;
    if (seg.index < snapshot.index) continue;
    const last = indices.at(-1);
    if (last && last.index === seg.index) last.segments.push(seg);
    else indices.push({ index: seg.index, segments: [seg] });
  }
  for (const group of indices) {
    if (group.segments[0].offset !== 0) {
      throw new V03PlanError(
        "missing-wal",
        `missing initial WAL segment ${g.id}/wal/${formatIndex(group.index)}_00000000.wal.lz4`,
      );
    }
  }
  // Every index from the snapshot's to the highest collected must be present (§2.6 step 8).
  for (let i = 0; i < indices.length; i++) {
    const want = snapshot.index + i;
    if (indices[i].index !== want) {
      throw new V03PlanError("missing-wal", `missing WAL index ${g.id}/${formatIndex(want)}`);
    }
  }
  const lastGroup = indices.at(-1);
  if (target.kind === "index" && target.offset !== undefined) {
    const last = lastGroup?.segments.at(-1);
    if (!last || last.index !== target.index || last.offset !== target.offset) {
      throw new V03PlanError(
        "no-segment",
        `generation ${g.id} has no WAL segment ${formatIndex(target.index)}_${
          formatIndex(target.offset)
        } after its snapshot at index ${formatIndex(snapshot.index)}`,
      );
    }
  }
  let time = snapshot.time;
  for (const group of indices) for (const s of group.segments) if (s.time > time) time = s.time;
  return {
    generation: g,
    snapshot,
    indices,
    index: lastGroup ? lastGroup.index : snapshot.index,
    offset: lastGroup?.segments.at(-1)?.offset,
    time,
  };
}
