/**
 * When did it change: a binary search over the restore points of one history for the
 * first point at which an answer (a read-only query's) differs from the answer at the first
 * point, like `git bisect` between a good and a bad commit.
 *
 * Work is reused: every point is reached by moving forward from the newest point known to give
 * the old answer (a copy of that restored file, with only the segments in between applied, see
 * `continueV03`), never by restoring from the snapshot again; every object is downloaded once
 * (`CachedStorage`). So a search over n v0.3 points applies about 2n segments and builds
 * 2 + log2(n) points. v0.5 points are each restored from their plan (few files each, through the
 * levels), with the same cache.
 */
import type { Storage } from "../storage/storage.ts";
import type { ReplicaListing } from "./listing.ts";
import { CachedStorage } from "./object_cache.ts";
import { PageFile } from "./page_file.ts";
import { planPoint, restoreToTemp } from "./restore.ts";
import type { ChosenPlan } from "./restore.ts";
import type { RestorePoint, V03Point } from "./restore_point.ts";
import type { V03Plan, V03Segment } from "./v03.ts";
import { applyV03, continueV03 } from "./v03_restore.ts";
import type { V03Position } from "./v03_restore.ts";

export interface ProbedPoint<P> {
  point: P;
  answer: string;
}

export interface ChangeSearchResult<P> {
  /** The last point with the first point's answer. */
  before: ProbedPoint<P>;
  /** The first point after it, whose answer differs; undefined when the last point's does not. */
  after: ProbedPoint<P> | undefined;
  /** Points searched, points whose database was built (and queried). */
  points: number;
  restored: number;
  /** Objects and stored bytes downloaded (each object once). */
  downloads: number;
  bytesDownloaded: number;
}

/** A database built for a point of the search: its file, which point, and how to go on. */
export interface Built {
  path: string;
  /** v0.3: where the restore stands, to move forward from (v0.5 points are built afresh). */
  position?: V03Position;
  last?: { index: number; offset: number };
}

const after = (s: V03Segment, b: { index: number; offset: number } | undefined) =>
  !b || s.index > b.index || (s.index === b.index && s.offset > b.offset);
const within = (s: V03Segment, p: V03Point) =>
  s.index < p.index || (s.index === p.index && (p.offset === undefined || s.offset <= p.offset));

/**
 * Builds databases of restore points into `newPath()` files: `fresh` from the point's plan,
 * `forward` from a database built for an earlier point of the same generation (a copy of it with
 * only the segments in between applied; afresh when no chain of indexes links the two).
 */
export function pointBuilder(
  storage: Storage,
  listing: ReplicaListing,
  newPath: () => string,
  opts: { parallelism: number },
) {
  /** From the snapshot: the plan of `point` (or a plan already chosen). */
  const fresh = async (point: RestorePoint | ChosenPlan): Promise<Built> => {
    const chosen = "plan" in point ? point : planPoint(listing, point);
    const path = newPath();
    if (chosen.format === "v0.5") {
      await restoreToTemp(storage, chosen, path, opts);
      return { path };
    }
    const out = await PageFile.create(path);
    try {
      const applied = await applyV03(storage, chosen.plan, out, opts);
      const seg = chosen.plan.indices.at(-1)?.segments.at(-1);
      return {
        path,
        position: applied.position,
        last: seg && { index: seg.index, offset: seg.offset },
      };
    } finally {
      out.close();
    }
  };

  /** A copy of `base` moved forward to `p`, or built afresh when no chain links them. */
  const forward = async (base: Built, p: RestorePoint): Promise<Built> => {
    if (p.format !== "v0.3" || !base.position) return await fresh(p);
    const generation = listing.v03?.generations.find((g) => g.id === p.generation);
    if (!generation) return await fresh(p);
    const todo = generation.segments.filter((s) => after(s, base.last) && within(s, p));
    const indices: V03Plan["indices"] = [];
    for (const s of todo) {
      const group = indices.at(-1);
      if (group && group.index === s.index) group.segments.push(s);
      else indices.push({ index: s.index, segments: [s] });
    }
    // The index `base` stopped inside is read again from its start (its checksums chain).
    const first = indices[0];
    const last = base.last;
    if (first && last && first.index === last.index) {
      first.segments = [
        ...generation.segments.filter((s) => s.index === first.index && !after(s, last)),
        ...first.segments,
      ];
    }
    // Each index follows the one before; a missing index (only a later snapshot bridges it)
    // means building afresh.
    const from = base.position;
    const linked = indices.every((g, i) =>
      i === 0
        ? g.index === from.index || g.index === from.index + 1
        : g.index === indices[i - 1].index + 1
    );
    if (!linked) return await fresh(p);
    const path = newPath();
    await Deno.copyFile(base.path, path);
    const out = await PageFile.open(path);
    try {
      const applied = await continueV03(storage, indices, out, from, opts);
      const seg = todo.at(-1);
      return {
        path,
        position: applied.position,
        last: seg ? { index: seg.index, offset: seg.offset } : base.last,
      };
    } finally {
      out.close();
    }
  };
  return { fresh, forward };
}

/**
 * Searches `points` (ascending; all of one v0.3 generation, or all v0.5; the first is where the
 * answer is taken as the old one) for the first whose `answer` differs. `answer` reads the
 * database file built for a point (and must not write it). Temp files go to `dir`, which the
 * caller removes.
 */
export async function searchChange<P extends RestorePoint>(
  inner: Storage,
  listing: ReplicaListing,
  points: readonly P[],
  answer: (path: string, point: P) => string,
  dir: string,
  opts: { parallelism: number },
): Promise<ChangeSearchResult<P>> {
  if (points.length === 0) throw new Error("internal: no points to search");
  const objects = `${dir}/objects`;
  await Deno.mkdir(objects, { recursive: true });
  const storage = new CachedStorage(inner, objects);
  let files = 0;
  let restored = 0;
  const built = pointBuilder(storage, listing, () => `${dir}/point-${files++}.sqlite3`, opts);
  const fresh = async (k: number) => ({ ...(await built.fresh(points[k])), at: k });
  const forward = async (base: Built, k: number) => ({
    ...(await built.forward(base, points[k])),
    at: k,
  });
  const probe = (b: Built & { at: number }) => {
    restored++;
    return answer(b.path, points[b.at]);
  };
  const drop = (b: Built) => Deno.remove(b.path).catch(() => {});

  let good = await fresh(0);
  const oldAnswer = probe(good);
  const result = (afterPoint: ProbedPoint<P> | undefined): ChangeSearchResult<P> => ({
    before: { point: points[good.at], answer: oldAnswer },
    after: afterPoint,
    points: points.length,
    restored,
    downloads: storage.downloads,
    bytesDownloaded: storage.bytesDownloaded,
  });
  if (points.length === 1) return result(undefined);
  const end = await forward(good, points.length - 1);
  const endAnswer = probe(end);
  await drop(end);
  if (endAnswer === oldAnswer) {
    // Reported as the search's end: the answer is the same there.
    await drop(good);
    good = { ...good, at: points.length - 1 };
    return result(undefined);
  }
  let bad = { at: points.length - 1, answer: endAnswer };
  while (bad.at - good.at > 1) {
    const mid = good.at + Math.floor((bad.at - good.at) / 2);
    const built = await forward(good, mid);
    const a = probe(built);
    if (a === oldAnswer) {
      await drop(good);
      good = built;
    } else {
      await drop(built);
      bad = { at: mid, answer: a };
    }
  }
  await drop(good);
  return result({ point: points[bad.at], answer: bad.answer });
}
