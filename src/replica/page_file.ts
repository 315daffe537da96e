import { localFsError } from "../errors.ts";

/**
 * The database image being rebuilt: a temp file written at page offsets. Consecutive page writes
 * are coalesced into 1 MiB writes. Writes are synchronous on purpose: a WAL replay writes tens of
 * thousands of scattered pages, and an async op per page costs a thread-pool round trip
 * (measured: most of a restore's time was idle); a pwrite into the page cache takes microseconds.
 */
export class PageFile {
  private readonly pending = new Uint8Array(1 << 20);
  private pendingStart = -1;
  private pendingLen = 0;
  /** File offset after the last write, or -1 when unknown (after a read or truncate). */
  private position = 0;
  bytesWritten = 0;

  private constructor(readonly path: string, private readonly file: Deno.FsFile) {}

  /** Creates a new file; fails if something already exists at `path` (temp names are unique). */
  static async create(path: string, mode = 0o600): Promise<PageFile> {
    try {
      const file = await Deno.open(path, { write: true, read: true, createNew: true, mode });
      return new PageFile(path, file);
    } catch (err) {
      // The temp name is ours; the directory is what the operator can fix.
      const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 1));
      throw localFsError(err, dir, { doing: "create files in" });
    }
  }

  /** Opens an existing file to go on writing it (a restored point a search moves forward). */
  static async open(path: string): Promise<PageFile> {
    try {
      const file = await Deno.open(path, { write: true, read: true });
      const pf = new PageFile(path, file);
      pf.position = -1;
      return pf;
    } catch (err) {
      throw localFsError(err, path, { doing: "open" });
    }
  }

  writeAt(offset: number, data: Uint8Array): Promise<void> {
    if (
      this.pendingStart >= 0 && offset === this.pendingStart + this.pendingLen &&
      this.pendingLen + data.length <= this.pending.length
    ) {
      this.pending.set(data, this.pendingLen);
      this.pendingLen += data.length;
      return Promise.resolve();
    }
    this.flush();
    if (data.length >= this.pending.length) {
      this.rawWrite(offset, data);
    } else {
      this.pendingStart = offset;
      this.pending.set(data, 0);
      this.pendingLen = data.length;
    }
    return Promise.resolve();
  }

  /** Appends a stream at `offset` onward (snapshot images). Returns bytes written. */
  async writeStream(offset: number, stream: ReadableStream<Uint8Array>): Promise<number> {
    let at = offset;
    for await (const chunk of stream) {
      await this.writeAt(at, chunk);
      at += chunk.length;
    }
    return at - offset;
  }

  async readAt(offset: number, into: Uint8Array): Promise<number> {
    this.flush();
    await this.file.seek(offset, Deno.SeekMode.Start);
    this.position = -1;
    let got = 0;
    while (got < into.length) {
      const n = await this.file.read(into.subarray(got));
      if (n === null) break;
      got += n;
    }
    return got;
  }

  async truncate(length: number): Promise<void> {
    this.flush();
    await this.file.truncate(length);
    this.position = -1;
  }

  async size(): Promise<number> {
    this.flush();
    return (await this.file.stat()).size;
  }

  async sync(): Promise<void> {
    this.flush();
    await this.file.sync().catch((err) => {
      throw localFsError(err, this.path);
    });
  }

  close(): void {
    try {
      this.file.close();
    } catch {
      // Already closed.
    }
  }

  private flush(): void {
    if (this.pendingStart < 0) return;
    this.rawWrite(this.pendingStart, this.pending.subarray(0, this.pendingLen));
    this.pendingStart = -1;
    this.pendingLen = 0;
  }

  private rawWrite(offset: number, data: Uint8Array): void {
    try {
      // Sequential writes (snapshot images) need no seek.
      if (offset !== this.position) this.file.seekSync(offset, Deno.SeekMode.Start);
      let at = 0;
      while (at < data.length) at += this.file.writeSync(data.subarray(at));
    } catch (err) {
      // A full disk or the size limit: say how large the file had to grow (at least).
      this.position = -1;
      throw localFsError(err, this.path, { needBytes: offset + data.length });
    }
    this.position = offset + data.length;
    this.bytesWritten += data.length;
  }
}
