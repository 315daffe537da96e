/**
 * A minimal LTX (format 3) writer for tests, written from LITESTREAM-FORMATS §4: it builds files
 * the fixtures do not cover (bad page order, lock page, missing snapshot pages, many pages) with
 * a correct file checksum, so each test isolates the one rule it breaks. Page payloads are
 * literal-only LZ4 blocks (flags 0x0001) or single-stored-block LZ4 frames (flags 0x0000).
 */
import { Crc64 } from "../../src/formats/crc64.ts";
import { xxhash32 } from "../../src/formats/xxhash32.ts";

export interface TestPage {
  pgno: number;
  data: Uint8Array;
  /** Default "block". */
  encoding?: "block" | "frame";
  /** Page-frame flags to write instead of the encoding's own. */
  flags?: number;
}

export interface TestLtx {
  flags?: number;
  pageSize: number;
  commit: number;
  minTxid: bigint;
  maxTxid: bigint;
  timestamp?: number;
  preApply?: bigint;
  postApply?: bigint;
  pages: TestPage[];
  /** Rewrites the page index entries (pgno, offset, length) before they are encoded. */
  editIndex?: (entries: [number, number, number][]) => [number, number, number][];
}

/** BD 0x40: blocks of at most 64 KiB. */
const BLOCK_MAX = 65536;

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function varint(n: number, out: number[]): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

/** An LZ4 block holding `data` as one literal run. */
export function literalBlock(data: Uint8Array): Uint8Array {
  const head: number[] = [];
  const n = data.length;
  if (n < 15) {
    head.push(n << 4);
  } else {
    head.push(0xf0);
    let rest = n - 15;
    while (rest >= 255) {
      head.push(255);
      rest -= 255;
    }
    head.push(rest);
  }
  const out = new Uint8Array(head.length + n);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/**
 * An LZ4 frame (FLG 0x64, BD 0x40) holding `data` in stored (uncompressed) 64 KiB blocks, with a
 * content checksum: what LTX legacy pages use, and what a crafted v0.3 WAL segment can be.
 */
export function storedFrame(data: Uint8Array): Uint8Array {
  const desc = new Uint8Array([0x64, 0x40]);
  const hc = (xxhash32(desc) >>> 8) & 0xff;
  const blocks = Math.max(1, Math.ceil(data.length / BLOCK_MAX));
  const out = new Uint8Array(7 + blocks * 4 + data.length + 4 + 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x184d2204, true);
  out.set(desc, 4);
  out[6] = hc;
  let at = 7;
  for (let i = 0; i < blocks; i++) {
    const block = data.subarray(i * BLOCK_MAX, (i + 1) * BLOCK_MAX);
    v.setUint32(at, (0x80000000 | block.length) >>> 0, true);
    out.set(block, at + 4);
    at += 4 + block.length;
  }
  v.setUint32(at, 0, true);
  v.setUint32(at + 4, xxhash32(data), true);
  return out;
}

export function writeLtx(t: TestLtx): Uint8Array {
  const parts: Uint8Array[] = [];
  const crc = new Crc64();
  let offset = 0;
  const emit = (b: Uint8Array, hashed: Uint8Array | null = b) => {
    parts.push(b);
    offset += b.length;
    if (hashed) crc.update(hashed);
  };

  const header = new Uint8Array(100);
  const h = new DataView(header.buffer);
  header.set([0x4c, 0x54, 0x58, 0x31]);
  h.setUint32(4, t.flags ?? 0);
  h.setUint32(8, t.pageSize);
  h.setUint32(12, t.commit);
  h.setBigUint64(16, t.minTxid);
  h.setBigUint64(24, t.maxTxid);
  h.setBigInt64(32, BigInt(t.timestamp ?? 1735689600000));
  h.setBigUint64(40, t.preApply ?? 0n);
  emit(header);

  let entries: [number, number, number][] = [];
  for (const p of t.pages) {
    const start = offset;
    const ph = new Uint8Array(6);
    new DataView(ph.buffer).setUint32(0, p.pgno);
    const encoding = p.encoding ?? "block";
    const flags = p.flags ?? (encoding === "block" ? 1 : 0);
    new DataView(ph.buffer).setUint16(4, flags);
    emit(ph);
    if (encoding === "block") {
      const block = literalBlock(p.data);
      emit(u32be(block.length));
      emit(block, null);
    } else {
      emit(storedFrame(p.data), null);
    }
    crc.update(p.data); // The checksum covers decompressed data, not the payload (§4.6).
    entries.push([p.pgno, start, offset - start]);
  }
  emit(new Uint8Array(6));

  if (t.editIndex) entries = t.editIndex(entries);
  const idx: number[] = [];
  for (const [pgno, off, len] of entries) {
    varint(pgno, idx);
    varint(off, idx);
    varint(len, idx);
  }
  idx.push(0);
  emit(new Uint8Array(idx));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(idx.length));
  emit(len);

  const post = new Uint8Array(8);
  new DataView(post.buffer).setBigUint64(0, t.postApply ?? 0n);
  emit(post);
  const sum = new Uint8Array(8);
  new DataView(sum.buffer).setBigUint64(0, crc.digest() | 0x8000000000000000n);
  emit(sum, null);

  const out = new Uint8Array(offset);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
