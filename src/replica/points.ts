import { SNAPSHOT_LEVEL } from "../formats/v05_layout.ts";
import type { ReplicaListing } from "./listing.ts";
import { v03Point, v05Point } from "./restore_point.ts";
import type { RestorePoint, V03Point, V05Point } from "./restore_point.ts";
import type { V03Generation } from "./v03.ts";
import type { LtxFile, V05Replica } from "./v05.ts";

/**
 * Every restore point of one v0.3 generation, oldest first: the state after each WAL segment
 * (generation, index, offset) that a snapshot at or below its index reaches with no index
 * missing in between, each with the time of the newest object it includes, as `planV03` would
 * restore it. A snapshot whose index holds no segment yet is a point of its own (the end of
 * that index). Names only: a damaged payload is found when the point is restored.
 */
export function v03RestorePoints(g: V03Generation): V03Point[] {
  const points: V03Point[] = [];
  for (const snap of g.snapshots) {
    if (!g.segments.some((s) => s.index === snap.index)) {
      points.push(v03Point(g.id, snap.index, snap.time));
    }
  }
  let snapIdx = 0;
  let chain: { snapshot: number; time: number; next: number } | undefined;
  for (let i = 0; i < g.segments.length; i++) {
    const seg = g.segments[i];
    // planV03 starts an index target from the newest snapshot at or below the index.
    while (snapIdx < g.snapshots.length && g.snapshots[snapIdx].index <= seg.index) {
      const snap = g.snapshots[snapIdx++];
      chain = { snapshot: snap.index, time: snap.time.getTime(), next: snap.index };
    }
    if (!chain || seg.index < chain.snapshot) continue;
    if (seg.index !== chain.next && seg.index !== chain.next - 1) {
      chain = undefined; // an index is missing: nothing above it restores from this snapshot
      continue;
    }
    const first = seg.index === chain.next;
    if (first && seg.offset !== 0) {
      chain = undefined; // an index without its initial segment
      continue;
    }
    if (first) chain.next = seg.index + 1;
    chain.time = Math.max(chain.time, seg.time.getTime());
    points.push(v03Point(g.id, seg.index, new Date(chain.time), seg.offset));
  }
  return points.sort((a, b) => a.index - b.index || (a.offset ?? -1) - (b.offset ?? -1));
}

/**
 * Every TXID of a v0.5 replica a restore reaches exactly, in TXID order, each with the time
 * `planV05` gives it (the header timestamp of the file that ends at it). A TXID is reachable when
 * a snapshot ends at or below it and a chain of files links the snapshot to a file ending at it.
 */
export function v05RestorePoints(r: V05Replica): V05Point[] {
  const files = [...r.levels.values()].flat().sort((a, b) =>
    a.maxTxid < b.maxTxid ? -1 : a.maxTxid > b.maxTxid ? 1 : 0
  );
  const reached: bigint[] = []; // ascending
  const points: V05Point[] = [];
  const reaches = (from: bigint, to: bigint) => reached.some((t) => t >= from - 1n && t <= to - 1n);
  for (let i = 0; i < files.length;) {
    const txid = files[i].maxTxid;
    let j = i;
    while (j < files.length && files[j].maxTxid === txid) j++;
    const ending = files.slice(i, j);
    i = j;
    const snapshot = ending.some((f) => f.level === SNAPSHOT_LEVEL && f.minTxid === 1n);
    const linked = ending.filter((f) => f.minTxid === 1n || reaches(f.minTxid, f.maxTxid));
    if (!snapshot && linked.length === 0) continue;
    reached.push(txid);
    points.push(v05Point(txid, lastFileTime(snapshot ? ending : linked)));
  }
  return points;
}

/**
 * The file planV05 ends a TXID target with among those ending there: smallest MinTXID, then
 * higher level, then earlier time (its tie-break order).
 */
function lastFileTime(ending: LtxFile[]): Date {
  const best = ending.reduce((a, b) => {
    if (a.minTxid !== b.minTxid) return b.minTxid < a.minTxid ? b : a;
    if (a.level !== b.level) return b.level > a.level ? b : a;
    return b.time < a.time ? b : a;
  });
  return best.time;
}

/**
 * Every restore point of a replica, oldest first per history: v0.3 per generation (in listing
 * order, or only `generation`), then v0.5 by TXID. What `snapshot-diff --when` searches.
 */
export function restorePointsOf(
  listing: ReplicaListing,
  scope: { generation?: string; format?: "v0.3" | "v0.5" } = {},
): RestorePoint[] {
  const points: RestorePoint[] = [];
  if (scope.format !== "v0.5") {
    for (const g of listing.v03?.generations ?? []) {
      if (scope.generation === undefined || g.id === scope.generation) {
        points.push(...v03RestorePoints(g));
      }
    }
  }
  if (scope.format !== "v0.3" && scope.generation === undefined && listing.v05) {
    points.push(...v05RestorePoints(listing.v05));
  }
  return points;
}
