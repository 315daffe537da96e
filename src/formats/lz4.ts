/**
 * LZ4 block and frame decoding (LITESTREAM-FORMATS §1.3): v0.3 snapshots and WAL segments are
 * LZ4 frames, LTX page payloads are frames (ltx ≤ v0.5.1) or bare blocks (ltx v0.5.2).
 *
 * One push-based parser ({@link Lz4FrameParser}) does all frame handling and verification
 * (header, block and content checksums, content size); the whole-buffer, streaming and LTX
 * per-page decoders are thin wrappers around it, so every path checks the same things.
 */
import { FormatError, hex32 } from "./format_error.ts";
import { XxHash32, xxhash32 } from "./xxhash32.ts";

export const LZ4_FRAME_MAGIC = 0x184d2204;

/**
 * No LZ4 frame decompresses to more than this many times its own size: a sequence's output
 * beyond its literals is a match of at most 19 bytes plus 255 per extra length byte, so every
 * input byte yields fewer than 255 output bytes. Bounds what a listed object size allows.
 */
export const LZ4_MAX_EXPANSION = 255;

const LZ4_LEGACY_MAGIC = 0x184c2102;
/** Skippable frames use magics 0x184D2A50 … 0x184D2A5F. */
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Linked blocks may reference up to 64 KiB of earlier output. */
const HISTORY = 65536;

/**
 * Decodes one LZ4 block `src` into `dst` starting at `dstPos` and returns the new end position.
 * Matches may reach back before `dstPos` (anything already in `dst` is history, which linked
 * blocks need). Throws {@link FormatError} on malformed input or when the output would not fit.
 */
export function lz4DecodeBlock(src: Uint8Array, dst: Uint8Array, dstPos: number): number {
  return decodeBlock(src, 0, src.length, dst, dstPos, dst.length, 0);
}

/**
 * Core block decoder over src[sPos, sEnd) into dst[dPos, dEnd); matches may not reach below
 * `dLow`. Short copies use byte loops (cheaper than creating subarrays); long ones use the
 * native `set`/`copyWithin`.
 */
export function decodeBlock(
  src: Uint8Array,
  sPos: number,
  sEnd: number,
  dst: Uint8Array,
  dPos: number,
  dEnd: number,
  dLow: number,
): number {
  const sStart = sPos;
  const dStart = dPos;
  if (sPos >= sEnd) throw new FormatError("LZ4 block is empty");
  for (;;) {
    const tokenAt = sPos;
    const token = src[sPos++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (sPos >= sEnd) throw blockError("literal length runs past the end", tokenAt, sStart);
        b = src[sPos++];
        lit += b;
      } while (b === 255);
    }
    if (lit > 0) {
      if (sPos + lit > sEnd) {
        throw blockError(`literal run of ${lit} bytes runs past the end`, tokenAt, sStart);
      }
      if (dPos + lit > dEnd) throw overrun(dPos + lit - dStart, dEnd - dStart, tokenAt, sStart);
      if (lit < 32) {
        for (let i = 0; i < lit; i++) dst[dPos + i] = src[sPos + i];
      } else {
        dst.set(src.subarray(sPos, sPos + lit), dPos);
      }
      sPos += lit;
      dPos += lit;
    }
    if (sPos >= sEnd) return dPos; // The last sequence carries literals only.
    if (sPos + 2 > sEnd) throw blockError("match offset is cut off", tokenAt, sStart);
    const offset = src[sPos] | (src[sPos + 1] << 8);
    sPos += 2;
    if (offset === 0) throw blockError("match offset is 0", tokenAt, sStart);
    let len = (token & 15) + 4;
    if (len === 19) {
      let b: number;
      do {
        if (sPos >= sEnd) throw blockError("match length runs past the end", tokenAt, sStart);
        b = src[sPos++];
        len += b;
      } while (b === 255);
    }
    const m = dPos - offset;
    if (m < dLow) {
      throw blockError(
        `match offset ${offset} reaches ${dLow - m} bytes before the available output`,
        tokenAt,
        sStart,
      );
    }
    if (dPos + len > dEnd) throw overrun(dPos + len - dStart, dEnd - dStart, tokenAt, sStart);
    if (len < 32) {
      // Byte by byte: correct for overlapping matches (offset < len repeats the pattern).
      for (let i = 0; i < len; i++) dst[dPos + i] = dst[m + i];
      dPos += len;
    } else if (offset >= len) {
      dst.copyWithin(dPos, m, m + len);
      dPos += len;
    } else if (offset === 1) {
      dst.fill(dst[m], dPos, dPos + len);
      dPos += len;
    } else {
      // Overlapping long match: each copy doubles the repeated pattern already written.
      const end = dPos + len;
      while (dPos < end) {
        const n = Math.min(dPos - m, end - dPos);
        dst.copyWithin(dPos, m, m + n);
        dPos += n;
      }
    }
  }
}

function blockError(what: string, tokenAt: number, sStart: number): FormatError {
  return new FormatError(
    `malformed LZ4 block: ${what} (sequence at block byte ${tokenAt - sStart})`,
  );
}

function overrun(need: number, room: number, tokenAt: number, sStart: number): FormatError {
  return new FormatError(
    `LZ4 block decodes to more than ${room} bytes (at least ${need}; sequence at block byte ${
      tokenAt - sStart
    })`,
  );
}

/** A parsed frame descriptor (FLG, BD and optional fields). */
export interface Lz4FrameDescriptor {
  blockIndependence: boolean;
  blockChecksum: boolean;
  contentChecksum: boolean;
  /** Declared decompressed size, when the frame carries one. */
  contentSize: number | undefined;
  /** Maximum decompressed block size: 64 KiB, 256 KiB, 1 MiB or 4 MiB. */
  blockMaxSize: number;
}

const BLOCK_MAX: Record<number, number> = { 4: 65536, 5: 262144, 6: 1048576, 7: 4194304 };

// Parser states; each (except SKIP) waits for `need` bytes.
const MAGIC = 0;
const FLG_BD = 1;
const DESC_REST = 2;
const SKIP_SIZE = 3;
const SKIP = 4;
const BLOCK_SIZE = 5;
const BLOCK_DATA = 6;
const CONTENT_SUM = 7;

export interface Lz4FrameParserOptions {
  /** Stop after one LZ4 frame (`push` then returns how many bytes belong to it). */
  singleFrame?: boolean;
  /** Accept skippable frames (default true; LTX page payloads must be a plain frame). */
  allowSkippable?: boolean;
  /** Added to byte offsets in error messages (position of the first byte in the container). */
  baseOffset?: number;
}

/**
 * Incremental LZ4 frame parser: feed compressed bytes in any chunking with {@link push}; each
 * decoded block is passed to `onData` as a view that is only valid during the call (copy it to
 * keep it). Memory is one block buffer plus 64 KiB of history, whatever the input size.
 */
export class Lz4FrameParser {
  #onData: (chunk: Uint8Array) => void;
  #singleFrame: boolean;
  #allowSkippable: boolean;
  #base: number;

  #state = MAGIC;
  #need = 4;
  /** Bytes consumed so far (relative to the base offset). */
  #pos = 0;
  /** Start of the item being parsed, for messages. */
  #itemPos = 0;
  #acc = new Uint8Array(16);
  #accLen = 0;
  #skipLeft = 0;
  #frames = 0;
  #done = false;

  // Current frame.
  #frameStart = 0;
  #flg = 0;
  #bd = 0;
  #desc: Lz4FrameDescriptor | undefined;
  #block = 0;
  #blockStored = false;
  #blockSize = 0;
  #produced = 0;
  #hash = new XxHash32();
  /** [0, HISTORY): history of linked blocks, right-aligned; [HISTORY, …): block output. */
  #scratch = new Uint8Array(0);
  #histLen = 0;

  constructor(onData: (chunk: Uint8Array) => void, opts: Lz4FrameParserOptions = {}) {
    this.#onData = onData;
    this.#singleFrame = opts.singleFrame ?? false;
    this.#allowSkippable = opts.allowSkippable ?? true;
    this.#base = opts.baseOffset ?? 0;
  }

  /** Readies the parser for a new input (keeps its buffers). */
  reset(baseOffset = 0): void {
    this.#base = baseOffset;
    this.#state = MAGIC;
    this.#need = 4;
    this.#pos = 0;
    this.#itemPos = 0;
    this.#accLen = 0;
    this.#frames = 0;
    this.#done = false;
  }

  /** Number of complete LZ4 frames decoded. */
  get frames(): number {
    return this.#frames;
  }

  /** In single-frame mode: the frame is complete and no more input is consumed. */
  get done(): boolean {
    return this.#done;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.#pos;
  }

  /**
   * Consumes data[start, end) and returns how many bytes were used: all of them, except in
   * single-frame mode once the frame is complete.
   */
  push(data: Uint8Array, start = 0, end = data.length): number {
    let p = start;
    while (p < end && !this.#done) {
      if (this.#state === SKIP) {
        const n = Math.min(end - p, this.#skipLeft);
        p += n;
        this.#pos += n;
        this.#skipLeft -= n;
        if (this.#skipLeft === 0) this.#expectMagic();
        continue;
      }
      const need = this.#need;
      let buf: Uint8Array;
      let at: number;
      if (this.#accLen === 0 && end - p >= need) {
        buf = data;
        at = p;
        p += need;
      } else {
        const n = Math.min(need - this.#accLen, end - p);
        if (this.#acc.length < need) {
          const bigger = new Uint8Array(Math.max(need, this.#acc.length * 2));
          bigger.set(this.#acc.subarray(0, this.#accLen));
          this.#acc = bigger;
        }
        this.#acc.set(data.subarray(p, p + n), this.#accLen);
        this.#accLen += n;
        p += n;
        if (this.#accLen < need) break;
        buf = this.#acc;
        at = 0;
        this.#accLen = 0;
      }
      this.#itemPos = this.#pos;
      this.#pos += need;
      this.#step(buf, at);
    }
    return p - start;
  }

  /** Declares the end of input; throws if it ends inside a frame or held no frame at all. */
  finish(): void {
    if (this.#done) return;
    // Bytes held for an unfinished item were consumed from the input too.
    const at = this.#base + this.#pos + this.#accLen;
    if (this.#state === SKIP || this.#state === SKIP_SIZE) {
      throw new FormatError(
        `LZ4 data is truncated: it ends at byte ${at} inside a skippable frame`,
      );
    }
    if (this.#state !== MAGIC || this.#accLen > 0) {
      throw new FormatError(
        `LZ4 data is truncated: it ends at byte ${at} inside the frame that starts at byte ${
          this.#base + this.#frameStart
        }${this.#state >= BLOCK_SIZE ? ` (block ${this.#block})` : ""}`,
      );
    }
    if (this.#frames === 0) {
      throw new FormatError(
        at === 0 ? "no LZ4 frame: the data is empty" : "no LZ4 frame: only skippable frames",
      );
    }
    giveBackScratch(this.#scratch);
    this.#scratch = new Uint8Array(0);
  }

  #expectMagic(): void {
    this.#state = MAGIC;
    this.#need = 4;
  }

  #err(what: string): FormatError {
    return new FormatError(`${what} (LZ4 frame at byte ${this.#base + this.#frameStart})`);
  }

  #step(b: Uint8Array, i: number): void {
    switch (this.#state) {
      case MAGIC: {
        const magic = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
        if (magic === LZ4_FRAME_MAGIC) {
          this.#frameStart = this.#itemPos;
          this.#state = FLG_BD;
          this.#need = 2;
        } else if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC && this.#allowSkippable) {
          this.#state = SKIP_SIZE;
          this.#need = 4;
        } else {
          const at = this.#base + this.#itemPos;
          throw new FormatError(
            magic === LZ4_LEGACY_MAGIC
              ? `legacy LZ4 format (magic ${hex32(magic)}) at byte ${at} is not supported`
              : `not an LZ4 frame: magic ${hex32(magic)} at byte ${at}`,
          );
        }
        return;
      }
      case SKIP_SIZE: {
        this.#skipLeft = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
        if (this.#skipLeft === 0) this.#expectMagic();
        else this.#state = SKIP;
        return;
      }
      case FLG_BD: {
        const flg = b[i], bd = b[i + 1];
        if (flg >>> 6 !== 1) this.#fail(`unsupported frame version ${flg >>> 6} in FLG`);
        if (flg & 0x02) this.#fail("reserved FLG bit 1 is set");
        if (flg & 0x01) this.#fail("frames with a dictionary ID are not supported");
        if (bd & 0x8f) this.#fail(`reserved BD bits are set (BD ${hex8(bd)})`);
        if (BLOCK_MAX[bd >>> 4] === undefined) {
          this.#fail(`invalid block maximum size code ${bd >>> 4}`);
        }
        this.#flg = flg;
        this.#bd = bd;
        this.#state = DESC_REST;
        this.#need = (flg & 0x08 ? 8 : 0) + 1;
        return;
      }
      case DESC_REST:
        return this.#descriptor(b, i);
      case BLOCK_SIZE: {
        const v = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
        const desc = this.#desc!;
        if (v === 0) {
          if (desc.contentSize !== undefined && desc.contentSize !== this.#produced) {
            this.#fail(
              `content size mismatch: header says ${desc.contentSize} bytes, blocks hold ${this.#produced}`,
            );
          }
          if (desc.contentChecksum) {
            this.#state = CONTENT_SUM;
            this.#need = 4;
          } else {
            this.#endFrame();
          }
          return;
        }
        this.#blockStored = v >>> 31 === 1;
        this.#blockSize = v & 0x7fffffff;
        if (this.#blockSize > desc.blockMaxSize) {
          this.#fail(
            `block ${this.#block} at byte ${
              this.#base + this.#itemPos
            } claims ${this.#blockSize} bytes, more than the frame's maximum block size ${desc.blockMaxSize}`,
          );
        }
        this.#state = BLOCK_DATA;
        this.#need = this.#blockSize + (desc.blockChecksum ? 4 : 0);
        return;
      }
      case BLOCK_DATA:
        return this.#blockData(b, i);
      case CONTENT_SUM: {
        const stored = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
        const actual = this.#hash.digest();
        if (stored !== actual) {
          this.#fail(
            `content checksum mismatch: stored ${hex32(stored)}, computed ${
              hex32(actual)
            } over ${this.#produced} decoded bytes`,
          );
        }
        this.#endFrame();
        return;
      }
    }
  }

  #fail(what: string): never {
    throw this.#err(what);
  }

  #descriptor(b: Uint8Array, i: number): void {
    const flg = this.#flg;
    // The header checksum covers FLG, BD and the optional fields.
    const hdr = new Uint8Array(2 + this.#need - 1);
    hdr[0] = flg;
    hdr[1] = this.#bd;
    hdr.set(b.subarray(i, i + this.#need - 1), 2);
    const hc = b[i + this.#need - 1];
    const want = (xxhash32(hdr) >>> 8) & 0xff;
    if (hc !== want) {
      this.#fail(`header checksum mismatch: stored ${hex8(hc)}, computed ${hex8(want)}`);
    }
    let contentSize: number | undefined;
    if (flg & 0x08) {
      const lo = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
      const hi = (b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24)) >>> 0;
      if (hi >= 0x200000) this.#fail("declared content size exceeds 2^53 bytes");
      contentSize = hi * 0x100000000 + lo;
    }
    const desc: Lz4FrameDescriptor = {
      blockIndependence: (flg & 0x20) !== 0,
      blockChecksum: (flg & 0x10) !== 0,
      contentChecksum: (flg & 0x04) !== 0,
      contentSize,
      blockMaxSize: BLOCK_MAX[this.#bd >>> 4],
    };
    this.#desc = desc;
    this.#block = 0;
    this.#produced = 0;
    this.#histLen = 0;
    this.#hash = new XxHash32();
    const room = HISTORY + desc.blockMaxSize;
    if (this.#scratch.length < room) this.#scratch = takeScratch(room);
    this.#state = BLOCK_SIZE;
    this.#need = 4;
  }

  #blockData(b: Uint8Array, i: number): void {
    const desc = this.#desc!;
    const size = this.#blockSize;
    if (desc.blockChecksum) {
      const j = i + size;
      const stored = (b[j] | (b[j + 1] << 8) | (b[j + 2] << 16) | (b[j + 3] << 24)) >>> 0;
      const actual = xxhash32(b.subarray(i, j));
      if (stored !== actual) {
        this.#fail(
          `block ${this.#block} at byte ${
            this.#base + this.#itemPos - 4
          }: block checksum mismatch: stored ${hex32(stored)}, computed ${hex32(actual)}`,
        );
      }
    }
    let out: Uint8Array;
    const s = this.#scratch;
    if (this.#blockStored) {
      out = b.subarray(i, i + size);
    } else {
      const low = desc.blockIndependence ? HISTORY : HISTORY - this.#histLen;
      let end: number;
      try {
        end = decodeBlock(b, i, i + size, s, HISTORY, HISTORY + desc.blockMaxSize, low);
      } catch (e) {
        if (e instanceof FormatError) {
          this.#fail(
            `block ${this.#block} at byte ${this.#base + this.#itemPos - 4}: ${e.message}`,
          );
        }
        throw e;
      }
      out = s.subarray(HISTORY, end);
    }
    const len = out.length;
    this.#produced += len;
    if (desc.contentSize !== undefined && this.#produced > desc.contentSize) {
      this.#fail(
        `content size mismatch: header says ${desc.contentSize} bytes, blocks hold more`,
      );
    }
    if (desc.contentChecksum) this.#hash.update(out);
    this.#onData(out);
    if (!desc.blockIndependence) {
      // Keep the last 64 KiB of output right-aligned before HISTORY for the next block.
      const keep = Math.min(HISTORY, this.#histLen + len);
      if (this.#blockStored) {
        if (len >= HISTORY) {
          s.set(out.subarray(len - HISTORY), 0);
        } else {
          const old = keep - len;
          s.copyWithin(HISTORY - keep, HISTORY - old, HISTORY);
          s.set(out, HISTORY - len);
        }
      } else {
        s.copyWithin(HISTORY - keep, HISTORY + len - keep, HISTORY + len);
      }
      this.#histLen = keep;
    }
    this.#block++;
    this.#state = BLOCK_SIZE;
    this.#need = 4;
  }

  #endFrame(): void {
    this.#frames++;
    this.#expectMagic();
    if (this.#singleFrame) this.#done = true;
  }
}

function hex8(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

/**
 * Decodes a whole buffer of concatenated LZ4 frames (skippable frames are skipped), verifying
 * every checksum and declared content size present. Throws {@link FormatError}.
 */
export function lz4DecodeFrames(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const parser = new Lz4FrameParser((chunk) => {
    parts.push(chunk.slice());
    total += chunk.length;
  });
  parser.push(data);
  parser.finish();
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Litestream's frames declare 4 MiB blocks, so every parser needs a 4 MiB scratch buffer even for
 * a 200-byte WAL segment. Restores decode hundreds of segments one after another: reusing the
 * buffers of finished parsers avoids allocating (and zeroing, and collecting) ~1 GB per restore.
 */
const scratchPool: Uint8Array<ArrayBuffer>[] = [];

function takeScratch(size: number): Uint8Array<ArrayBuffer> {
  const i = scratchPool.findIndex((b) => b.length >= size);
  return i >= 0 ? scratchPool.splice(i, 1)[0] : new Uint8Array(size);
}

function giveBackScratch(buf: Uint8Array<ArrayBuffer>): void {
  if (buf.length > 0 && scratchPool.length < 4) scratchPool.push(buf);
}

/**
 * A stream that decodes concatenated LZ4 frames, verifying all checksums. The stream errors with
 * {@link FormatError} on corrupt data, when the input ends inside a frame (a truncated object) or
 * when it holds no LZ4 frame at all. Memory stays at one block (≤ 4 MiB) plus 64 KiB of history
 * beyond what the consumer has not read yet.
 */
export function lz4FrameDecoderStream(): TransformStream<Uint8Array, Uint8Array> {
  let controller: TransformStreamDefaultController<Uint8Array> | undefined;
  // Decoded views point into reused buffers: enqueue copies.
  const parser = new Lz4FrameParser((chunk) => controller!.enqueue(chunk.slice()));
  return new TransformStream<Uint8Array, Uint8Array>({
    start(c) {
      controller = c;
    },
    transform(chunk) {
      parser.push(chunk);
    },
    flush() {
      parser.finish();
    },
  });
}
