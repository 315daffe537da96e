/**
 * Pull-style reading of exact byte counts from a `ReadableStream<Uint8Array>`, whatever the
 * source's chunking. Only the current chunk (plus a partial carry-over) is held, so memory stays
 * bounded by the largest read. A premature end of stream throws {@link FormatError}: for replica
 * objects that means a truncated object. Errors of the stream itself pass through unchanged.
 */
import { FormatError } from "./format_error.ts";

const EMPTY = new Uint8Array(0);

export class StreamReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Unconsumed bytes are #buf[#pos, #buf.length). */
  #buf: Uint8Array = EMPTY;
  #pos = 0;
  /** Bytes consumed before #buf[0]. */
  #base = 0;
  #eof = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Number of bytes consumed so far (offset of the next byte in the stream). */
  get position(): number {
    return this.#base + this.#pos;
  }

  /**
   * Unconsumed bytes already buffered (possibly empty), without consuming them. Valid until the
   * next call that reads or consumes.
   */
  buffered(): Uint8Array {
    return this.#buf.subarray(this.#pos);
  }

  /** Consumes `n` bytes of {@link buffered}. */
  consume(n: number): void {
    if (n < 0 || n > this.#buf.length - this.#pos) {
      throw new RangeError(`cannot consume ${n} bytes: ${this.#buf.length - this.#pos} buffered`);
    }
    this.#pos += n;
  }

  /** Reads one more chunk into the buffer; false at end of stream (nothing was added). */
  async fill(): Promise<boolean> {
    const chunk = await this.#next();
    if (!chunk) return false;
    const rest = this.#buf.length - this.#pos;
    if (rest === 0) {
      this.#base += this.#buf.length;
      this.#buf = chunk;
      this.#pos = 0;
    } else {
      const joined = new Uint8Array(rest + chunk.length);
      joined.set(this.#buf.subarray(this.#pos));
      joined.set(chunk, rest);
      this.#base += this.#pos;
      this.#buf = joined;
      this.#pos = 0;
    }
    return true;
  }

  /**
   * Reads exactly `n` bytes. The result is never modified afterwards (a view of an input chunk or
   * a fresh copy). Throws {@link FormatError} naming `what` if the stream ends first.
   */
  async readExact(n: number, what = `${n} bytes`): Promise<Uint8Array> {
    const got = await this.readUpTo(n);
    if (got.length < n) {
      throw new FormatError(
        `data ends at byte ${this.position} while reading ${what}: needed ${n} bytes, only ${got.length} remain (truncated)`,
      );
    }
    return got;
  }

  /** Reads up to `n` bytes; fewer only at the end of the stream (empty at the end). */
  async readUpTo(n: number): Promise<Uint8Array> {
    const avail = this.#buf.length - this.#pos;
    if (avail >= n) {
      const out = this.#buf.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      return out;
    }
    const out = new Uint8Array(n);
    out.set(this.#buf.subarray(this.#pos));
    let filled = avail;
    this.#base += this.#buf.length;
    this.#buf = EMPTY;
    this.#pos = 0;
    while (filled < n) {
      const chunk = await this.#next();
      if (!chunk) return out.subarray(0, filled);
      const take = Math.min(n - filled, chunk.length);
      out.set(take === chunk.length ? chunk : chunk.subarray(0, take), filled);
      filled += take;
      if (take < chunk.length) {
        this.#buf = chunk;
        this.#pos = take;
      } else {
        this.#base += chunk.length;
      }
    }
    return out;
  }

  /** Skips exactly `n` bytes without keeping them; FormatError if the stream ends first. */
  async skip(n: number, what = `${n} bytes`): Promise<void> {
    let left = n;
    for (;;) {
      const avail = this.#buf.length - this.#pos;
      const take = Math.min(avail, left);
      this.#pos += take;
      left -= take;
      if (left === 0) return;
      if (!(await this.fill())) {
        throw new FormatError(
          `data ends at byte ${this.position} while skipping ${what}: ${left} bytes missing (truncated)`,
        );
      }
    }
  }

  /** True when every byte has been consumed and the stream has ended. */
  async atEnd(): Promise<boolean> {
    while (this.#buf.length - this.#pos === 0) {
      if (!(await this.fill())) return true;
    }
    return false;
  }

  /** Cancels the underlying stream (e.g. after an error, to release the connection). */
  async cancel(reason?: unknown): Promise<void> {
    this.#eof = true;
    this.#buf = EMPTY;
    this.#pos = 0;
    await this.#reader.cancel(reason);
  }

  /** Releases the lock on the stream so that someone else can read the rest. */
  releaseLock(): void {
    this.#reader.releaseLock();
  }

  async #next(): Promise<Uint8Array | undefined> {
    while (!this.#eof) {
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#eof = true;
        return undefined;
      }
      if (value.length > 0) return value;
    }
    return undefined;
  }
}
