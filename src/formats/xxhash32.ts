/**
 * xxHash32 (LITESTREAM-FORMATS §1.3), used by LZ4 frames for header, block and content checksums.
 * All arithmetic is 32-bit (`Math.imul`, `>>> 0`) so hashing allocates nothing per byte.
 */

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function u32le(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

function finish(h: number, tail: Uint8Array, start: number, end: number): number {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(rotl((h + Math.imul(u32le(tail, i), P3)) | 0, 17), P4);
  }
  for (; i < end; i++) {
    h = Math.imul(rotl((h + Math.imul(tail[i], P5)) | 0, 11), P1);
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** One-shot xxHash32 of `data`; returns an unsigned 32-bit number. */
export function xxhash32(data: Uint8Array, seed = 0): number {
  const h = new XxHash32(seed);
  h.update(data);
  return h.digest();
}

/** Streaming xxHash32: `update` any number of times, then `digest` (which does not reset). */
export class XxHash32 {
  #seed: number;
  #v1: number;
  #v2: number;
  #v3: number;
  #v4: number;
  /** Total length mod 2^32 (the algorithm only uses the low 32 bits) and whether it reached 16. */
  #len = 0;
  #large = false;
  /** Up to 15 bytes not yet forming a whole 16-byte stripe. */
  #buf = new Uint8Array(16);
  #bufLen = 0;

  constructor(seed = 0) {
    this.#seed = seed | 0;
    this.#v1 = (this.#seed + P1 + P2) | 0;
    this.#v2 = (this.#seed + P2) | 0;
    this.#v3 = this.#seed;
    this.#v4 = (this.#seed - P1) | 0;
  }

  update(data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    this.#len = (this.#len + n) >>> 0;
    if (this.#len >= 16 || n >= 16) this.#large = true;
    let i = 0;
    if (this.#bufLen > 0) {
      const take = Math.min(16 - this.#bufLen, n);
      this.#buf.set(data.subarray(0, take), this.#bufLen);
      this.#bufLen += take;
      i = take;
      if (this.#bufLen < 16) return;
      this.#stripes(this.#buf, 0, 16);
      this.#bufLen = 0;
    }
    const whole = i + ((n - i) & ~15);
    if (whole > i) this.#stripes(data, i, whole);
    if (whole < n) {
      this.#buf.set(data.subarray(whole), 0);
      this.#bufLen = n - whole;
    }
  }

  #stripes(b: Uint8Array, start: number, end: number): void {
    let v1 = this.#v1, v2 = this.#v2, v3 = this.#v3, v4 = this.#v4;
    if (end - start >= 64) {
      // DataView word reads are 2-3× faster than assembling words from bytes (any alignment).
      const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = start; i < end; i += 16) {
        v1 = Math.imul(rotl((v1 + Math.imul(d.getUint32(i, true), P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(d.getUint32(i + 4, true), P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(d.getUint32(i + 8, true), P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(d.getUint32(i + 12, true), P2)) | 0, 13), P1);
      }
    } else {
      for (let i = start; i < end; i += 16) {
        v1 = Math.imul(rotl((v1 + Math.imul(u32le(b, i), P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(u32le(b, i + 4), P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(u32le(b, i + 8), P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(u32le(b, i + 12), P2)) | 0, 13), P1);
      }
    }
    this.#v1 = v1;
    this.#v2 = v2;
    this.#v3 = v3;
    this.#v4 = v4;
  }

  digest(): number {
    let h: number;
    if (this.#large) {
      h = (rotl(this.#v1, 1) + rotl(this.#v2, 7) + rotl(this.#v3, 12) + rotl(this.#v4, 18)) | 0;
    } else {
      h = (this.#seed + P5) | 0;
    }
    h = (h + this.#len) | 0;
    return finish(h, this.#buf, 0, this.#bufLen);
  }
}
