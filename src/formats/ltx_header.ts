/**
 * LTX header, trailer and file names (LITESTREAM-FORMATS §4.2, §4.5, §3.1).
 */
import { FormatError, hex64 } from "./format_error.ts";
import { isValidPageSize } from "./sqlite_header.ts";

export const LTX_HEADER_SIZE = 100;
export const LTX_TRAILER_SIZE = 16;
/** Header flag: the file carries no database checksums (what Litestream v0.5 writes). */
export const LTX_FLAG_NO_CHECKSUM = 0x2;
/** Bit 63, set on every stored checksum. */
export const CHECKSUM_FLAG = 0x8000000000000000n;

const MAGIC = [0x4c, 0x54, 0x58, 0x31]; // "LTX1"

export interface LtxHeader {
  flags: number;
  pageSize: number;
  /** Database size in pages after applying the file (0 = database deleted). */
  commit: number;
  minTxid: bigint;
  maxTxid: bigint;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  preApplyChecksum: bigint;
  walOffset: bigint;
  walSize: bigint;
  walSalt1: number;
  walSalt2: number;
  nodeId: bigint;
}

export interface LtxTrailer {
  postApplyChecksum: bigint;
  fileChecksum: bigint;
}

/**
 * Parses the 100-byte header. Only the magic is checked here; {@link validateLtxHeader} applies
 * the format rules.
 */
export function parseLtxHeader(bytes: Uint8Array): LtxHeader {
  if (bytes.length < LTX_HEADER_SIZE) {
    throw new FormatError(
      `LTX header needs ${LTX_HEADER_SIZE} bytes, only ${bytes.length} available (truncated)`,
    );
  }
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== MAGIC[i]) throw new FormatError('not an LTX file: bytes 0-3 are not "LTX1"');
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, LTX_HEADER_SIZE);
  return {
    flags: v.getUint32(4),
    pageSize: v.getUint32(8),
    commit: v.getUint32(12),
    minTxid: v.getBigUint64(16),
    maxTxid: v.getBigUint64(24),
    timestamp: Number(v.getBigInt64(32)),
    preApplyChecksum: v.getBigUint64(40),
    walOffset: v.getBigInt64(48),
    walSize: v.getBigInt64(56),
    walSalt1: v.getUint32(64),
    walSalt2: v.getUint32(68),
    nodeId: v.getBigUint64(72),
  };
}

/** Throws {@link FormatError} if the header breaks a rule of §4.2 (format 3). */
export function validateLtxHeader(h: LtxHeader): void {
  if (h.flags & ~LTX_FLAG_NO_CHECKSUM) {
    const hex = `0x${(h.flags >>> 0).toString(16).padStart(8, "0")}`;
    throw new FormatError(
      h.flags === 0x1 || h.flags === 0x3
        ? `header flags ${hex}: compressed LTX format 1 bodies are not supported`
        : `header flags ${hex} (byte 4) has unknown bits; only 0x00000002 (NoChecksum) is valid`,
    );
  }
  if (!isValidPageSize(h.pageSize)) {
    throw new FormatError(`invalid page size ${h.pageSize} in header (byte 8)`);
  }
  if (h.minTxid < 1n) throw new FormatError("header min TXID is 0 (byte 16); it must be ≥ 1");
  if (h.maxTxid < h.minTxid) {
    throw new FormatError(
      `header max TXID ${formatTxid(h.maxTxid)} is below min TXID ${formatTxid(h.minTxid)}`,
    );
  }
  if (h.walOffset < 0n) throw new FormatError(`negative WAL offset ${h.walOffset} in header`);
  if (h.walSize < 0n) throw new FormatError(`negative WAL size ${h.walSize} in header`);
  if (h.walOffset === 0n && h.walSize !== 0n) {
    throw new FormatError(`header has WAL size ${h.walSize} but no WAL offset`);
  }
  if (h.walOffset === 0n && (h.walSalt1 !== 0 || h.walSalt2 !== 0)) {
    throw new FormatError("header has WAL salts but no WAL offset");
  }
  const pre = h.preApplyChecksum;
  if (isSnapshot(h)) {
    if (pre !== 0n) {
      throw new FormatError(`snapshot has pre-apply checksum ${hex64(pre)}; it must be 0`);
    }
  } else if (!hasChecksums(h)) {
    if (pre !== 0n) {
      throw new FormatError(
        `pre-apply checksum ${hex64(pre)} is set although the NoChecksum flag is; it must be 0`,
      );
    }
  } else if ((pre & CHECKSUM_FLAG) === 0n) {
    throw new FormatError(
      pre === 0n
        ? "pre-apply checksum is 0 on a non-snapshot file with checksums"
        : `pre-apply checksum ${hex64(pre)} lacks bit 63`,
    );
  }
}

/** Throws {@link FormatError} if the trailer breaks a rule of §4.5 for this header. */
export function validateLtxTrailer(h: LtxHeader, t: LtxTrailer): void {
  const post = t.postApplyChecksum;
  if (!hasChecksums(h)) {
    if (post !== 0n) {
      throw new FormatError(
        `post-apply checksum ${hex64(post)} is set although the NoChecksum flag is; it must be 0`,
      );
    }
  } else if (h.commit === 0) {
    if (post !== CHECKSUM_FLAG) {
      throw new FormatError(
        `post-apply checksum of an empty database must be ${hex64(CHECKSUM_FLAG)}, got ${
          hex64(post)
        }`,
      );
    }
  } else if ((post & CHECKSUM_FLAG) === 0n) {
    throw new FormatError(`post-apply checksum ${hex64(post)} lacks bit 63`);
  }
  if ((t.fileChecksum & CHECKSUM_FLAG) === 0n) {
    throw new FormatError(`file checksum ${hex64(t.fileChecksum)} lacks bit 63`);
  }
}

/** A snapshot holds the whole database: min TXID 1. */
export function isSnapshot(h: LtxHeader): boolean {
  return h.minTxid === 1n;
}

/** Whether the file carries database (pre-/post-apply) checksums: NoChecksum flag clear. */
export function hasChecksums(h: LtxHeader): boolean {
  return (h.flags & LTX_FLAG_NO_CHECKSUM) === 0;
}

/** Parses the 16-byte trailer. */
export function parseLtxTrailer(bytes16: Uint8Array): LtxTrailer {
  if (bytes16.length < LTX_TRAILER_SIZE) {
    throw new FormatError(
      `LTX trailer needs ${LTX_TRAILER_SIZE} bytes, only ${bytes16.length} available (truncated)`,
    );
  }
  const v = new DataView(bytes16.buffer, bytes16.byteOffset, LTX_TRAILER_SIZE);
  return { postApplyChecksum: v.getBigUint64(0), fileChecksum: v.getBigUint64(8) };
}

const FILE_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

/** `<min16>-<max16>.ltx` → TXIDs; undefined for any other name. */
export function parseLtxFileName(name: string): { minTxid: bigint; maxTxid: bigint } | undefined {
  const m = FILE_NAME.exec(name);
  if (!m) return undefined;
  return { minTxid: BigInt(`0x${m[1]}`), maxTxid: BigInt(`0x${m[2]}`) };
}

/** A TXID as 16 lowercase hex digits, as in file names. */
export function formatTxid(txid: bigint): string {
  if (txid < 0n || txid > 0xffffffffffffffffn) throw new RangeError(`TXID out of range: ${txid}`);
  return txid.toString(16).padStart(16, "0");
}

/** The file name of an LTX file covering [minTxid, maxTxid]. */
export function formatLtxFileName(minTxid: bigint, maxTxid: bigint): string {
  return `${formatTxid(minTxid)}-${formatTxid(maxTxid)}.ltx`;
}
