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
import { damagedError } from "../errors.ts";
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
  };
  if (listing.v05 && opts.readLtxHeaders !== false) {
    await readLtxMeta(storage, listing.v05, listing.ltxMeta, opts.parallelism ?? 8);
  }
  return listing;
}

/** Fetches header and trailer of every LTX file and sets each file's time from its header. */
async function readLtxMeta(
  storage: Storage,
  replica: V05Replica,
  into: Map<string, LtxMeta>,
  parallelism: number,
): Promise<void> {
  const files = allLtxFiles(replica);
  await mapLimit(files, parallelism, async (f: LtxFile) => {
    const meta = await readOneLtxMeta(storage, f);
    into.set(f.key, meta);
    f.time = new Date(meta.header.timestamp);
  });
}

export async function readOneLtxMeta(storage: Storage, f: LtxFile): Promise<LtxMeta> {
  if (f.size < LTX_HEADER_SIZE + LTX_TRAILER_SIZE) {
    throw damagedError(
      `LTX file ${f.key} is ${f.size} bytes, too short to hold a header and trailer; the object is truncated`,
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
      throw damagedError(`LTX file ${f.key} is damaged: ${err.message}`);
    }
    throw err;
  }
}
