/**
 * SQLite WAL files (LITESTREAM-FORMATS §1.2): header parsing, the WAL checksum, frame headers
 * and a streaming validator that applies SQLite's recovery rules frame by frame.
 */
import { FormatError, hex32 } from "./format_error.ts";
import { isValidPageSize } from "./sqlite_header.ts";

export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
export const WAL_MAGIC_LE = 0x377f0682;
export const WAL_MAGIC_BE = 0x377f0683;
export const WAL_FORMAT_VERSION = 3007000;

export interface WalHeader {
  magic: number;
  /** Checksums read words big-endian (magic …83) rather than little-endian (…82). */
  bigEndianChecksum: boolean;
  formatVersion: number;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

export interface WalFrameHeader {
  pgno: number;
  /** Database size in pages after this transaction for a commit frame, else 0. */
  commit: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

function view(b: Uint8Array, n: number): DataView {
  return new DataView(b.buffer, b.byteOffset, n);
}

/**
 * Parses and checks a 32-byte WAL header: magic, format version, page size and the header
 * checksum. Throws {@link FormatError}.
 */
export function parseWalHeader(bytes: Uint8Array): WalHeader {
  if (bytes.length < WAL_HEADER_SIZE) {
    throw new FormatError(
      `WAL header needs ${WAL_HEADER_SIZE} bytes, only ${bytes.length} available`,
    );
  }
  const v = view(bytes, WAL_HEADER_SIZE);
  const magic = v.getUint32(0);
  if (magic !== WAL_MAGIC_LE && magic !== WAL_MAGIC_BE) {
    throw new FormatError(`not a SQLite WAL: magic ${hex32(magic)} at byte 0`);
  }
  const header: WalHeader = {
    magic,
    bigEndianChecksum: (magic & 1) === 1,
    formatVersion: v.getUint32(4),
    pageSize: v.getUint32(8),
    checkpointSeq: v.getUint32(12),
    salt1: v.getUint32(16),
    salt2: v.getUint32(20),
    checksum1: v.getUint32(24),
    checksum2: v.getUint32(28),
  };
  if (header.formatVersion !== WAL_FORMAT_VERSION) {
    throw new FormatError(`unsupported WAL format version ${header.formatVersion} at byte 4`);
  }
  if (!isValidPageSize(header.pageSize)) {
    throw new FormatError(`invalid WAL page size ${header.pageSize} at byte 8`);
  }
  const [c1, c2] = walChecksum(bytes.subarray(0, 24), 0, 0, header.bigEndianChecksum);
  if (c1 !== header.checksum1 || c2 !== header.checksum2) {
    throw new FormatError(
      `WAL header checksum mismatch: stored ${hex32(header.checksum1)} ${
        hex32(header.checksum2)
      }, computed ${hex32(c1)} ${hex32(c2)}`,
    );
  }
  return header;
}

/** Parses a 24-byte frame header (no checks: see {@link WalFrameValidator}). */
export function parseWalFrameHeader(bytes: Uint8Array): WalFrameHeader {
  if (bytes.length < WAL_FRAME_HEADER_SIZE) {
    throw new FormatError(
      `WAL frame header needs ${WAL_FRAME_HEADER_SIZE} bytes, only ${bytes.length} available`,
    );
  }
  const v = view(bytes, WAL_FRAME_HEADER_SIZE);
  return {
    pgno: v.getUint32(0),
    commit: v.getUint32(4),
    salt1: v.getUint32(8),
    salt2: v.getUint32(12),
    checksum1: v.getUint32(16),
    checksum2: v.getUint32(20),
  };
}

/**
 * The WAL checksum over `data` (length a multiple of 8), continuing from (s0, s1). Words are read
 * big- or little-endian as the WAL magic says; all arithmetic is unsigned 32-bit.
 */
export function walChecksum(
  data: Uint8Array,
  s0: number,
  s1: number,
  bigEndian: boolean,
): [number, number] {
  const n = data.length;
  if (n % 8 !== 0) {
    throw new FormatError(`WAL checksum input must be a multiple of 8 bytes, got ${n}`);
  }
  let a = s0 >>> 0, b = s1 >>> 0;
  const d = data;
  if (bigEndian) {
    for (let i = 0; i < n; i += 8) {
      const x0 = ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0;
      const x1 = ((d[i + 4] << 24) | (d[i + 5] << 16) | (d[i + 6] << 8) | d[i + 7]) >>> 0;
      a = (a + x0 + b) >>> 0;
      b = (b + x1 + a) >>> 0;
    }
  } else {
    for (let i = 0; i < n; i += 8) {
      const x0 = (d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24)) >>> 0;
      const x1 = (d[i + 4] | (d[i + 5] << 8) | (d[i + 6] << 16) | (d[i + 7] << 24)) >>> 0;
      a = (a + x0 + b) >>> 0;
      b = (b + x1 + a) >>> 0;
    }
  }
  return [a, b];
}

/**
 * Validates WAL frames in order as SQLite recovery does: a frame is valid if its page number is
 * non-zero, its salts equal the header's and its cumulative checksum continues the chain. The
 * first invalid frame ends the WAL (everything after it is ignored), so once {@link accept}
 * returns false it keeps returning false. Only frames up to the last commit frame count:
 * {@link committedFrames} and {@link databaseSize} describe that prefix.
 */
export class WalFrameValidator {
  readonly header: WalHeader;
  #s0: number;
  #s1: number;
  #valid = true;
  #frames = 0;
  #committed = 0;
  #dbSize = 0;
  #reason: string | undefined;

  constructor(header: WalHeader) {
    this.header = header;
    this.#s0 = header.checksum1;
    this.#s1 = header.checksum2;
  }

  /**
   * Checks the next frame (`frameHeader24`: its 24-byte header, `page`: its page data). Returns
   * true if it is valid and extends the chain.
   */
  accept(frameHeader24: Uint8Array, page: Uint8Array): boolean {
    if (!this.#valid) return false;
    const h = this.header;
    const frame = this.#frames;
    if (frameHeader24.length !== WAL_FRAME_HEADER_SIZE || page.length !== h.pageSize) {
      return this.#reject(
        `frame ${frame}: expected a ${WAL_FRAME_HEADER_SIZE}-byte header and ${h.pageSize}-byte page, got ${frameHeader24.length} and ${page.length} bytes`,
      );
    }
    const f = parseWalFrameHeader(frameHeader24);
    if (f.pgno === 0) return this.#reject(`frame ${frame}: page number 0`);
    if (f.salt1 !== h.salt1 || f.salt2 !== h.salt2) {
      return this.#reject(
        `frame ${frame}: salts ${hex32(f.salt1)} ${hex32(f.salt2)} differ from the header's ${
          hex32(h.salt1)
        } ${hex32(h.salt2)}`,
      );
    }
    const [a0, a1] = walChecksum(
      frameHeader24.subarray(0, 8),
      this.#s0,
      this.#s1,
      h.bigEndianChecksum,
    );
    const [c0, c1] = walChecksum(page, a0, a1, h.bigEndianChecksum);
    if (c0 !== f.checksum1 || c1 !== f.checksum2) {
      return this.#reject(
        `frame ${frame} (page ${f.pgno}): checksum mismatch: stored ${hex32(f.checksum1)} ${
          hex32(f.checksum2)
        }, computed ${hex32(c0)} ${hex32(c1)}`,
      );
    }
    this.#s0 = c0;
    this.#s1 = c1;
    this.#frames++;
    if (f.commit !== 0) {
      this.#committed = this.#frames;
      this.#dbSize = f.commit;
    }
    return true;
  }

  #reject(reason: string): false {
    this.#valid = false;
    this.#reason = reason;
    return false;
  }

  /** False once a frame was rejected. */
  get valid(): boolean {
    return this.#valid;
  }

  /** Why the chain ended, once {@link accept} returned false. */
  get invalidReason(): string | undefined {
    return this.#reason;
  }

  /** Valid frames accepted so far (including those of an unfinished transaction). */
  get frames(): number {
    return this.#frames;
  }

  /** Valid frames up to and including the last commit frame: the ones a checkpoint applies. */
  get committedFrames(): number {
    return this.#committed;
  }

  /** Frames after the last commit frame: an unfinished transaction a checkpoint discards. */
  get uncommittedFrames(): number {
    return this.#frames - this.#committed;
  }

  /** Database size in pages after the last commit frame; 0 if there was none. */
  get databaseSize(): number {
    return this.#dbSize;
  }

  /** The running checksum after the last valid frame. */
  get checksum(): [number, number] {
    return [this.#s0, this.#s1];
  }
}

/** Byte offset of frame `k` (0-based) in a WAL with the given page size. */
export function walFrameOffset(k: number, pageSize: number): number {
  return WAL_HEADER_SIZE + k * (WAL_FRAME_HEADER_SIZE + pageSize);
}
