/**
 * Downloads objects ahead of their consumer, bounded by bytes held in memory rather than by a
 * count of objects: on a slow link the time goes to waiting for responses, so many small objects
 * should be in flight at once, while a few large ones must not fill the memory.
 *
 * Objects are handed out strictly in input order. The one being consumed (the head) streams from
 * its connection as the consumer reads it; the ones after it are requested while the budget has
 * room for their listed size, and their bodies are read into memory as they arrive, so by the
 * time their turn comes they are (mostly) here. An object larger than the budget is requested when
 * it becomes the head and then streams with flat memory. Reading ahead also stops whenever the
 * bytes actually held reach the budget, so an object larger than listed cannot exceed it either.
 */

export interface FetchAheadOptions {
  /** Most bytes read ahead of the consumer and held in memory (default 32 MiB). */
  maxBytesAhead?: number;
  /** Most requests open at once, the head's included (default 32). */
  maxRequests?: number;
}

export const DEFAULT_MAX_BYTES_AHEAD = 32 << 20;
export const DEFAULT_MAX_REQUESTS = 32;

/** One object to fetch: `size` is its listed (stored) size, 0 when unknown. */
export interface FetchItem {
  size: number;
}

/**
 * Yields `{ item, stream }` for every item in order; `open(item)` starts its download (a GET).
 * A stream must be read to its end (or cancelled) before the next item is asked for. When the
 * consumer stops early, every download still open is cancelled. A failed `open` or a body that
 * fails while read ahead is reported when that item's turn comes (as the rejection of `next()`
 * or as the stream's error), so an error is always the first one in apply order.
 */
export async function* fetchAhead<T extends FetchItem>(
  items: readonly T[],
  open: (item: T) => Promise<ReadableStream<Uint8Array>>,
  opts: FetchAheadOptions = {},
): AsyncGenerator<{ item: T; stream: ReadableStream<Uint8Array> }> {
  const budget = Math.max(1, opts.maxBytesAhead ?? DEFAULT_MAX_BYTES_AHEAD);
  const maxRequests = Math.max(1, opts.maxRequests ?? DEFAULT_MAX_REQUESTS);
  const started: Download[] = [];
  let next = 0; // next item to start
  let head = 0; // item being consumed
  let stopped = false;
  const fill = () => {
    while (!stopped && next < items.length && state.openRequests < maxRequests) {
      const size = Math.max(0, items[next].size);
      // The head always starts; others while their listed size fits the budget.
      if (next > head && state.reserved + size > budget) break;
      started.push(new Download(open(items[next]), size, state, budget, next === head));
      next++;
    }
  };
  // A finished body or consumed bytes make room: start more at once, not at the next item.
  const state: Shared = { held: 0, reserved: 0, openRequests: 0, wake: new Set(), refill: fill };
  try {
    for (; head < items.length; head++) {
      fill();
      const d = started[head];
      const stream = await d.takeOver();
      yield { item: items[head], stream };
      d.finish();
    }
  } finally {
    stopped = true;
    for (let i = head; i < started.length; i++) started[i].cancel();
  }
}

interface Shared {
  /** Body bytes read ahead and not yet consumed. */
  held: number;
  /** Listed sizes of objects started ahead of the head. */
  reserved: number;
  /** Downloads whose body is still being received. */
  openRequests: number;
  /** Read-ahead loops waiting for the budget to have room. */
  wake: Set<() => void>;
  /** Starts the downloads that now fit. */
  refill: () => void;
}

/** One object's download: reads its body ahead into `chunks` until it becomes the head. */
class Download {
  private readonly chunks: Uint8Array[] = [];
  private reader?: ReadableStreamDefaultReader<Uint8Array>;
  private error: unknown;
  private done = false;
  private isHead: boolean;
  private reading?: Promise<void>;
  private cancelled = false;
  private requestOpen = true;

  constructor(
    private readonly opened: Promise<ReadableStream<Uint8Array>>,
    private readonly size: number,
    private readonly state: Shared,
    private readonly budget: number,
    asHead: boolean,
  ) {
    this.isHead = asHead;
    state.openRequests++;
    if (!asHead) state.reserved += size;
    opened.catch(() => {}); // observed when this item's turn comes
    if (!asHead) this.reading = this.readAhead();
  }

  /** This item's turn: the bytes read so far, then the rest straight from the connection. */
  async takeOver(): Promise<ReadableStream<Uint8Array>> {
    if (!this.isHead) {
      this.isHead = true;
      this.state.reserved -= this.size;
      this.wakeAll(); // its reservation is free for the objects after it
      this.state.refill();
    }
    await this.reading; // stops at its next chunk now that this is the head
    const source = await this.opened; // rejects with the open's error
    this.reader ??= source.getReader();
    return new ReadableStream<Uint8Array>({
      pull: async (ctrl) => {
        const chunk = this.chunks.shift();
        if (chunk) {
          this.release(chunk.length);
          ctrl.enqueue(chunk);
          return;
        }
        if (this.error !== undefined) throw this.error;
        if (this.done) {
          this.closeRequest();
          ctrl.close();
          return;
        }
        const r = await this.reader!.read();
        if (r.done) {
          this.done = true;
          this.closeRequest();
          ctrl.close();
        } else ctrl.enqueue(r.value);
      },
      cancel: async (reason) => {
        this.closeRequest();
        await this.reader?.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 });
  }

  /** The consumer is done with this item: whatever it left unread is no longer held. */
  finish(): void {
    for (const c of this.chunks.splice(0)) this.release(c.length);
    if (!this.done && this.error === undefined) this.reader?.cancel().catch(() => {});
    this.closeRequest();
  }

  cancel(): void {
    this.cancelled = true;
    if (!this.isHead) this.state.reserved -= this.size;
    this.isHead = true;
    this.finish();
    this.opened.then((s) => this.reader ? undefined : s.cancel()).catch(() => {});
    this.wakeAll();
  }

  private async readAhead(): Promise<void> {
    let source: ReadableStream<Uint8Array>;
    try {
      source = await this.opened;
    } catch {
      return; // takeOver() reports it
    }
    if (this.cancelled) return;
    this.reader = source.getReader();
    try {
      while (!this.isHead) {
        if (this.state.held >= this.budget) {
          await new Promise<void>((r) => this.state.wake.add(r));
          continue;
        }
        const r = await this.reader.read();
        if (r.done) {
          this.done = true;
          this.closeRequest();
          return;
        }
        this.chunks.push(r.value);
        this.state.held += r.value.length;
      }
    } catch (err) {
      this.error = err;
      this.closeRequest();
    }
  }

  private release(n: number): void {
    this.state.held -= n;
    this.wakeAll();
    this.state.refill();
  }

  private wakeAll(): void {
    const waiting = [...this.state.wake];
    this.state.wake.clear();
    for (const w of waiting) w();
  }

  private closeRequest(): void {
    if (!this.requestOpen) return;
    this.requestOpen = false;
    this.state.openRequests--;
    queueMicrotask(this.state.refill);
  }
}
