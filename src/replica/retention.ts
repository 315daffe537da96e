import type { ObjectInfo } from "../storage/storage.ts";
import type { ReplicaListing } from "./listing.ts";
import type { RestorePoint } from "./summary.ts";
import { formatTxid } from "../formats/ltx_header.ts";

/** restic-style keep rules; a point is kept when any rule keeps it. */
export interface KeepRules {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  /** Milliseconds, counted back from the newest point (not from now). */
  withinMs?: number;
}

/** A restore point prune can keep or drop: a v0.3 snapshot or a v0.5 level-9 snapshot. */
export interface RetentionPoint {
  point: RestorePoint;
  key: string;
  kept: boolean;
  /** Why it is kept: rule names such as `last`, `daily`, `within`, `newest`, `current-chain`. */
  reasons: string[];
}

export interface PrunePlan {
  points: RetentionPoint[];
  /** Objects to delete, oldest first. */
  deletions: ObjectInfo[];
  /** Objects kept only because they are younger than --min-age. */
  protectedYoung: number;
  bytesFreed: number;
}

/** Assigns keep reasons to points (`points` newest first), exactly like restic's `forget`. */
export function applyKeepRules(points: RetentionPoint[], rules: KeepRules): void {
  if (points.length === 0) return;
  const newest = points[0].point.time.getTime();
  points[0].reasons.push("newest");
  if (rules.last) {
    for (const p of points.slice(0, rules.last)) p.reasons.push("last");
  }
  const buckets: [keyof KeepRules, (d: Date) => string][] = [
    ["hourly", (d) => d.toISOString().slice(0, 13)],
    ["daily", (d) => d.toISOString().slice(0, 10)],
    ["weekly", isoWeek],
    ["monthly", (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [rule, bucketOf] of buckets) {
    const n = rules[rule];
    if (!n) continue;
    const seen = new Set<string>();
    for (const p of points) {
      if (seen.size >= n) break;
      const b = bucketOf(p.point.time);
      if (seen.has(b)) continue;
      seen.add(b); // The newest point of each bucket stands for it.
      p.reasons.push(rule);
    }
  }
  if (rules.withinMs !== undefined) {
    for (const p of points) {
      if (p.point.time.getTime() >= newest - rules.withinMs) p.reasons.push("within");
    }
  }
  for (const p of points) p.kept = p.reasons.length > 0;
}

/** ISO 8601 week (`2026-W47`), so weeks start on Monday as restic counts them. */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

/**
 * Plans a prune of one replica. What is never deleted: the newest restorable chain (the current
 * generation's newest snapshot and everything after it; the newest v0.5 snapshot and every file
 * above it), anything a kept point needs (for v0.3 its snapshot and every WAL segment of its
 * generation from its index on; for v0.5 its snapshot and every file above it), the last file of
 * each v0.5 level (Litestream's compactor relies on it), and objects younger than `minAgeMs`.
 * The v0.3 tree is only planned away as a whole with `dropV03Tree`.
 */
export function planPrune(
  listing: ReplicaListing,
  rules: KeepRules,
  opts: { minAgeMs: number; now: Date; dropV03Tree?: boolean; keepAllV05?: boolean },
): PrunePlan {
  const points: RetentionPoint[] = [];
  const candidates: ObjectInfo[] = [];
  const youngLimit = opts.now.getTime() - opts.minAgeMs;

  if (listing.v03 && opts.dropV03Tree) {
    for (const g of listing.v03.generations) {
      for (const o of [...g.snapshots, ...g.segments]) {
        candidates.push(toInfo(o.key, o.size, o.time));
      }
    }
  } else if (listing.v03) {
    const gens = listing.v03.generations;
    const current = gens.reduce((a, b) => (b.end > a.end ? b : a), gens[0]);
    const v03Points: RetentionPoint[] = gens.flatMap((g) =>
      g.snapshots.map((s) => ({
        point: { format: "v0.3" as const, generation: g.id, index: s.index, time: s.time },
        key: s.key,
        kept: false,
        reasons: [],
      }))
    );
    v03Points.sort((a, b) => b.point.time.getTime() - a.point.time.getTime());
    applyKeepRules(v03Points, rules);
    // The current generation's newest snapshot starts the newest restorable chain.
    const currentSnaps = v03Points.filter((p) => p.point.generation === current.id);
    if (currentSnaps.length > 0 && !currentSnaps[0].reasons.includes("newest")) {
      currentSnaps[0].reasons.push("current-chain");
      currentSnaps[0].kept = true;
    }
    points.push(...v03Points);
    for (const g of gens) {
      const kept = v03Points.filter((p) => p.kept && p.point.generation === g.id);
      if (kept.length === 0) {
        // Nothing kept here: the whole generation goes, unless it is the current one (whose
        // WAL may still be written to before its first snapshot is listed).
        if (g.id === current.id) continue;
        for (const o of [...g.snapshots, ...g.segments]) {
          candidates.push(toInfo(o.key, o.size, o.time));
        }
        continue;
      }
      const minIndex = Math.min(...kept.map((p) => p.point.index!));
      const keptKeys = new Set(kept.map((p) => p.key));
      for (const s of g.snapshots) {
        if (!keptKeys.has(s.key)) candidates.push(toInfo(s.key, s.size, s.time));
      }
      for (const s of g.segments) {
        if (s.index < minIndex) candidates.push(toInfo(s.key, s.size, s.time));
      }
    }
  }

  if (listing.v05 && !opts.keepAllV05) {
    const snaps = listing.v05.levels.get(9) ?? [];
    const v05Points: RetentionPoint[] = snaps.map((f) => ({
      point: { format: "v0.5" as const, txid: formatTxid(f.maxTxid), time: f.time },
      key: f.key,
      kept: false,
      reasons: [],
    }));
    v05Points.sort((a, b) => b.point.time.getTime() - a.point.time.getTime());
    applyKeepRules(v05Points, rules);
    points.push(...v05Points);
    const kept = snaps.filter((f) => v05Points.find((p) => p.key === f.key)!.kept);
    if (kept.length > 0) {
      const oldestKept = kept.reduce((a, b) => (b.maxTxid < a.maxTxid ? b : a));
      for (const [level, files] of listing.v05.levels) {
        const last = files[files.length - 1];
        // Litestream compacts level n into n+1 from the level-n files above n+1's highest TXID:
        // deleting one not compacted yet would leave a gap that breaks every later compaction.
        const next = level < 8 ? listing.v05.levels.get(level + 1) : undefined;
        const compacted = next?.reduce((m, f) => (f.maxTxid > m ? f.maxTxid : m), 0n);
        for (const f of files) {
          if (f === last) continue;
          // Below level 9: covered by every kept snapshot, and already in the next level.
          const drop = level === 9
            ? !kept.includes(f)
            : f.maxTxid <= oldestKept.maxTxid && f.maxTxid <= (compacted ?? f.maxTxid);
          if (drop) candidates.push(toInfo(f.key, f.size, f.modified));
        }
      }
    }
  }

  const deletions: ObjectInfo[] = [];
  let protectedYoung = 0;
  for (const c of candidates) {
    if (c.modified.getTime() > youngLimit) protectedYoung++;
    else deletions.push(c);
  }
  deletions.sort((a, b) => a.modified.getTime() - b.modified.getTime() || (a.key < b.key ? -1 : 1));
  return {
    points,
    deletions,
    protectedYoung,
    bytesFreed: deletions.reduce((n, d) => n + d.size, 0),
  };
}

function toInfo(key: string, size: number, modified: Date): ObjectInfo {
  return { key, size, modified };
}
