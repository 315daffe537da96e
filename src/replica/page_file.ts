/**
 * The database image being rebuilt: a temp file written at page offsets. Consecutive page
 * writes are coalesced into 1 MiB writes, and one write stays in flight while the caller keeps
 * decoding into a second buffer (decode and disk I/O overlap; memory stays at two buffers).
 */
export class PageFile {
  private pending: Uint8Array;
  private spare: Uint8Array;
  private pendingStart = -1;
  private pendingLen = 0;
  private inflight: Promise<void> | undefined;
  /** File offset after the last write/read, or -1 when unknown. */
  private position = 0;
  bytesWritten = 0;

  private constructor(readonly path: string, private readonly file: Deno.FsFile) {
    this.pending = new Uint8Array(1 << 20);
    this.spare = new Uint8Array(1 << 20);
  }

  /** Creates a new file; fails if something already exists at `path` (temp names are unique). */
  static async create(path: string, mode = 0o600): Promise<PageFile> {
    const file = await Deno.open(path, { write: true, read: true, createNew: true, mode });
    return new PageFile(path, file);
  }

  async writeAt(offset: number, data: Uint8Array): Promise<void> {
    if (this.pendingStart >= 0 && offset === this.pendingStart + this.pendingLen) {
      if (this.pendingLen + data.length <= this.pending.length) {
        this.pending.set(data, this.pendingLen);
        this.pendingLen += data.length;
        return;
      }
    }
    await this.flush(false);
    if (data.length >= this.pending.length) {
      await this.settle();
      await this.rawWrite(offset, data);
      return;
    }
    this.pendingStart = offset;
    this.pending.set(data, 0);
    this.pendingLen = data.length;
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
    await this.flush();
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
    await this.flush();
    await this.file.truncate(length);
    this.position = -1;
  }

  async size(): Promise<number> {
    await this.flush();
    return (await this.file.stat()).size;
  }

  async sync(): Promise<void> {
    await this.flush();
    await this.file.sync();
  }

  close(): void {
    // A background write may still be running after a failure: its error no longer matters.
    this.inflight?.catch(() => {});
    try {
      this.file.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Hands the pending buffer to the disk. With `wait` false the write runs in the background
   * (at most one at a time) and accumulation continues in the spare buffer.
   */
  private async flush(wait = true): Promise<void> {
    if (this.pendingStart >= 0) {
      await this.settle();
      const start = this.pendingStart;
      const buf = this.pending;
      const len = this.pendingLen;
      this.pending = this.spare;
      this.spare = buf;
      this.pendingStart = -1;
      this.pendingLen = 0;
      this.inflight = this.rawWrite(start, buf.subarray(0, len));
    }
    if (wait) await this.settle();
  }

  /** Waits for the background write, surfacing its error. */
  private async settle(): Promise<void> {
    const p = this.inflight;
    this.inflight = undefined;
    if (p) await p;
  }

  private rawWrite(offset: number, data: Uint8Array): Promise<void> {
    // Synchronous on purpose: a WAL replay writes tens of thousands of scattered pages, and an
    // async op per page costs a thread-pool round trip (measured: most of a restore's time
    // idle); a pwrite into the page cache takes microseconds.
    if (offset !== this.position) this.file.seekSync(offset, Deno.SeekMode.Start);
    let at = 0;
    while (at < data.length) at += this.file.writeSync(data.subarray(at));
    this.position = offset + data.length;
    this.bytesWritten += data.length;
    return Promise.resolve();
  }
}
