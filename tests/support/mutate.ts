/**
 * Seeded mutation of real replica objects for the fuzz tests: every case is reproducible from its
 * seed (printed on failure). Mutations are the damage storage and networks do (bit flips,
 * truncation, lost or repeated ranges, stray bytes) plus the values that break parsers (0, 1,
 * 0x7fffffff, 0xffffffff in length and count fields), optionally aimed at an object's header or
 * trailer where those fields live.
 */
import { concat } from "../formats/helpers.ts";

/** xorshift32: small, fast, deterministic. */
export class Rng {
  #x: number;
  constructor(seed: number) {
    this.#x = (seed >>> 0) || 0x9e3779b9;
  }
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#x = x;
    return x;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

const INTERESTING_U32 = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x1000,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
];

/** Where in the object a mutation lands. */
export type Region = "anywhere" | "head" | "tail";

function offsetIn(rng: Rng, len: number, region: Region, width = 1): number {
  const span = Math.max(1, len - width + 1);
  if (region === "head") return rng.int(Math.min(span, 128));
  if (region === "tail") return Math.max(0, span - 1 - rng.int(Math.min(span, 48)));
  return rng.int(span);
}

/** One mutation of `data` (never in place); `what` names it for failure messages. */
export function mutate(
  data: Uint8Array,
  rng: Rng,
  region: Region = "anywhere",
): { bytes: Uint8Array; what: string } {
  const out = data.slice();
  const len = out.length;
  if (len === 0) return { bytes: new Uint8Array([rng.int(256)]), what: "a byte into nothing" };
  switch (rng.int(9)) {
    case 0: {
      const at = offsetIn(rng, len, region);
      const bit = rng.int(8);
      out[at] ^= 1 << bit;
      return { bytes: out, what: `bit ${bit} of byte ${at} flipped` };
    }
    case 1: {
      const n = 2 + rng.int(7);
      for (let i = 0; i < n; i++) out[offsetIn(rng, len, region)] ^= 1 << rng.int(8);
      return { bytes: out, what: `${n} bits flipped` };
    }
    case 2: {
      const at = offsetIn(rng, len, region);
      const v = rng.pick([0x00, 0xff, 0x7f, 0x80, rng.int(256)]);
      out[at] = v;
      return { bytes: out, what: `byte ${at} set to ${v}` };
    }
    case 3: {
      if (len < 4) return mutate(data, rng, region);
      const at = offsetIn(rng, len, region, 4);
      const v = rng.pick(INTERESTING_U32);
      new DataView(out.buffer).setUint32(at, v, rng.int(2) === 0);
      return { bytes: out, what: `u32 at ${at} set to ${v}` };
    }
    case 4: {
      const at = region === "tail" ? len - 1 - rng.int(Math.min(len, 48)) : rng.int(len);
      return { bytes: out.subarray(0, at), what: `truncated to ${at} of ${len} bytes` };
    }
    case 5: {
      const n = 1 + rng.int(64);
      const extra = new Uint8Array(n).map(() => rng.int(256));
      return { bytes: concat([out, extra]), what: `${n} bytes appended` };
    }
    case 6: {
      const at = offsetIn(rng, len, region);
      const n = 1 + rng.int(Math.min(256, len - at));
      return {
        bytes: concat([out.subarray(0, at), out.subarray(at + n)]),
        what: `${n} bytes at ${at} lost`,
      };
    }
    case 7: {
      const at = offsetIn(rng, len, region);
      const n = 1 + rng.int(Math.min(256, len - at));
      const part = out.subarray(at, at + n);
      return {
        bytes: concat([out.subarray(0, at + n), part, out.subarray(at + n)]),
        what: `${n} bytes at ${at} repeated`,
      };
    }
    default: {
      const at = offsetIn(rng, len, region);
      const n = 1 + rng.int(16);
      const extra = new Uint8Array(n).map(() => rng.int(256));
      return {
        bytes: concat([out.subarray(0, at), extra, out.subarray(at)]),
        what: `${n} bytes inserted at ${at}`,
      };
    }
  }
}

/** 1–3 stacked mutations. */
export function mutateSome(data: Uint8Array, rng: Rng, region: Region = "anywhere") {
  let bytes = data;
  const what: string[] = [];
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    const m = mutate(bytes, rng, region);
    bytes = m.bytes;
    what.push(m.what);
  }
  return { bytes, what: what.join("; ") };
}
