import { formatIndex } from "../formats/v03_layout.ts";
import { DamagedError } from "../errors.ts";
import { FormatError } from "../formats/format_error.ts";
import { LZ4_MAX_EXPANSION, lz4FrameDecoderStream } from "../formats/lz4.ts";
import { parseDatabaseHeader } from "../formats/sqlite_header.ts";
import {
  walCommitSizeProblem,
  type WalHeader,
  walMaxDatabasePages,
  WalReader,
  walRestartProblem,
} from "../formats/sqlite_wal.ts";
import { StreamReader } from "../formats/stream_reader.ts";
import { fetchAhead } from "../storage/fetch_ahead.ts";
import type { Storage } from "../storage/storage.ts";
import type { PageFile } from "./page_file.ts";
import { countingStream } from "./prefetch.ts";
import type { V03Plan, V03Segment } from "./v03.ts";

export interface ApplyOptions {
  /** Most downloads open at once. */
  parallelism: number;
  /** Most bytes downloaded ahead of the apply loop (default: fetchAhead's). */
  maxBytesAhead?: number;
  /** Called with compressed bytes as they arrive and once per finished object. */
  onDownload?: (bytes: number) => void;
  onObject?: () => void;
}

export interface ApplyStats {
  objects: number;
  bytesDownloaded: number;
  pageSize: number;
  /** Database size in pages after the restore. */
  pages: number;
}

/**
 * Where a v0.3 restore stands after its last segment: enough to go on applying WAL from there
 * (`continueV03`) instead of restoring again from the snapshot.
 */
export interface V03Position {
  pageSize: number;
  /** Database size in pages now. */
  pages: number;
  /** The WAL index applied last (the snapshot's, when no segment was), and its bytes applied. */
  index: number;
  indexBytes: number;
  /** The database size before that index, and the header of the index before it. */
  pagesBeforeIndex: number;
  prevHeader: WalHeader | undefined;
  /** The header of `index` (undefined while none of it was applied). */
  header?: WalHeader;
}

/**
 * Rebuilds a v0.3 restore point into `out` (LITESTREAM-FORMATS §2.6): the snapshot image, then
 * every WAL index in order, each applied with checkpoint semantics (§1.2). Unlike Litestream,
 * a damaged or incomplete chain is an error instead of a silently shorter database.
 */
export async function applyV03(
  storage: Storage,
  plan: V03Plan,
  out: PageFile,
  opts: ApplyOptions,
): Promise<ApplyStats & { position: V03Position }> {
  const stats: ApplyStats = { objects: 0, bytesDownloaded: 0, pageSize: 0, pages: 0 };
  const onBytes = (n: number) => {
    stats.bytesDownloaded += n;
    opts.onDownload?.(n);
  };
  const decompress = (stream: ReadableStream<Uint8Array>, compressed: boolean) => {
    const counted = stream.pipeThrough(countingStream(onBytes));
    return compressed ? counted.pipeThrough(lz4FrameDecoderStream()) : counted;
  };

  const snap = plan.snapshot;
  const segments = plan.indices.flatMap((g) => g.segments);
  // One queue for the snapshot and every segment: the segments download while the snapshot is
  // written.
  const objects: (V03Segment | typeof snap)[] = [snap, ...segments];
  const streams = fetchAhead(objects, (o) => storage.get(o.key), {
    maxRequests: opts.parallelism,
    maxBytesAhead: opts.maxBytesAhead,
  });
  try {
    const first = await streams.next();
    if (first.done) throw new Error("internal: no snapshot stream");
    const imageSize = await withObject(snap.key, async () => {
      return await out.writeStream(0, decompress(first.value.stream, snap.compressed));
    });
    stats.objects++;
    opts.onObject?.();
    const head = new Uint8Array(100);
    if (imageSize < 100 || (await out.readAt(0, head)) < 100) {
      throw new DamagedError(
        `snapshot ${snap.key} is not a SQLite database: only ${imageSize} bytes`,
      );
    }
    const dbHeader = withFormat(snap.key, () => parseDatabaseHeader(head));
    stats.pageSize = dbHeader.pageSize;
    if (imageSize % dbHeader.pageSize !== 0) {
      throw new DamagedError(
        `snapshot ${snap.key} is ${imageSize} bytes, not a multiple of its page size ${dbHeader.pageSize}: it is truncated`,
      );
    }
    stats.pages = imageSize / dbHeader.pageSize;
    const start: V03Position = {
      pageSize: stats.pageSize,
      pages: stats.pages,
      index: snap.index,
      indexBytes: 0,
      pagesBeforeIndex: stats.pages,
      prevHeader: undefined,
    };
    const position = await applyIndices(plan.indices, streams, out, start, decompress, () => {
      stats.objects++;
      opts.onObject?.();
    });
    stats.pages = position.pages;
    return { ...stats, position };
  } finally {
    await streams.return(undefined);
  }
}

/**
 * Goes on from `from` (a file a v0.3 restore left at that position) through `indices`, the WAL
 * indexes to apply in order; the first may be `from.index` itself, then with all its segments
 * from offset 0: they are read again (the frame checksums chain from the index's start) and only
 * the frames past `from.indexBytes` are written. Returns the new position.
 */
export async function continueV03(
  storage: Storage,
  indices: V03Plan["indices"],
  out: PageFile,
  from: V03Position,
  opts: ApplyOptions,
): Promise<ApplyStats & { position: V03Position }> {
  const stats: ApplyStats = { objects: 0, bytesDownloaded: 0, pageSize: from.pageSize, pages: 0 };
  const decompress = (stream: ReadableStream<Uint8Array>, compressed: boolean) => {
    const counted = stream.pipeThrough(countingStream((n) => {
      stats.bytesDownloaded += n;
      opts.onDownload?.(n);
    }));
    return compressed ? counted.pipeThrough(lz4FrameDecoderStream()) : counted;
  };
  const streams = fetchAhead(indices.flatMap((g) => g.segments), (s) => storage.get(s.key), {
    maxRequests: opts.parallelism,
    maxBytesAhead: opts.maxBytesAhead,
  });
  try {
    const position = await applyIndices(indices, streams, out, from, decompress, () => {
      stats.objects++;
      opts.onObject?.();
    });
    stats.pages = position.pages;
    return { ...stats, position };
  } finally {
    await streams.return(undefined);
  }
}

/** Applies `indices` in order from `from` (see {@link continueV03}); returns where it stands. */
async function applyIndices(
  indices: V03Plan["indices"],
  streams: SegmentStreams,
  out: PageFile,
  from: V03Position,
  decompress: Decompress,
  onObject: () => void,
): Promise<V03Position> {
  let at = { ...from };
  for (const group of indices) {
    const resumed = group.index === at.index && at.indexBytes > 0;
    const before = resumed ? at.pagesBeforeIndex : at.pages;
    const prev = resumed || at.index === group.index ? at.prevHeader : at.header;
    const applied = await applyIndex(
      group.segments,
      streams,
      out,
      { pageSize: at.pageSize, pages: before, prev, skipBytes: resumed ? at.indexBytes : 0 },
      decompress,
      onObject,
    );
    at = {
      pageSize: at.pageSize,
      pages: applied.pages ?? before,
      index: group.index,
      indexBytes: applied.bytes,
      pagesBeforeIndex: before,
      prevHeader: prev,
      header: applied.header,
    };
  }
  return at;
}

type SegmentStreams = AsyncGenerator<{ stream: ReadableStream<Uint8Array> }>;
type Decompress = (
  s: ReadableStream<Uint8Array>,
  compressed: boolean,
) => ReadableStream<Uint8Array>;

/**
 * Streams one WAL index (its segments concatenated, decompressed) through {@link WalReader} and
 * writes each frame's page. Litestream uploads only whole transactions with a continuous
 * checksum chain, so any invalid frame, offset gap or unfinished transaction is damage, and so is
 * a header that does not continue `db.prev` (the previous index's) or a commit size SQLite's
 * checkpoint would refuse. `db.pages` is the database size before this index. Returns the
 * index's WAL header and the database size in pages after it (undefined if it holds no commit).
 */
async function applyIndex(
  segments: V03Segment[],
  streams: SegmentStreams,
  out: PageFile,
  db: { pageSize: number; pages: number; prev: WalHeader | undefined; skipBytes?: number },
  decompress: Decompress,
  onObject: () => void,
): Promise<{ header: WalHeader; pages: number | undefined; bytes: number }> {
  const { pageSize } = db;
  const first = segments[0];
  const where = `WAL index ${formatIndex(first.index)} of generation ${first.generation}`;
  let current = first;
  const bytes = segmentBytes(segments, streams, decompress, where, (seg) => {
    if (seg) current = seg;
    else onObject();
  });
  // What the listing allows this index to hold: no page past what its frames could grow the
  // file to can be part of the result, so such a frame is not written (a checkpoint skips it
  // too) and a crafted page number cannot make a huge sparse file. A size of 0 is taken as
  // "not listed" (a real segment is never empty), which leaves the index unbounded.
  const listedBytes = segments.reduce(
    (n, s) => n + (s.size === 0 ? Infinity : s.compressed ? LZ4_MAX_EXPANSION * s.size : s.size),
    0,
  );
  const fileBytes = db.pages * pageSize;
  const maxPages = walMaxDatabasePages(fileBytes, pageSize, listedBytes);
  const reader = new StreamReader(ReadableStream.from(bytes));
  return await withObject(() => current.key, async () => {
    const wal = await WalReader.open(reader);
    const header = wal.header;
    if (header.pageSize !== pageSize) {
      throw new FormatError(
        `WAL page size ${header.pageSize} differs from the snapshot's page size ${pageSize}`,
      );
    }
    const restart = db.prev && walRestartProblem(db.prev, header);
    if (restart) throw new FormatError(restart);
    // Frames a resumed index already wrote are checked again but not written twice.
    const skipFrames = Math.max(0, Math.ceil(((db.skipBytes ?? 0) - 32) / (24 + pageSize)));
    let frame = 0;
    for (let f = await wal.next(); f !== undefined; f = await wal.next()) {
      const pgno = f.header.pgno;
      if (frame++ >= skipFrames && pgno <= maxPages) {
        await out.writeAt((pgno - 1) * pageSize, f.page);
      }
    }
    if (wal.endReason !== undefined) throw new FormatError(wal.endReason);
    if (wal.uncommittedFrames > 0) {
      throw new FormatError(
        `the last ${wal.uncommittedFrames} frames are not followed by a commit frame: the WAL is truncated`,
      );
    }
    if (reader.position > listedBytes) {
      throw new FormatError(
        `it decompresses to ${reader.position} bytes, more than its listed size allows`,
      );
    }
    const nPage = wal.committedFrames > 0 ? wal.databaseSize : undefined;
    if (nPage !== undefined) {
      const problem = walCommitSizeProblem(fileBytes, pageSize, wal.committedFrames, nPage);
      if (problem) throw new FormatError(problem);
      await out.truncate(nPage * pageSize);
    }
    return { header, pages: nPage, bytes: reader.position };
  }, where);
}

/**
 * The decompressed bytes of an index's segments in order, checking that each segment starts
 * where the previous one ended. `onSegment` is called with each segment as it starts and with
 * undefined as it finishes.
 */
async function* segmentBytes(
  segments: V03Segment[],
  streams: SegmentStreams,
  decompress: Decompress,
  where: string,
  onSegment: (seg: V03Segment | undefined) => void,
): AsyncGenerator<Uint8Array> {
  let walOffset = 0;
  for (const seg of segments) {
    const next = await streams.next();
    if (next.done) throw new Error("internal: segment stream ended early");
    onSegment(seg);
    if (seg.offset !== walOffset) {
      await next.value.stream.cancel();
      throw new DamagedError(
        `${where} has a gap: a segment should start at offset ${walOffset} but the next one is ${seg.key} (offset ${seg.offset}); a WAL segment is missing`,
      );
    }
    for await (const chunk of decompress(next.value.stream, seg.compressed)) {
      walOffset += chunk.length;
      yield chunk;
    }
    onSegment(undefined);
  }
}

/** Runs `fn`, turning decoder errors into exit-5 errors that name the object. */
async function withObject<T>(
  key: string | (() => string),
  fn: () => Promise<T>,
  context?: string,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FormatError) {
      const name = typeof key === "string" ? key : key();
      throw new DamagedError(
        `${context ? `${context}: ` : ""}${name} is damaged: ${err.message}`,
        name,
      );
    }
    throw err;
  }
}

function withFormat<T>(key: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FormatError) {
      throw new DamagedError(`${key} is damaged: ${err.message}`, key);
    }
    throw err;
  }
}
