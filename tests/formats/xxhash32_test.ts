import { assertEquals } from "../support/assert.ts";
import { XxHash32, xxhash32 } from "../../src/formats/xxhash32.ts";
import { pseudoRandom } from "./helpers.ts";

const enc = new TextEncoder();

Deno.test("xxhash32: check values", () => {
  assertEquals(xxhash32(new Uint8Array(0)), 0x02cc5d05);
  assertEquals(xxhash32(enc.encode("abc")), 0x32d153ff);
  // Longer than one 16-byte stripe: exercises the four-lane path.
  assertEquals(xxhash32(enc.encode("Nobody inspects the spammish repetition")), 0xe2293b2f);
});

Deno.test("xxhash32: a seed changes the hash", () => {
  const data = enc.encode("abc");
  assertEquals(xxhash32(data, 0) === xxhash32(data, 1), false);
  const h = new XxHash32(1);
  h.update(data);
  assertEquals(h.digest(), xxhash32(data, 1));
});

Deno.test("xxhash32: streaming equals one-shot for every split of many lengths", () => {
  const data = pseudoRandom(1100);
  for (const n of [0, 1, 3, 4, 15, 16, 17, 31, 32, 33, 63, 255, 256, 257, 1000, 1100]) {
    const part = data.subarray(0, n);
    const want = xxhash32(part);
    for (const split of [0, 1, 5, 16, n >> 1, n - 1]) {
      if (split < 0 || split > n) continue;
      const h = new XxHash32();
      h.update(part.subarray(0, split));
      h.update(part.subarray(split));
      assertEquals(h.digest(), want, `length ${n}, split ${split}`);
    }
    // Byte at a time.
    const h = new XxHash32();
    for (let i = 0; i < n; i++) h.update(part.subarray(i, i + 1));
    assertEquals(h.digest(), want, `length ${n}, byte by byte`);
  }
});

Deno.test("xxhash32: unaligned views hash like aligned copies (word-read fast path)", () => {
  const data = pseudoRandom(5000, 7);
  for (let shift = 0; shift < 4; shift++) {
    const view = data.subarray(shift, shift + 4096);
    assertEquals(xxhash32(view), xxhash32(view.slice()), `shift ${shift}`);
  }
});
