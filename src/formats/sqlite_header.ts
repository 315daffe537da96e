/**
 * The SQLite database header (first 100 bytes of a database file, LITESTREAM-FORMATS §1.1).
 */
import { FormatError } from "./format_error.ts";

export const SQLITE_HEADER_SIZE = 100;
const MAGIC = "SQLite format 3\0";

export interface DatabaseHeader {
  /** Bytes per page, 512 … 65536 (the stored value 1 means 65536). */
  pageSize: number;
  /** File format write/read version: 1 = rollback journal, 2 = WAL. */
  writeVersion: number;
  readVersion: number;
  /** Unused bytes at the end of each page. */
  reservedBytes: number;
  changeCounter: number;
  /** Database size in pages; trustworthy only when {@link pageCountValid}. */
  pageCount: number;
  /** True when the page count may be trusted (version-valid-for equals the change counter). */
  pageCountValid: boolean;
  freelistTrunk: number;
  freelistCount: number;
  schemaCookie: number;
  schemaFormat: number;
  /** 1 = UTF-8, 2 = UTF-16le, 3 = UTF-16be. */
  textEncoding: number;
  userVersion: number;
  applicationId: number;
  versionValidFor: number;
  /** SQLITE_VERSION_NUMBER of the library that last wrote the file, e.g. 3045001. */
  sqliteVersion: number;
}

/** True for 512, 1024, … 65536. */
export function isValidPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** Parses the first 100 bytes of a database file; FormatError on a bad magic or page size. */
export function parseDatabaseHeader(bytes: Uint8Array): DatabaseHeader {
  if (bytes.length < SQLITE_HEADER_SIZE) {
    throw new FormatError(
      `SQLite header needs ${SQLITE_HEADER_SIZE} bytes, only ${bytes.length} available`,
    );
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC.charCodeAt(i)) {
      throw new FormatError(
        `not a SQLite database: bytes 0-15 are not "SQLite format 3\\0" (byte ${i} differs)`,
      );
    }
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, SQLITE_HEADER_SIZE);
  const raw = v.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (!isValidPageSize(pageSize)) {
    throw new FormatError(`invalid SQLite page size ${raw} at byte 16`);
  }
  const changeCounter = v.getUint32(24);
  const versionValidFor = v.getUint32(92);
  const pageCount = v.getUint32(28);
  return {
    pageSize,
    writeVersion: bytes[18],
    readVersion: bytes[19],
    reservedBytes: bytes[20],
    changeCounter,
    pageCount,
    pageCountValid: pageCount > 0 && versionValidFor === changeCounter,
    freelistTrunk: v.getUint32(32),
    freelistCount: v.getUint32(36),
    schemaCookie: v.getUint32(40),
    schemaFormat: v.getUint32(44),
    textEncoding: v.getUint32(56),
    userVersion: v.getUint32(60),
    applicationId: v.getUint32(68),
    versionValidFor,
    sqliteVersion: v.getUint32(96),
  };
}

/**
 * The lock ("pending-byte") page: the page holding file offset 0x40000000. SQLite never stores
 * data there, and it never appears in a WAL or LTX file.
 */
export function lockPageNumber(pageSize: number): number {
  if (!isValidPageSize(pageSize)) throw new FormatError(`invalid page size ${pageSize}`);
  return 0x40000000 / pageSize + 1;
}

/**
 * How far a commit may grow a database beyond the pages it writes: the largest lock page (64 KiB),
 * which is never written (SQLite's wal.c `walCheckpoint` allows exactly this much).
 */
export const GROWTH_SLACK_BYTES = 65536;

/**
 * Null if a commit that writes `pagesWritten` pages may take a `fileBytes`-byte database to
 * `databaseSize` pages, else why not (a phrase to follow the commit's name). SQLite's checkpoint
 * (wal.c `walCheckpoint`) refuses with SQLITE_CORRUPT ("database disk image is malformed") when
 * the final size exceeds the current file plus the pages written plus the lock page: a database
 * only grows by pages a transaction allocates, and SQLite writes every page it allocates.
 */
export function databaseGrowthProblem(
  fileBytes: number,
  pageSize: number,
  pagesWritten: number,
  databaseSize: number,
  written = "pages written",
): string | null {
  const want = databaseSize * pageSize;
  const allowed = fileBytes + GROWTH_SLACK_BYTES + pagesWritten * pageSize;
  if (want <= fileBytes || want <= allowed) return null;
  return `sets the database to ${databaseSize} pages (${want} bytes), but ${pagesWritten} ${written} can grow a ${fileBytes}-byte database to at most ${allowed} bytes`;
}
