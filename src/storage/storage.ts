/**
 * The one storage interface every backend implements. Keys are relative to the replica root
 * (the file replica's directory or the S3 prefix) and always use `/`.
 */
export interface ObjectInfo {
  /** Key relative to the replica root, e.g. `generations/0123456789abcdef/wal/00000000_00000000.wal.lz4`. */
  key: string;
  /** Stored size in bytes. */
  size: number;
  /** File mtime or S3 LastModified: Litestream's object time (LITESTREAM-FORMATS §2.5, §3.4). */
  modified: Date;
}

export interface ByteRange {
  offset: number;
  /** Bytes to read from `offset`; omitted = to the end. */
  length?: number;
}

/**
 * The body of a streamed upload: its exact size, and a way to read it from the start, called
 * again for each attempt (a retry re-reads the source instead of buffering it).
 */
export interface PutSource {
  size: number;
  open(): Promise<ReadableStream<Uint8Array>>;
}

export interface PutStreamOptions {
  /** Never replace an object already at `key`: the put then returns false. */
  ifAbsent?: boolean;
}

export interface Storage {
  /** Where this storage points, for messages: `file:///dir` or `s3://bucket/prefix` (never credentials). */
  readonly location: string;
  /**
   * Every object whose key starts with `prefix` (relative to the root), recursively, in
   * lexicographic key order. Backends page internally; callers may stop iterating early.
   */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Streams an object, or a byte range of it. A missing key throws `LitewardenError` (exit 5). */
  get(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
  /** Writes a small object (markers); not used for replica data. */
  put(key: string, data: Uint8Array): Promise<void>;
  /**
   * Writes a large object from a stream with flat memory (vault files). Readers see no object
   * or the whole of it, never part. Returns false when `ifAbsent` found an object there.
   * The stream must yield exactly `src.size` bytes, or the put fails and stores nothing.
   */
  putStream(key: string, src: PutSource, opts?: PutStreamOptions): Promise<boolean>;
  /** Deletes the keys (batched by the backend). Missing keys are not an error. */
  delete(keys: string[]): Promise<void>;
  /**
   * Releases pooled connections (S3) or the SSH connection (SFTP, which would otherwise hold
   * the process). Optional; `withStorageScope` calls it for every storage a command opened.
   */
  close?(): void | Promise<void>;
}

/**
 * `stream` checked to yield exactly `size` bytes: one byte too many, or an end too early, errors
 * the stream (so the upload fails and stores nothing) with `onWrongSize`'s error.
 */
export function exactSize(
  stream: ReadableStream<Uint8Array>,
  size: number,
  onWrongSize: (got: string) => Error,
): ReadableStream<Uint8Array> {
  let seen = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        seen += chunk.length;
        if (seen > size) throw onWrongSize("more");
        ctrl.enqueue(chunk);
      },
      flush() {
        if (seen < size) throw onWrongSize(`${seen}`);
      },
    }),
  );
}

/** A `PutSource` over bytes in memory (small objects, tests). */
export function bytesSource(data: Uint8Array): PutSource {
  return {
    size: data.length,
    open: () =>
      Promise.resolve(
        new ReadableStream<Uint8Array>({
          start(ctrl) {
            ctrl.enqueue(data);
            ctrl.close();
          },
        }),
      ),
  };
}

/** Reads a whole (small) object or range into memory: headers, trailers, markers. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    parts.push(chunk);
    total += chunk.length;
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Why a GET failed on an object the listing just named: every backend says it the same way. */
export function vanishedObjectMessage(key: string | undefined, location: string): string {
  return `replica object ${key} is missing from ${location}; it was listed a moment ago, so something deleted it (a running prune or retention?)`;
}
