import { localFsError } from "../errors.ts";
import type {
  ByteRange,
  ObjectInfo,
  PutSource,
  PutStreamOptions,
  Storage,
} from "../storage/storage.ts";

/**
 * A storage that downloads each object at most once: the first GET streams it into a file in
 * `dir` (a temp directory the caller removes), every later GET of the key reads that file. For
 * work that restores many points of one replica (a search over restore points), where the same
 * snapshot and segments are needed again and again.
 */
export class CachedStorage implements Storage {
  readonly location: string;
  /** Objects fetched from the storage, and their stored bytes (each object counts once). */
  downloads = 0;
  bytesDownloaded = 0;
  private readonly files = new Map<string, Promise<string>>();
  private fetched = 0;

  constructor(private readonly inner: Storage, private readonly dir: string) {
    this.location = inner.location;
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  async get(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (range) return await this.inner.get(key, range);
    let file = this.files.get(key);
    if (!file) {
      file = this.fetch(key);
      this.files.set(key, file);
      // A failed download is tried again by the next GET (and reported by this one).
      file.catch(() => this.files.delete(key));
    }
    const path = await file;
    return (await Deno.open(path, { read: true })).readable;
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.inner.put(key, data);
  }

  putStream(key: string, src: PutSource, opts?: PutStreamOptions): Promise<boolean> {
    return this.inner.putStream(key, src, opts);
  }

  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }

  private async fetch(key: string): Promise<string> {
    const path = `${this.dir}/${this.fetched++}-${key.replaceAll("/", "_")}`;
    const stream = await this.inner.get(key);
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    } catch (err) {
      await stream.cancel().catch(() => {});
      throw localFsError(err, this.dir, { doing: "create files in" });
    }
    try {
      for await (const chunk of stream) {
        let at = 0;
        while (at < chunk.length) at += await f.write(chunk.subarray(at));
        this.bytesDownloaded += chunk.length;
      }
    } catch (err) {
      await Deno.remove(path).catch(() => {});
      throw localFsError(err, path);
    } finally {
      f.close();
    }
    this.downloads++;
    return path;
  }
}
