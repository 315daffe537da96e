import { assertEquals } from "../support/assert.ts";
import { Crc64, crc64 } from "../../src/formats/crc64.ts";
import { pseudoRandom } from "./helpers.ts";

/** Bit-at-a-time CRC-64/ISO straight from the spec (§1.4), as an independent reference. */
function referenceCrc64(data: Uint8Array, crc = 0n): bigint {
  const mask = 0xffffffffffffffffn;
  let c = ~crc & mask;
  for (const b of data) {
    c ^= BigInt(b);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ 0xd800000000000000n : c >> 1n;
  }
  return ~c & mask;
}

const enc = new TextEncoder();

Deno.test("crc64: check value of CRC-64/ISO", () => {
  assertEquals(crc64(enc.encode("123456789")), 0xb90956c775a41001n);
  assertEquals(referenceCrc64(enc.encode("123456789")), 0xb90956c775a41001n);
  assertEquals(crc64(new Uint8Array(0)), 0n);
});

Deno.test("crc64: matches the bit-wise reference for many lengths and alignments", () => {
  const data = pseudoRandom(2100, 42);
  for (const n of [1, 7, 8, 9, 63, 64, 255, 256, 257, 1000, 2048]) {
    for (const shift of [0, 1, 2, 3, 4]) {
      const view = data.subarray(shift, shift + n);
      assertEquals(crc64(view), referenceCrc64(view), `length ${n}, shift ${shift}`);
    }
  }
});

Deno.test("crc64: incremental updates compose", () => {
  const data = pseudoRandom(3000, 5);
  const whole = crc64(data);
  for (const split of [0, 1, 8, 1001, 2999, 3000]) {
    const a = data.subarray(0, split), b = data.subarray(split);
    assertEquals(crc64(b, crc64(a)), whole, `function, split ${split}`);
    const h = new Crc64();
    h.update(a);
    h.update(b);
    assertEquals(h.digest(), whole, `class, split ${split}`);
  }
  const h = new Crc64();
  h.updateRange(data, 0, 1234);
  h.updateRange(data, 1234, data.length);
  assertEquals(h.digest(), whole);
  h.reset();
  assertEquals(h.digest(), 0n);
  h.reset(crc64(data.subarray(0, 10)));
  h.update(data.subarray(10));
  assertEquals(h.digest(), whole);
  const halves = h.digestHalves();
  assertEquals((BigInt(halves.hi) << 32n) | BigInt(halves.lo), whole);
});
