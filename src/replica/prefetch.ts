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
