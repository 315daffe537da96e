/**
 * CRC-64/ISO as used by LTX (LITESTREAM-FORMATS §1.4): reflected polynomial 0xD800000000000000,
 * init and final XOR all ones. The 64-bit register is kept as two 32-bit halves and bytes are
 * consumed eight at a time with slicing-by-8 tables, so no BigInt math happens per byte; BigInt
 * appears only at the API boundary.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** `LO[k*256+n]`/`HI[k*256+n]`: CRC register after byte n followed by k zero bytes (raw update). */
const LO = new Int32Array(8 * 256);
const HI = new Int32Array(8 * 256);

(function buildTables() {
  for (let n = 0; n < 256; n++) {
    let lo = n, hi = 0;
    for (let k = 0; k < 8; k++) {
      const odd = lo & 1;
      lo = (lo >>> 1) | ((hi & 1) << 31);
      hi = hi >>> 1;
      if (odd) hi ^= 0xd8000000;
    }
    LO[n] = lo;
    HI[n] = hi;
  }
  for (let k = 1; k < 8; k++) {
    for (let n = 0; n < 256; n++) {
      const plo = LO[(k - 1) * 256 + n], phi = HI[(k - 1) * 256 + n];
      const t = plo & 0xff;
      LO[k * 256 + n] = ((plo >>> 8) | (phi << 24)) ^ LO[t];
      HI[k * 256 + n] = (phi >>> 8) ^ HI[t];
    }
  }
})();

// Result registers of `update` (module state instead of a returned tuple: no allocation).
let rLo = 0;
let rHi = 0;

/** Raw (already inverted) register update over data[start, end); result in rLo/rHi. */
function update(lo: number, hi: number, data: Uint8Array, start: number, end: number): void {
  let i = start;
  const end8 = start + ((end - start) & ~7);
  const at = data.byteOffset + start;
  if (LITTLE_ENDIAN && (at & 3) === 0 && end8 - start >= 64) {
    // Aligned on a little-endian host: an Int32Array view is the fastest way to read words.
    const w = new Int32Array(data.buffer, at, (end8 - start) >>> 2);
    for (let j = 0; j < w.length; j += 2) {
      lo ^= w[j];
      hi ^= w[j + 1];
      const a = 7 * 256 + (lo & 0xff),
        b = 6 * 256 + ((lo >>> 8) & 0xff),
        c = 5 * 256 + ((lo >>> 16) & 0xff),
        d = 4 * 256 + (lo >>> 24),
        e = 3 * 256 + (hi & 0xff),
        f = 2 * 256 + ((hi >>> 8) & 0xff),
        g = 256 + ((hi >>> 16) & 0xff),
        h = hi >>> 24;
      lo = LO[a] ^ LO[b] ^ LO[c] ^ LO[d] ^ LO[e] ^ LO[f] ^ LO[g] ^ LO[h];
      hi = HI[a] ^ HI[b] ^ HI[c] ^ HI[d] ^ HI[e] ^ HI[f] ^ HI[g] ^ HI[h];
    }
    i = end8;
  } else if (end8 - start >= 64) {
    // Unaligned: DataView word reads still beat assembling words from bytes.
    const w = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (; i < end8; i += 8) {
      lo ^= w.getInt32(i, true);
      hi ^= w.getInt32(i + 4, true);
      const a = 7 * 256 + (lo & 0xff),
        b = 6 * 256 + ((lo >>> 8) & 0xff),
        c = 5 * 256 + ((lo >>> 16) & 0xff),
        d = 4 * 256 + (lo >>> 24),
        e = 3 * 256 + (hi & 0xff),
        f = 2 * 256 + ((hi >>> 8) & 0xff),
        g = 256 + ((hi >>> 16) & 0xff),
        h = hi >>> 24;
      lo = LO[a] ^ LO[b] ^ LO[c] ^ LO[d] ^ LO[e] ^ LO[f] ^ LO[g] ^ LO[h];
      hi = HI[a] ^ HI[b] ^ HI[c] ^ HI[d] ^ HI[e] ^ HI[f] ^ HI[g] ^ HI[h];
    }
  }
  for (; i < end8; i += 8) {
    lo ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    hi ^= data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24);
    const a = 7 * 256 + (lo & 0xff),
      b = 6 * 256 + ((lo >>> 8) & 0xff),
      c = 5 * 256 + ((lo >>> 16) & 0xff),
      d = 4 * 256 + (lo >>> 24),
      e = 3 * 256 + (hi & 0xff),
      f = 2 * 256 + ((hi >>> 8) & 0xff),
      g = 256 + ((hi >>> 16) & 0xff),
      h = hi >>> 24;
    lo = LO[a] ^ LO[b] ^ LO[c] ^ LO[d] ^ LO[e] ^ LO[f] ^ LO[g] ^ LO[h];
    hi = HI[a] ^ HI[b] ^ HI[c] ^ HI[d] ^ HI[e] ^ HI[f] ^ HI[g] ^ HI[h];
  }
  for (; i < end; i++) {
    const t = (lo ^ data[i]) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ LO[t];
    hi = (hi >>> 8) ^ HI[t];
  }
  rLo = lo;
  rHi = hi;
}

function toHalves(crc: bigint): [number, number] {
  const inv = BigInt.asUintN(64, ~crc);
  return [Number(inv & 0xffffffffn) | 0, Number(inv >> 32n) | 0];
}

function toBigint(lo: number, hi: number): bigint {
  return (BigInt(~hi >>> 0) << 32n) | BigInt(~lo >>> 0);
}

/**
 * CRC-64/ISO of `data`, continuing from `crc` (the result over earlier bytes), so
 * `crc64(b, crc64(a)) === crc64(a ‖ b)`.
 */
export function crc64(data: Uint8Array, crc = 0n): bigint {
  const [lo, hi] = toHalves(crc);
  update(lo, hi, data, 0, data.length);
  return toBigint(rLo, rHi);
}

/** Streaming CRC-64/ISO; `digest` does not reset, so it can be read between updates. */
export class Crc64 {
  #lo: number;
  #hi: number;

  constructor(crc = 0n) {
    [this.#lo, this.#hi] = toHalves(crc);
  }

  /** Starts over from `crc` (default: the empty input). */
  reset(crc = 0n): void {
    [this.#lo, this.#hi] = toHalves(crc);
  }

  update(data: Uint8Array): void {
    update(this.#lo, this.#hi, data, 0, data.length);
    this.#lo = rLo;
    this.#hi = rHi;
  }

  /** Feeds data[start, end) without creating a subarray. */
  updateRange(data: Uint8Array, start: number, end: number): void {
    update(this.#lo, this.#hi, data, start, end);
    this.#lo = rLo;
    this.#hi = rHi;
  }

  digest(): bigint {
    return toBigint(this.#lo, this.#hi);
  }

  /** The CRC as unsigned 32-bit halves, for callers that combine values without BigInt. */
  digestHalves(): { lo: number; hi: number } {
    return { lo: ~this.#lo >>> 0, hi: ~this.#hi >>> 0 };
  }
}
