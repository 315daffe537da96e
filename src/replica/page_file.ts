/**
 * The database image being rebuilt: a temp file written at page offsets. Consecutive page
 * writes are coalesced into one write call, which matters for snapshots with small pages.
 */
export class PageFile {
  private pending: Uint8Array;
  private pendingStart = -1;
  private pendingLen = 0;
  bytesWritten = 0;

  private constructor(readonly path: string, private readonly file: Deno.FsFile) {
    this.pending = new Uint8Array(1 << 20);
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
    await this.flush();
    if (data.length >= this.pending.length) {
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
    try {
      this.file.close();
    } catch {
      // Already closed.
    }
  }

  private async flush(): Promise<void> {
    if (this.pendingStart < 0) return;
    const start = this.pendingStart;
    const len = this.pendingLen;
    this.pendingStart = -1;
    this.pendingLen = 0;
    await this.rawWrite(start, this.pending.subarray(0, len));
  }

  private async rawWrite(offset: number, data: Uint8Array): Promise<void> {
    await this.file.seek(offset, Deno.SeekMode.Start);
    let at = 0;
    while (at < data.length) at += await this.file.write(data.subarray(at));
    this.bytesWritten += data.length;
  }
}
