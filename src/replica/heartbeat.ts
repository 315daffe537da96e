import { lz4FrameDecoderStream } from "../formats/lz4.ts";
import { walFrameOffset, WalReader } from "../formats/sqlite_wal.ts";
import { StreamReader } from "../formats/stream_reader.ts";
import { readAll } from "../storage/storage.ts";
import type { Storage } from "../storage/storage.ts";
import type { ReplicaListing } from "./listing.ts";
import { MARKER_PREFIX } from "./marker.ts";

/**
 * The companion's heartbeat: one small object under the replica prefix, rewritten every interval
 * by the process that runs beside Litestream. It tells `verify` two things a replica alone cannot:
 * that the host is alive (the heartbeat's age), and where the live database is, named as
 * Litestream v0.3 names replica positions (generation, WAL index, byte offset), so a replica that
 * holds that position is current however old its newest object is (a quiet vault). Never any
 * database content. Litestream and every listing ignore it (it is under `.litewarden/`).
 */
export const HEARTBEAT_KEY = `${MARKER_PREFIX}heartbeat.json`;

/** A v0.3 position: the end of the last committed transaction of the live WAL. */
export interface LivePosition {
  generation: string;
  index: number;
  offset: number;
}

/** A position and when the companion first saw the live database there. */
export interface SeenPosition extends LivePosition {
  since: string;
}

export interface Heartbeat {
  /** When it was written (RFC 3339). */
  time: string;
  /** The companion's interval in seconds: a heartbeat older than a few of them is dead. */
  intervalSeconds: number;
  /** The live position now, or null when it could not be read (no shadow dir yet, v0.5). */
  position: LivePosition | null;
  /**
   * The last distinct live positions, newest first, with when each was first seen: the oldest
   * one the replica does not hold tells how long the replica has been behind.
   */
  recent: SeenPosition[];
  /** True on the last heartbeat before the companion exited (its parent exited or SIGTERM). */
  final: boolean;
  /** Why the position is null, for the verify message. */
  positionProblem?: string;
}

/** How many distinct positions a heartbeat remembers (at one a minute: an hour). */
export const RECENT_POSITIONS = 64;

export function encodeHeartbeat(h: Heartbeat): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(h, null, 2) + "\n");
}

/** The heartbeat, or undefined when there is none. A heartbeat that does not parse is damage. */
export async function readHeartbeat(storage: Storage): Promise<Heartbeat | undefined> {
  // The exact key as the prefix: a listing of all of .litewarden/ would walk the vault files.
  for await (const obj of storage.list(HEARTBEAT_KEY)) {
    if (obj.key !== HEARTBEAT_KEY) continue;
    const text = new TextDecoder().decode(await readAll(await storage.get(HEARTBEAT_KEY)));
    try {
      const p = JSON.parse(text) as Partial<Heartbeat>;
      const time = new Date(String(p.time));
      if (Number.isNaN(time.getTime()) || !(Number(p.intervalSeconds) > 0)) throw new Error();
      return {
        time: time.toISOString(),
        intervalSeconds: Number(p.intervalSeconds),
        position: isPosition(p.position) ? p.position : null,
        recent: Array.isArray(p.recent) ? p.recent.filter(isSeenPosition) : [],
        final: p.final === true,
        ...(typeof p.positionProblem === "string" && { positionProblem: p.positionProblem }),
      };
    } catch {
      // Treated as no heartbeat: one that cannot be read proves nothing about the replicator.
      return undefined;
    }
  }
  return undefined;
}

function isPosition(p: unknown): p is LivePosition {
  const o = p as LivePosition | null;
  return typeof o === "object" && o !== null && typeof o.generation === "string" &&
    Number.isSafeInteger(o.index) && Number.isSafeInteger(o.offset);
}

function isSeenPosition(p: unknown): p is SeenPosition {
  return isPosition(p) && !Number.isNaN(new Date(String((p as SeenPosition).since)).getTime());
}

/** Litestream v0.3's meta directory of a database: `<dir>/.<file>-litestream`. */
export function defaultMetaPath(dbPath: string): string {
  const slash = dbPath.lastIndexOf("/");
  const dir = slash >= 0 ? dbPath.slice(0, slash) || "/" : ".";
  const base = dbPath.slice(slash + 1);
  return `${dir === "/" ? "" : dir}/.${base}-litestream`;
}

/**
 * Where the live database is, as Litestream v0.3 would name it: the generation from its meta
 * directory, the highest shadow WAL index, and the end of the last committed frame of the real
 * WAL when that WAL still carries the shadow index's salts (else the frames belong to the next
 * index, which Litestream has not opened yet). Reads headers and checksums only; throws a plain
 * Error saying what is missing when the position cannot be known.
 */
export async function readLivePosition(dbPath: string, metaPath: string): Promise<LivePosition> {
  const generation = (await readText(`${metaPath}/generation`))?.trim();
  if (!generation || !/^[0-9a-f]{16}$/.test(generation)) {
    throw new Error(`no Litestream generation in ${metaPath} (is Litestream replicating it?)`);
  }
  const walDir = `${metaPath}/generations/${generation}/wal`;
  let index = -1;
  let shadowSize = 0;
  try {
    for await (const e of Deno.readDir(walDir)) {
      const m = /^([0-9a-f]{8})\.wal$/.exec(e.name);
      if (!m || !e.isFile) continue;
      const i = parseInt(m[1], 16);
      if (i > index) index = i;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (index < 0) throw new Error(`no shadow WAL in ${walDir} yet`);
  const shadowPath = `${walDir}/${index.toString(16).padStart(8, "0")}.wal`;
  const shadow = await walEnd(shadowPath);
  shadowSize = shadow?.end ?? 0;
  const live = await walEnd(`${dbPath}-wal`);
  if (!live || !shadow) return { generation, index, offset: shadowSize };
  if (live.salt1 === shadow.salt1 && live.salt2 === shadow.salt2) {
    return { generation, index, offset: Math.max(shadowSize, live.end) };
  }
  // The WAL restarted since Litestream's last look: its committed frames start the next index.
  return live.end > 32 ? { generation, index: index + 1, offset: live.end } : {
    generation,
    index,
    offset: shadowSize,
  };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** The end of the last committed frame of a WAL file and its salts; undefined when empty/absent. */
async function walEnd(
  path: string,
): Promise<{ end: number; salt1: number; salt2: number } | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  const reader = new StreamReader(file.readable);
  try {
    const wal = await WalReader.open(reader);
    while (await wal.next()) {
      // Counting frames only: the page bytes are never kept.
    }
    return {
      end: walFrameOffset(wal.committedFrames, wal.header.pageSize),
      salt1: wal.header.salt1,
      salt2: wal.header.salt2,
    };
  } catch {
    return undefined; // an empty or half-written header: nothing committed to name
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Whether the replica holds `p`: a later index of its generation exists, or the segments of its
 * index reach its offset (the last segment is decoded to learn its length; a few KiB usually).
 */
export async function replicaHolds(
  storage: Storage,
  listing: ReplicaListing,
  p: LivePosition,
): Promise<boolean> {
  const gen = listing.v03?.generations.find((g) => g.id === p.generation);
  if (!gen) return false;
  const segs = gen.segments.filter((s) => s.index >= p.index);
  if (segs.some((s) => s.index > p.index)) return true;
  if (gen.snapshots.some((s) => s.index > p.index)) return true;
  const last = segs.at(-1);
  if (!last) return p.offset <= 32 && gen.snapshots.some((s) => s.index === p.index);
  if (last.offset >= p.offset) return true;
  let stream = await storage.get(last.key);
  if (last.compressed) stream = stream.pipeThrough(lz4FrameDecoderStream());
  let length = 0;
  for await (const chunk of stream) length += chunk.length;
  return last.offset + length >= p.offset;
}

/** Replication lag judged from a heartbeat: 0 when the replica holds the live position. */
export interface Lag {
  /** The live position the heartbeat names (null: unknown). */
  position: LivePosition | null;
  /** True when the replica holds it. */
  holds: boolean;
  /** Lower bound of how long the replica has been behind, from the heartbeat's recent positions. */
  lagMs: number;
  /** The oldest recent position the replica lacks. */
  behind?: SeenPosition;
}

export async function replicationLag(
  storage: Storage,
  listing: ReplicaListing,
  hb: Heartbeat,
  now: Date,
): Promise<Lag> {
  if (!hb.position) return { position: null, holds: false, lagMs: 0 };
  if (await replicaHolds(storage, listing, hb.position)) {
    return { position: hb.position, holds: true, lagMs: 0 };
  }
  // Newest first; stop at the first one the replica holds (everything older is held too).
  let behind: SeenPosition | undefined;
  for (const seen of hb.recent.filter((r) => r.generation === hb.position!.generation)) {
    if (await replicaHolds(storage, listing, seen)) break;
    behind = seen;
  }
  const since = behind ? new Date(behind.since).getTime() : new Date(hb.time).getTime();
  return { position: hb.position, holds: false, lagMs: Math.max(0, now.getTime() - since), behind };
}
