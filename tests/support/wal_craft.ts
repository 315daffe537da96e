/**
 * Crafting WAL data for tests: rewrite fields of a real WAL and make its checksums valid again,
 * and wrap bytes in an LZ4 frame (stored blocks) so a crafted WAL can go back into a v0.3 replica.
 * Checksum-valid crafted data is what a decoder must judge by its meaning, not by its checksums.
 */
import { xxhash32 } from "../../src/formats/xxhash32.ts";
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

const LZ4_BLOCK_MAX = 4 << 20;

/** One LZ4 frame holding `data` in uncompressed blocks (what `lz4 -d` and Litestream read). */
export function lz4StoredFrame(data: Uint8Array): Uint8Array {
  const descriptor = new Uint8Array([0x60, 0x70]); // version 1, independent blocks; 4 MiB blocks
  const blocks = Math.ceil(data.length / LZ4_BLOCK_MAX);
  const out = new Uint8Array(7 + blocks * 4 + data.length + 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x184d2204, true);
  out.set(descriptor, 4);
  out[6] = (xxhash32(descriptor) >>> 8) & 0xff;
  let at = 7;
  for (let i = 0; i < data.length; i += LZ4_BLOCK_MAX) {
    const block = data.subarray(i, i + LZ4_BLOCK_MAX);
    v.setUint32(at, (block.length | 0x80000000) >>> 0, true); // high bit: stored as is
    out.set(block, at + 4);
    at += 4 + block.length;
  }
  v.setUint32(at, 0, true); // end mark
  return out;
}
