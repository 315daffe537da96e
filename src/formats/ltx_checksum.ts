/**
 * LTX database checksums (LITESTREAM-FORMATS §4.7): each page hashes to
 * P(pgno, data) = bit63 | CRC-64/ISO(u32be(pgno) ‖ data), and the database checksum is
 * bit63 | XOR of P over pages 1 … N except the lock page. XOR makes it incremental: removing a
 * page's old content and adding its new content updates C without rereading the database.
 */
import { Crc64 } from "./crc64.ts";
import { CHECKSUM_FLAG } from "./ltx_header.ts";
import { lockPageNumber } from "./sqlite_header.ts";

const crc = new Crc64();
const pgnoBytes = new Uint8Array(4);

// Result halves of `pageHalves` (module state: no allocation per page).
let pLo = 0;
let pHi = 0;

function pageHalves(pgno: number, data: Uint8Array): void {
  pgnoBytes[0] = pgno >>> 24;
  pgnoBytes[1] = pgno >>> 16;
  pgnoBytes[2] = pgno >>> 8;
  pgnoBytes[3] = pgno;
  crc.reset();
  crc.update(pgnoBytes);
  crc.update(data);
  const d = crc.digestHalves();
  pLo = d.lo;
  pHi = d.hi | 0x80000000;
}

function toBigint(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** P(pgno, data): the page's checksum with bit 63 set. */
export function pageChecksum(pgno: number, data: Uint8Array): bigint {
  pageHalves(pgno, data);
  return toBigint(pLo, pHi);
}

/**
 * Rolling database checksum. Feed the current content of every page once with {@link add};
 * when a page changes, {@link remove} its old content and {@link add} the new one; when the
 * database shrinks, {@link remove} the dropped pages. The caller skips the lock page.
 */
export class DatabaseChecksum {
  #lo = 0;
  #hi = 0;
  #touched = false;

  /** Starts from a known checksum, e.g. a file's pre-apply checksum. */
  constructor(initial = 0n) {
    if (initial !== 0n) {
      this.#lo = Number(initial & 0xffffffffn) | 0;
      this.#hi = Number((initial >> 32n) & 0x7fffffffn) | 0;
      this.#touched = true;
    }
  }

  add(pgno: number, data: Uint8Array): void {
    pageHalves(pgno, data);
    this.#lo ^= pLo;
    this.#hi ^= pHi;
    this.#touched = true;
  }

  /** XOR is its own inverse: removing is adding the same page content again. */
  remove(pgno: number, data: Uint8Array): void {
    this.add(pgno, data);
  }

  /**
   * bit63 | XOR of the page checksums. A checksum that never saw a page is 0, as the reference
   * implementation reports for an empty database file; one whose pages were all removed again
   * is exactly bit 63, the value a "database deleted" (commit 0) file carries.
   */
  value(): bigint {
    if (!this.#touched) return 0n;
    return CHECKSUM_FLAG | toBigint(this.#lo, this.#hi & 0x7fffffff);
  }
}

/** C of a whole database image (pages 1 … length/pageSize, skipping the lock page). */
export function databaseChecksum(image: Uint8Array, pageSize: number): bigint {
  const sum = new DatabaseChecksum();
  const lock = lockPageNumber(pageSize);
  const pages = Math.floor(image.length / pageSize);
  for (let p = 1; p <= pages; p++) {
    if (p === lock) continue;
    sum.add(p, image.subarray((p - 1) * pageSize, p * pageSize));
  }
  return sum.value();
}
