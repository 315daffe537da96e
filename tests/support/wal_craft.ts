/**
 * Crafting WAL data for tests: rewrite fields of a real WAL and make its checksums valid again
 * (`storedFrame` in tests/formats/ltx_writer.ts wraps it back into an LZ4 frame for a v0.3
 * replica). Checksum-valid crafted data must be judged by its meaning, not by its checksums.
 */
import {
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  walChecksum,
} from "../../src/formats/sqlite_wal.ts";

/**
 * Recomputes, in place, the header checksum and every frame's cumulative checksum of a whole WAL
 * (header + frames), in the byte order its magic selects. Returns `wal`.
 */
export function resealWal(wal: Uint8Array): Uint8Array {
  const v = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const bigEndian = (v.getUint32(0) & 1) === 1;
  const pageSize = v.getUint32(8);
  let [s0, s1] = walChecksum(wal.subarray(0, 24), 0, 0, bigEndian);
  v.setUint32(24, s0);
  v.setUint32(28, s1);
  const size = WAL_FRAME_HEADER_SIZE + pageSize;
  for (let off = WAL_HEADER_SIZE; off + size <= wal.length; off += size) {
    [s0, s1] = walChecksum(wal.subarray(off, off + 8), s0, s1, bigEndian);
    [s0, s1] = walChecksum(
      wal.subarray(off + WAL_FRAME_HEADER_SIZE, off + size),
      s0,
      s1,
      bigEndian,
    );
    v.setUint32(off + 16, s0);
    v.setUint32(off + 20, s1);
  }
  return wal;
}

/** Byte offset of the commit field of frame `k` (0-based). */
export function walCommitFieldOffset(k: number, pageSize: number): number {
  return WAL_HEADER_SIZE + k * (WAL_FRAME_HEADER_SIZE + pageSize) + 4;
}
