/**
 * When did it change: a binary search over the restore points of one v0.3 generation for the
 * first point at which an answer (a read-only query's) differs from the answer at the first
 * point, like `git bisect` between a good and a bad commit.
 *
 * Work is reused: every point is reached by moving forward from the newest point known to give
 * the old answer (a copy of that restored file, with only the segments in between applied, see
 * `continueV03`), never by restoring from the snapshot again; every object is downloaded once
 * (`CachedStorage`). So a search over n points applies about 2n segments and restores
 * 2 + log2(n) points, whatever n is.
 */
import type { Storage } from "../storage/storage.ts";
import { CachedStorage } from "./object_cache.ts";
import { PageFile } from "./page_file.ts";
import { planV03 } from "./v03.ts";
import type { V03Generation, V03Plan, V03Segment } from "./v03.ts";
import { applyV03, continueV03 } from "./v03_restore.ts";
import type { V03Position } from "./v03_restore.ts";

/** A v0.3 point of the generation: through the segment at `offset` of `index`, or all of it. */
export interface SegmentBoundary {
  index: number;
  offset?: number;
}

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

interface Built {
  path: string;
  at: number;
  position: V03Position;
  /** The last segment applied, in (index, offset) order; none: only the snapshot. */
  last: { index: number; offset: number } | undefined;
}

const after = (s: V03Segment, b: { index: number; offset: number } | undefined) =>
  !b || s.index > b.index || (s.index === b.index && s.offset > b.offset);
const within = (s: V03Segment, p: SegmentBoundary) =>
  s.index < p.index || (s.index === p.index && (p.offset === undefined || s.offset <= p.offset));

/**
 * Searches `points` (ascending, all of `generation`; the first is where the answer is taken as
 * the old one) for the first whose `answer` differs. `answer` reads the database file built for
 * a point (and must not write it). Temp files go to `dir`, which the caller removes.
 */
export async function searchV03Change<P extends SegmentBoundary>(
  inner: Storage,
  generation: V03Generation,
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
  const newPath = () => `${dir}/point-${files++}.sqlite3`;

  /** From the snapshot: the plan through `points[k]`. */
  const fresh = async (k: number): Promise<Built> => {
    const p = points[k];
    const plan = planV03(
      { generations: [generation] },
      { kind: "index", index: p.index },
      generation.id,
    );
    const trimmed: V03Plan = {
      ...plan,
      indices: plan.indices
        .map((g) => ({ index: g.index, segments: g.segments.filter((s) => within(s, p)) }))
        .filter((g) => g.segments.length > 0),
    };
    const path = newPath();
    const out = await PageFile.create(path);
    try {
      const applied = await applyV03(storage, trimmed, out, opts);
      const seg = trimmed.indices.at(-1)?.segments.at(-1);
      return {
        path,
        at: k,
        position: applied.position,
        last: seg && { index: seg.index, offset: seg.offset },
      };
    } finally {
      out.close();
    }
  };

  /** A copy of `base` moved forward to `points[k]`, or built afresh when no chain links them. */
  const forward = async (base: Built, k: number): Promise<Built> => {
    const p = points[k];
    const todo = generation.segments.filter((s) => after(s, base.last) && within(s, p));
    const indices: V03Plan["indices"] = [];
    for (const s of todo) {
      const group = indices.at(-1);
      if (group && group.index === s.index) group.segments.push(s);
      else indices.push({ index: s.index, segments: [s] });
    }
    // The index `base` stopped inside is read again from its start (its checksums chain).
    const first = indices[0];
    if (first && base.last && first.index === base.last.index) {
      first.segments = [
        ...generation.segments.filter((s) => s.index === first.index && !after(s, base.last)),
        ...first.segments,
      ];
    }
    // Each index follows the one before; a missing index (only a later snapshot bridges it)
    // means building afresh.
    const linked = indices.every((g, i) =>
      i === 0
        ? g.index === base.position.index || g.index === base.position.index + 1
        : g.index === indices[i - 1].index + 1
    );
    if (!linked) return await fresh(k);
    const path = newPath();
    await Deno.copyFile(base.path, path);
    const out = await PageFile.open(path);
    try {
      const applied = await continueV03(storage, indices, out, base.position, opts);
      const seg = todo.at(-1);
      return {
        path,
        at: k,
        position: applied.position,
        last: seg ? { index: seg.index, offset: seg.offset } : base.last,
      };
    } finally {
      out.close();
    }
  };

  const probe = (b: Built) => {
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
