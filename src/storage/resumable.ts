/**
 * A download that survives dropped connections, for any backend that can fetch a byte range:
 * when the body stream errors, or ends before the announced length, the rest is re-requested
 * from where it stopped (with exponential backoff and full jitter), so a flaky link costs a retry
 * instead of a failed multi-GB restore — and a cut-off body is never mistaken for a truncated
 * (damaged) object.
 */
import { StorageError } from "../errors.ts";
import type { ByteRange } from "./storage.ts";

/** One response: its body, and its length when the server announced one. */
export interface Download {
  body: ReadableStream<Uint8Array>;
  length: number | undefined;
}

export interface ResumeOptions {
  /** Bodies per download, the first included, before giving up. */
  maxAttempts: number;
  /** Backoff base: resume n waits a random time in [0, min(max, base·2^n)). */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Where the object lives, for the message (`s3://bucket/prefix`; never credentials). */
  location: string;
  /**
   * A body that sends nothing this long is dropped and resumed (restarts with every chunk, so a
   * slow but moving download is fine): far shorter than a socket timeout, so a stalled server
   * costs seconds per attempt, not minutes. Default {@link READ_IDLE_TIMEOUT_MS}.
   */
  readIdleTimeoutMs?: number;
}

/** Default read-idle timeout of every backend's downloads. */
export const READ_IDLE_TIMEOUT_MS = 20_000;

/**
 * The body of `first` (the response to a GET of `key`, or of `range` of it), continued with
 * `fetchRange(rest)` whenever it breaks off. `fetchRange` does its own request retries.
 */
export function resumableDownload(
  key: string,
  range: ByteRange | undefined,
  first: Download,
  fetchRange: (rest: ByteRange) => Promise<Download>,
  opts: ResumeOptions,
): ReadableStream<Uint8Array> {
  const start = range?.offset ?? 0;
  const expected = first.length;
  let reader = first.body.getReader();
  let consumed = 0;
  let resumes = 0;
  const reopen = async (cause: unknown) => {
    if (resumes + 1 >= opts.maxAttempts) {
      throw new StorageError(
        `the download of ${key} from ${opts.location} broke off ${resumes + 1} times (last: ${
          describeDrop(cause)
        }); check the network and try again`,
        { op: "get", key, attempts: resumes + 1 },
      );
    }
    resumes++;
    const cap = Math.min(opts.retryMaxDelayMs, opts.retryBaseDelayMs * 2 ** resumes);
    await sleep(Math.random() * cap);
    reader.cancel().catch(() => {});
    const rest: ByteRange = {
      offset: start + consumed,
      length: expected !== undefined ? expected - consumed : undefined,
    };
    const next = await fetchRange(rest);
    reader = next.body.getReader();
  };
  return new ReadableStream<Uint8Array>({
    pull: async (ctrl) => {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await readWithin(reader, opts.readIdleTimeoutMs ?? READ_IDLE_TIMEOUT_MS);
        } catch (err) {
          await reopen(err);
          continue;
        }
        if (chunk.done) {
          if (expected !== undefined && consumed < expected) {
            await reopen(new Error(`connection closed after ${consumed} of ${expected} bytes`));
            continue;
          }
          ctrl.close();
          return;
        }
        consumed += chunk.value.length;
        ctrl.enqueue(chunk.value);
        return;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** Thrown by {@link readWithin} when no chunk arrived in time. */
export class IdleTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no data for ${ms / 1000} s (read-idle timeout)`);
    this.name = "IdleTimeoutError";
  }
}

/**
 * One `reader.read()` that gives up after `ms` without a chunk (the timer restarts with every
 * read, so a slow but moving body is fine). On timeout the reader is cancelled, which closes the
 * connection, and an {@link IdleTimeoutError} is thrown for the caller's retry logic.
 */
export async function readWithin<T>(
  reader: ReadableStreamDefaultReader<T>,
  ms: number,
): Promise<ReadableStreamReadResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IdleTimeoutError(ms)), ms);
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } catch (err) {
    if (err instanceof IdleTimeoutError) reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** A stream with no bytes (a zero-length range or object). */
export function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.close();
    },
  });
}

function describeDrop(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return err instanceof Error ? err.message.slice(0, 120) : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
