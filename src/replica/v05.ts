import { formatTxid } from "../formats/ltx_header.ts";
import { parseV05Key, SNAPSHOT_LEVEL } from "../formats/v05_layout.ts";
import type { LtxKeyScheme } from "../formats/v05_layout.ts";
import type { ObjectInfo } from "../storage/storage.ts";

/** One LTX object in a v0.5 replica. `time` is the header timestamp once read, else the object time. */
export interface LtxFile {
  level: number;
  minTxid: bigint;
  maxTxid: bigint;
  key: string;
  size: number;
  modified: Date;
  time: Date;
}

export interface V05Replica {
  scheme: LtxKeyScheme;
  /** Files per level (0…9), each sorted by (minTxid, maxTxid). Empty levels are absent. */
  levels: Map<number, LtxFile[]>;
}

/** Groups listed LTX objects by level; undefined when there is none. */
export function buildV05Replica(objects: Iterable<ObjectInfo>): V05Replica | undefined {
  const levels = new Map<number, LtxFile[]>();
  let scheme: LtxKeyScheme | undefined;
  for (const obj of objects) {
    const k = parseV05Key(obj.key);
    if (!k) continue;
    scheme ??= k.scheme;
    const list = levels.get(k.level) ?? [];
    list.push({
      level: k.level,
      minTxid: k.minTxid,
      maxTxid: k.maxTxid,
      key: obj.key,
      size: obj.size,
      modified: obj.modified,
      time: obj.modified,
    });
    levels.set(k.level, list);
  }
  if (!scheme) return undefined;
  for (const list of levels.values()) {
    list.sort((a, b) => cmp(a.minTxid, b.minTxid) || cmp(a.maxTxid, b.maxTxid));
  }
  return { scheme, levels: new Map([...levels.entries()].sort((a, b) => a[0] - b[0])) };
}

export function allLtxFiles(r: V05Replica): LtxFile[] {
  return [...r.levels.values()].flat();
}

/** Restore target within a v0.5 replica (§3.5). */
export type V05Target =
  | { kind: "latest" }
  | { kind: "txid"; txid: bigint }
  | { kind: "timestamp"; time: Date };

export interface V05Plan {
  /** Files to apply in order; the first one starts at TXID 1. */
  files: LtxFile[];
  txid: bigint;
  time: Date;
}

export class V05PlanError extends Error {
  constructor(readonly reason: "empty" | "gap" | "no-snapshot" | "not-reached", message: string) {
    super(message);
  }
}

/**
 * Litestream v0.5.16's CalcRestorePlan (§3.5): the newest usable snapshot, then greedily the
 * file that extends the chain furthest, across levels 8…0. Times are header timestamps
 * (callers fill `time` from the headers before planning a timestamp restore).
 */
export function planV05(r: V05Replica, target: V05Target): V05Plan {
  const limit = target.kind === "txid" ? target.txid : undefined;
  const before = target.kind === "timestamp" ? target.time : undefined;
  const usable = (f: LtxFile) =>
    (limit === undefined || f.maxTxid <= limit) && (before === undefined || f.time < before);

  const files: LtxFile[] = [];
  let snapshot: LtxFile | undefined;
  for (const f of r.levels.get(SNAPSHOT_LEVEL) ?? []) if (usable(f)) snapshot = f;
  let cur = 0n;
  if (snapshot) {
    files.push(snapshot);
    cur = snapshot.maxTxid;
  }
  while (limit === undefined || cur < limit) {
    let best: LtxFile | undefined;
    for (let level = SNAPSHOT_LEVEL - 1; level >= 0; level--) {
      for (const f of r.levels.get(level) ?? []) {
        if (f.minTxid > cur + 1n || f.maxTxid <= cur || !usable(f)) continue;
        if (!best || better(f, best)) best = f;
      }
    }
    if (!best) break;
    files.push(best);
    cur = best.maxTxid;
  }
  if (files.length === 0) {
    const usableFiles = [...r.levels.values()].flat().filter(usable);
    if (usableFiles.length === 0) {
      throw new V05PlanError("empty", "no LTX file is usable for the requested point");
    }
    const first = usableFiles.reduce((a, b) => (b.minTxid < a.minTxid ? b : a));
    throw new V05PlanError(
      "no-snapshot",
      `no snapshot (a file starting at TXID 1) is usable; the oldest file, ${first.key}, starts at TXID ${
        formatTxid(first.minTxid)
      }`,
    );
  }
  if (files[0].minTxid !== 1n) {
    throw new V05PlanError(
      "no-snapshot",
      `the chain starts at TXID ${formatTxid(files[0].minTxid)} (${
        files[0].key
      }), but a restore needs a snapshot starting at TXID 1`,
    );
  }
  if (limit !== undefined && cur < limit) {
    throw new V05PlanError(
      "not-reached",
      `TXID ${formatTxid(limit)} cannot be reached: the chain ends at ${formatTxid(cur)}`,
    );
  }
  if (target.kind === "latest") {
    for (const list of r.levels.values()) {
      for (const f of list) {
        if (f.minTxid > cur + 1n) {
          throw new V05PlanError(
            "gap",
            `non-contiguous LTX files: have up to TXID ${formatTxid(cur)} but ${f.key} starts at ${
              formatTxid(f.minTxid)
            }`,
          );
        }
      }
    }
  }
  const last = files[files.length - 1];
  return { files, txid: cur, time: last.time };
}

/** Largest MaxTXID; then smallest MinTXID; then higher level; then earlier time. */
function better(a: LtxFile, b: LtxFile): boolean {
  if (a.maxTxid !== b.maxTxid) return a.maxTxid > b.maxTxid;
  if (a.minTxid !== b.minTxid) return a.minTxid < b.minTxid;
  if (a.level !== b.level) return a.level > b.level;
  return a.time < b.time;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
