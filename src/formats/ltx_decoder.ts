/**
 * Streaming LTX decoder (LITESTREAM-FORMATS §4): header, page frames in both format-3 encodings,
 * page index, trailer and every check of §4.10 for a single file. Memory is bounded: one page,
 * the LZ4 frame parser's 64 KiB block buffer and history, and a capped record of frame
 * positions, whatever the file size.
 */
import { Crc64 } from "./crc64.ts";
import { FormatError, hex64 } from "./format_error.ts";
import { DatabaseChecksum } from "./ltx_checksum.ts";
import {
  CHECKSUM_FLAG,
  hasChecksums,
  isSnapshot,
  LTX_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  parseLtxHeader,
  parseLtxTrailer,
  validateLtxHeader,
  validateLtxTrailer,
} from "./ltx_header.ts";
import type { LtxHeader, LtxTrailer } from "./ltx_header.ts";
import { decodeBlock, Lz4FrameParser } from "./lz4.ts";
import { lockPageNumber } from "./sqlite_header.ts";
import { StreamReader } from "./stream_reader.ts";

export interface LtxPage {
  pgno: number;
  /** Exactly `pageSize` bytes; a fresh buffer the caller may keep. */
  data: Uint8Array;
}

/** Page-frame flag: u32be size + LZ4 block (ltx v0.5.2); flags 0 = one LZ4 frame. */
export const PAGE_FLAG_SIZE = 0x1;
const PAGE_HEADER_SIZE = 6;
/** Frames whose positions are kept for exact index messages; later ones are compared by hash. */
const RECORDED_FRAMES = 16384;

/**
 * Decodes one LTX file from a stream. Call {@link readHeader}, then iterate {@link pages}; after
 * the last page the decoder reads and checks the page index and trailer, verifies the file
 * checksum (and, for snapshots with checksums, the database checksum) before the iteration ends,
 * so a completed iteration means the file is intact. Problems throw {@link FormatError}.
 */
export class LtxDecoder {
  #reader: StreamReader;
  #header: LtxHeader | undefined;
  #trailer: LtxTrailer | undefined;
  #crc = new Crc64();
  #started = false;
  #pageCount = 0;

  // LZ4 frame payloads (flags 0) are decoded into #page by the parser callback.
  #parser: Lz4FrameParser;
  #page: Uint8Array = new Uint8Array(0);
  #pageLen = 0;
  #pageOverflow = false;

  // Frames as actually found, to check the page index against.
  #framePgno: number[] = [];
  #frameOffset: number[] = [];
  #frameLength: number[] = [];
  #frameHash = new Crc64();
  #entry = new Uint8Array(16);
  #entryView = new DataView(this.#entry.buffer);

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = new StreamReader(stream);
    this.#parser = new Lz4FrameParser((chunk) => {
      if (this.#pageLen + chunk.length > this.#page.length) {
        this.#pageOverflow = true;
        return;
      }
      this.#page.set(chunk, this.#pageLen);
      this.#pageLen += chunk.length;
    }, { singleFrame: true, allowSkippable: false });
  }

  /** The header, once read. */
  get header(): LtxHeader | undefined {
    return this.#header;
  }

  /** The verified trailer, available once {@link pages} has completed. */
  get trailer(): LtxTrailer | undefined {
    return this.#trailer;
  }

  /** Page frames decoded so far. */
  get pageCount(): number {
    return this.#pageCount;
  }

  /** Reads and validates the 100-byte header (once; later calls return it again). */
  async readHeader(): Promise<LtxHeader> {
    if (this.#header) return this.#header;
    const bytes = await this.#reader.readExact(LTX_HEADER_SIZE, "the LTX header");
    const header = parseLtxHeader(bytes);
    validateLtxHeader(header);
    this.#crc.update(bytes);
    this.#header = header;
    return header;
  }

  /**
   * Yields every page in file order, then verifies the rest of the file. Iterate once. Stopping
   * early cancels the stream.
   */
  async *pages(): AsyncGenerator<LtxPage, void, undefined> {
    if (this.#started) throw new Error("LtxDecoder.pages() can only be iterated once");
    this.#started = true;
    let finished = false;
    try {
      const h = await this.readHeader();
      const r = this.#reader;
      const pageSize = h.pageSize;
      const lock = lockPageNumber(pageSize);
      const snapshot = isSnapshot(h);
      const dbsum = snapshot && hasChecksums(h) ? new DatabaseChecksum() : undefined;
      // Largest block a page could need (LZ4 worst case plus slack); bounds a corrupt size field.
      const maxBlock = pageSize + Math.ceil(pageSize / 255) + 16;
      let prev = 0;
      let expected = 1; // Snapshots: the next page number that must follow.
      for (;;) {
        const at = r.position;
        const ph = await r.readExact(PAGE_HEADER_SIZE, `the page header at byte ${at}`);
        this.#crc.update(ph);
        const pgno = ((ph[0] << 24) | (ph[1] << 16) | (ph[2] << 8) | ph[3]) >>> 0;
        const flags = (ph[4] << 8) | ph[5];
        if (pgno === 0) {
          if (flags !== 0) {
            throw new FormatError(
              `terminating page header at byte ${at} has flags 0x${hex4(flags)}; expected 0`,
            );
          }
          break;
        }
        const where = `page ${pgno} (frame at byte ${at})`;
        if (pgno > h.commit) {
          throw new FormatError(`${where} is beyond the commit size of ${h.commit} pages`);
        }
        if (pgno === lock) {
          throw new FormatError(`${where} is the lock page, which never holds data`);
        }
        if (pgno <= prev) {
          throw new FormatError(`${where} follows page ${prev}: page numbers must ascend`);
        }
        if (snapshot && pgno !== expected) {
          throw new FormatError(
            `snapshot is missing page ${expected}: the next frame, at byte ${at}, is page ${pgno}`,
          );
        }
        const page = new Uint8Array(pageSize);
        if (flags === 0) {
          await this.#decodeFramePayload(page, where, r.position);
        } else if (flags === PAGE_FLAG_SIZE) {
          const sz = await r.readExact(4, `the payload size of ${where}`);
          this.#crc.update(sz);
          const n = ((sz[0] << 24) | (sz[1] << 16) | (sz[2] << 8) | sz[3]) >>> 0;
          if (n === 0 || n > maxBlock) {
            throw new FormatError(
              `${where}: LZ4 block size ${n} is impossible for a ${pageSize}-byte page`,
            );
          }
          const block = await r.readExact(n, `the LZ4 block of ${where}`);
          let end: number;
          try {
            end = decodeBlock(block, 0, n, page, 0, pageSize, 0);
          } catch (e) {
            if (e instanceof FormatError) throw new FormatError(`${where}: ${e.message}`);
            throw e;
          }
          if (end !== pageSize) {
            throw new FormatError(
              `${where}: LZ4 block decodes to ${end} bytes, expected the page size ${pageSize}`,
            );
          }
        } else {
          throw new FormatError(
            `${where} has unsupported page flags 0x${hex4(flags)} (known: 0x0000, 0x0001)`,
          );
        }
        this.#crc.update(page);
        this.#recordFrame(pgno, at, r.position - at);
        dbsum?.add(pgno, page);
        prev = pgno;
        expected = pgno + 1 === lock ? pgno + 2 : pgno + 1;
        this.#pageCount++;
        yield { pgno, data: page };
      }
      if (snapshot && expected <= h.commit) {
        throw new FormatError(
          `snapshot ends after page ${prev} but its commit size is ${h.commit} pages: page ${expected} onwards are missing`,
        );
      }
      const pageBlockEnd = r.position;
      await this.#readIndex(pageBlockEnd);
      const trailerAt = r.position;
      const tb = await r.readExact(LTX_TRAILER_SIZE, `the trailer at byte ${trailerAt}`);
      this.#crc.updateRange(tb, 0, 8);
      const trailer = parseLtxTrailer(tb);
      const computed = this.#crc.digest() | CHECKSUM_FLAG;
      if (computed !== trailer.fileChecksum) {
        throw new FormatError(
          `file checksum mismatch: the trailer (byte ${trailerAt + 8}) says ${
            hex64(trailer.fileChecksum)
          }, the content hashes to ${hex64(computed)}`,
        );
      }
      validateLtxTrailer(h, trailer);
      if (dbsum && h.commit > 0 && dbsum.value() !== trailer.postApplyChecksum) {
        throw new FormatError(
          `snapshot pages have database checksum ${
            hex64(dbsum.value())
          }, the post-apply checksum says ${hex64(trailer.postApplyChecksum)}`,
        );
      }
      if (!(await r.atEnd())) {
        throw new FormatError(`unexpected data after the trailer, at byte ${r.position}`);
      }
      this.#trailer = trailer;
      finished = true;
    } finally {
      if (!finished) await this.#reader.cancel().catch(() => {});
    }
  }

  /** Reads every remaining page without keeping it; returns the verified trailer. */
  async finish(): Promise<LtxTrailer> {
    if (!this.#started) {
      for await (const _ of this.pages()) {
        // Draining: pages() verifies everything as it goes.
      }
    }
    if (!this.#trailer) throw new Error("LtxDecoder.finish(): pages() was not iterated to the end");
    return this.#trailer;
  }

  /** Abandons the file and cancels the stream. */
  async cancel(reason?: unknown): Promise<void> {
    await this.#reader.cancel(reason);
  }

  async #decodeFramePayload(page: Uint8Array, where: string, start: number): Promise<void> {
    const r = this.#reader;
    const p = this.#parser;
    this.#page = page;
    this.#pageLen = 0;
    this.#pageOverflow = false;
    p.reset(start);
    try {
      while (!p.done) {
        const buf = r.buffered();
        if (buf.length > 0) {
          r.consume(p.push(buf));
          if (this.#pageOverflow) {
            throw new FormatError(`LZ4 frame decodes to more than the page size ${page.length}`);
          }
        } else if (!(await r.fill())) {
          throw new FormatError(
            `data ends at byte ${r.position} inside the LZ4 frame (truncated)`,
          );
        }
      }
    } catch (e) {
      if (e instanceof FormatError) throw new FormatError(`${where}: ${e.message}`);
      throw e;
    }
    if (this.#pageLen !== page.length) {
      throw new FormatError(
        `${where}: LZ4 frame decodes to ${this.#pageLen} bytes, expected the page size ${page.length}`,
      );
    }
  }

  #recordFrame(pgno: number, offset: number, length: number): void {
    const k = this.#framePgno.length;
    if (k < RECORDED_FRAMES) {
      this.#framePgno.push(pgno);
      this.#frameOffset.push(offset);
      this.#frameLength.push(length);
    } else {
      this.#hashEntry(this.#frameHash, pgno, offset, length);
    }
  }

  #hashEntry(h: Crc64, pgno: number, offset: number, length: number): void {
    const v = this.#entryView;
    v.setUint32(0, pgno);
    v.setFloat64(4, offset);
    v.setUint32(12, length);
    h.update(this.#entry);
  }

  /**
   * Reads the page index (varint triples, 0 terminator, u64be length) and checks each entry
   * against the frames found. Varints are parsed synchronously from the buffered bytes; the
   * reader is only awaited when a varint straddles a chunk boundary.
   */
  async #readIndex(pageBlockEnd: number): Promise<void> {
    const r = this.#reader;
    const start = r.position;
    const frames = this.#pageCount;
    const tailHash = new Crc64();
    const triple = [0, 0, 0];
    let field = 0;
    let k = 0;
    let prevPgno = 0;
    let nextOffset = LTX_HEADER_SIZE;
    for (;;) {
      const buf = r.buffered();
      const entryAt = r.position;
      const len = parseVarint(buf);
      if (len === 0) {
        if (!(await r.fill())) {
          throw new FormatError(
            `data ends at byte ${r.position} inside the page index (truncated)`,
          );
        }
        continue;
      }
      if (len < 0) {
        throw new FormatError(`page index: varint at byte ${entryAt} is longer than 53 bits`);
      }
      this.#crc.updateRange(buf, 0, len);
      r.consume(len);
      const value = varintValue;
      if (field === 0 && value === 0) break; // Terminator.
      triple[field++] = value;
      if (field < 3) continue;
      field = 0;
      const [pgno, offset, length] = triple;
      const entry = `page index entry ${k} (page ${pgno}, offset ${offset}, length ${length})`;
      if (k >= frames) {
        throw new FormatError(`${entry}: the index lists more pages than the ${frames} frames`);
      }
      if (k < RECORDED_FRAMES) {
        const fp = this.#framePgno[k], fo = this.#frameOffset[k], fl = this.#frameLength[k];
        if (pgno !== fp || offset !== fo || length !== fl) {
          throw new FormatError(
            `${entry} does not match frame ${k}: page ${fp} at offset ${fo}, length ${fl}`,
          );
        }
      } else {
        if (pgno <= prevPgno) {
          throw new FormatError(`${entry}: page numbers must ascend (after page ${prevPgno})`);
        }
        if (offset !== nextOffset) {
          throw new FormatError(`${entry}: the previous frame ends at offset ${nextOffset}`);
        }
        this.#hashEntry(tailHash, pgno, offset, length);
      }
      prevPgno = pgno;
      nextOffset = offset + length;
      k++;
    }
    if (field !== 0) {
      throw new FormatError(`page index: entry ${k} is cut off by a 0 terminator`);
    }
    if (k !== frames) {
      throw new FormatError(`page index lists ${k} pages, the file has ${frames} page frames`);
    }
    if (frames > 0 && nextOffset !== pageBlockEnd - PAGE_HEADER_SIZE) {
      throw new FormatError(
        `page index: the last frame should end at byte ${
          pageBlockEnd - PAGE_HEADER_SIZE
        }, the index says ${nextOffset}`,
      );
    }
    if (frames > RECORDED_FRAMES && tailHash.digest() !== this.#frameHash.digest()) {
      throw new FormatError(
        `page index entries after entry ${RECORDED_FRAMES} do not match the page frames`,
      );
    }
    const indexLen = r.position - start;
    const lb = await r.readExact(8, "the page index length");
    this.#crc.update(lb);
    const stored = new DataView(lb.buffer, lb.byteOffset, 8).getBigUint64(0);
    if (stored !== BigInt(indexLen)) {
      throw new FormatError(
        `page index length field (byte ${
          r.position - 8
        }) says ${stored} bytes, the index is ${indexLen} bytes`,
      );
    }
  }
}

/** Value of the last varint parsed by {@link parseVarint}. */
let varintValue = 0;

/**
 * Parses an unsigned LEB128 varint at the start of `b` into {@link varintValue}; returns its
 * length, 0 if `b` ends inside it, -1 if it exceeds 2^53 (no real offset or page number does).
 */
function parseVarint(b: Uint8Array): number {
  let value = 0;
  let mul = 1;
  const n = Math.min(b.length, 8);
  for (let i = 0; i < n; i++) {
    const byte = b[i];
    value += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) {
      if (value > Number.MAX_SAFE_INTEGER) return -1;
      varintValue = value;
      return i + 1;
    }
    mul *= 128;
  }
  return b.length >= 8 ? -1 : 0;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}
