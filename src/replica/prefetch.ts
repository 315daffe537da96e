/**
 * Yields `open(item)` results in input order while keeping up to `parallelism` opens in flight,
 * so downloads overlap but are consumed (and applied) strictly in order. Streams opened ahead
 * and never consumed are cancelled when the consumer stops early.
 */
export async function* prefetchInOrder<T>(
  items: readonly T[],
  parallelism: number,
  open: (item: T) => Promise<ReadableStream<Uint8Array>>,
): AsyncGenerator<{ item: T; stream: ReadableStream<Uint8Array> }> {
  const window: Promise<ReadableStream<Uint8Array>>[] = [];
  let next = 0;
  const fill = () => {
    while (next < items.length && window.length < Math.max(1, parallelism)) {
      const p = open(items[next++]);
      p.catch(() => {}); // Rejections are observed when this item's turn comes.
      window.push(p);
    }
  };
  let consumed = 0;
  try {
    fill();
    while (window.length > 0) {
      const stream = await window.shift()!;
      const item = items[consumed++];
      yield { item, stream };
      fill();
    }
  } finally {
    for (const p of window) {
      p.then((s) => s.cancel()).catch(() => {});
    }
  }
}

/** Passes bytes through unchanged while counting them (downloaded bytes for progress/JSON). */
export function countingStream(
  onBytes: (n: number) => void,
): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, ctrl) {
      onBytes(chunk.length);
      ctrl.enqueue(chunk);
    },
  });
}
