import {
  LTX_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  parseLtxHeader,
  parseLtxTrailer,
  validateLtxHeader,
  validateLtxTrailer,
} from "../formats/ltx_header.ts";
import type { LtxHeader } from "../formats/ltx_header.ts";
import { FormatError } from "../formats/format_error.ts";
import { DamagedError, LitewardenError, NoBackupError } from "../errors.ts";
import { parseV03Key } from "../formats/v03_layout.ts";
import { parseV05Key } from "../formats/v05_layout.ts";
import { readAll } from "../storage/storage.ts";
import type { ObjectInfo, Storage } from "../storage/storage.ts";
import { MARKER_PREFIX } from "./marker.ts";
import { mapLimit } from "./pool.ts";
import { buildV03Replica } from "./v03.ts";
import type { V03Replica } from "./v03.ts";
import { allLtxFiles, buildV05Replica } from "./v05.ts";
import type { LtxFile, V05Replica } from "./v05.ts";

/** Everything one listing of a replica root tells, without downloading payloads. */
export interface ReplicaListing {
  location: string;
  v03?: V03Replica;
  v05?: V05Replica;
  /** LTX header and trailer per key (read with two ranged GETs per file). */
  ltxMeta: Map<string, LtxMeta>;
  /** Objects whose names fit neither format (e.g. `*.tmp`, unrelated files). */
  ignored: string[];
  objectCount: number;
  /**
   * LTX files whose header or trailer is damaged. They are left out of the v0.5 model, so plans
   * route around them where the levels allow (compactions hold the same pages); `verify` fails on
   * them and `restore` names them.
   */
  damaged: { key: string; message: string }[];
}

export interface LtxMeta {
  header: LtxHeader;
  postApplyChecksum: bigint;
  fileChecksum: bigint;
}

export interface ListOptions {
  /** Read every LTX header + trailer (needed for times and checksums). Default true. */
  readLtxHeaders?: boolean;
  parallelism?: number;
}

/** Lists the replica root once and builds both format models. */
export async function listReplica(
  storage: Storage,
  opts: ListOptions = {},
): Promise<ReplicaListing> {
  const objects: ObjectInfo[] = [];
  const ignored: string[] = [];
  for await (const obj of storage.list("")) {
    if (obj.key.startsWith(MARKER_PREFIX)) continue; // litewarden's own marker, not replica data
    if (parseV03Key(obj.key) || parseV05Key(obj.key)) objects.push(obj);
    else ignored.push(obj.key);
  }
  const listing: ReplicaListing = {
    location: storage.location,
    v03: buildV03Replica(objects),
    v05: buildV05Replica(objects),
    ltxMeta: new Map(),
    ignored,
    objectCount: objects.length + ignored.length,
    damaged: [],
  };
  if (listing.v05 && opts.readLtxHeaders !== false) {
    await readLtxMeta(storage, listing, opts.parallelism ?? 8);
  }
  return listing;
}

/**
 * Fetches header and trailer of every LTX file and sets each file's time from its header. A file
 * whose header or trailer is damaged is recorded and dropped from the model; storage errors
 * (unreachable, access denied) still end the listing.
 */
async function readLtxMeta(
  storage: Storage,
  listing: ReplicaListing,
  parallelism: number,
): Promise<void> {
  const replica = listing.v05!;
  const bad = new Set<string>();
  await mapLimit(allLtxFiles(replica), parallelism, async (f: LtxFile) => {
    try {
      const meta = await readOneLtxMeta(storage, f);
      listing.ltxMeta.set(f.key, meta);
      f.time = new Date(meta.header.timestamp);
    } catch (err) {
      if (!(err instanceof DamagedError)) throw err;
      bad.add(f.key);
      listing.damaged.push({ key: f.key, message: err.message });
    }
  });
  if (bad.size === 0) return;
  listing.damaged.sort((a, b) => (a.key < b.key ? -1 : 1));
  for (const [level, files] of replica.levels) {
    const kept = files.filter((f) => !bad.has(f.key));
    if (kept.length > 0) replica.levels.set(level, kept);
    else replica.levels.delete(level);
  }
  if (replica.levels.size === 0) listing.v05 = undefined;
}

export async function readOneLtxMeta(storage: Storage, f: LtxFile): Promise<LtxMeta> {
  if (f.size < LTX_HEADER_SIZE + LTX_TRAILER_SIZE) {
    throw new DamagedError(
      `LTX file ${f.key} is ${f.size} bytes, too short to hold a header and trailer; the object is truncated`,
      f.key,
    );
  }
  try {
    const [head, tail] = await Promise.all([
      storage.get(f.key, { offset: 0, length: LTX_HEADER_SIZE }).then(readAll),
      storage.get(f.key, { offset: f.size - LTX_TRAILER_SIZE, length: LTX_TRAILER_SIZE }).then(
        readAll,
      ),
    ]);
    const header = parseLtxHeader(head);
    validateLtxHeader(header);
    const trailer = parseLtxTrailer(tail);
    validateLtxTrailer(header, trailer);
    if (header.minTxid !== f.minTxid || header.maxTxid !== f.maxTxid) {
      throw new FormatError(
        `header says TXIDs ${header.minTxid}-${header.maxTxid}, the name says ${f.minTxid}-${f.maxTxid}`,
      );
    }
    return {
      header,
      postApplyChecksum: trailer.postApplyChecksum,
      fileChecksum: trailer.fileChecksum,
    };
  } catch (err) {
    if (err instanceof FormatError) {
      throw new DamagedError(`LTX file ${f.key} is damaged: ${err.message}`, f.key);
    }
    throw err;
  }
}

/**
 * Whether a listing holds a backup, and if not, why: the one answer every command gives to "is
 * there a backup here". `empty` (nothing stored) and `foreign` (objects, none a replica file) are
 * "no backup" (a first boot, or a wrong prefix); `damaged` means every LTX file there is damaged,
 * which is damage (5), not "no backup". `error` is what to report; `where` names the replica
 * (default its storage location; commands pass the target as configured, endpoint included).
 */
export type BackupPresence =
  | { kind: "backup" }
  | { kind: "empty" | "foreign" | "damaged"; error: LitewardenError };

export function classifyBackup(
  listing: ReplicaListing,
  where = listing.location,
): BackupPresence {
  if (listing.v03 || listing.v05) return { kind: "backup" };
  if (listing.damaged.length > 0) {
    const first = listing.damaged[0];
    return {
      kind: "damaged",
      error: new DamagedError(
        `every LTX file at ${where} is damaged (${listing.damaged.length}), e.g. ${first.message}`,
      ),
    };
  }
  if (listing.objectCount === 0) {
    return {
      kind: "empty",
      error: new NoBackupError(
        `no backup found at ${where}: nothing is stored there; check the bucket and path (a wrong prefix is the usual cause)`,
        where,
      ),
    };
  }
  return {
    kind: "foreign",
    error: new NoBackupError(
      `no backup found at ${where}: ${listing.objectCount} objects are there but none is a Litestream replica file (expected generations/… or LTX levels); check the path`,
      where,
    ),
  };
}

/** Throws the classifier's error unless the listing holds a backup. */
export function requireBackup(listing: ReplicaListing, where = listing.location): void {
  const presence = classifyBackup(listing, where);
  if (presence.kind !== "backup") throw presence.error;
}
