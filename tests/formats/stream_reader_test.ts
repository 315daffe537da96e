import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import { StreamReader } from "../../src/formats/stream_reader.ts";
import { chunked, pseudoRandom } from "./helpers.ts";

Deno.test("StreamReader: exact reads across any chunking keep position", async () => {
  const data = pseudoRandom(1000, 3);
  for (const size of [1, 3, 64, 999, 1000]) {
    const r = new StreamReader(chunked(data, size));
    let pos = 0;
    for (const n of [0, 1, 10, 100, 24, 500, 365]) {
      const got = await r.readExact(n);
      assertEquals(got, data.subarray(pos, pos + n), `chunk ${size}, read ${n} at ${pos}`);
      pos += n;
      assertEquals(r.position, pos);
    }
    assert(await r.atEnd());
    assertEquals((await r.readUpTo(5)).length, 0);
  }
});

Deno.test("StreamReader: results stay valid after further reads", async () => {
  const data = pseudoRandom(300, 4);
  const r = new StreamReader(chunked(data, 7));
  const a = await r.readExact(10);
  const b = await r.readExact(100);
  await r.readExact(190);
  assertEquals(a, data.subarray(0, 10));
  assertEquals(b, data.subarray(10, 110));
});

Deno.test("StreamReader: readUpTo returns the short tail; readExact reports truncation", async () => {
  const data = pseudoRandom(50, 5);
  const r = new StreamReader(chunked(data, 8));
  await r.readExact(40);
  assertEquals(await r.readUpTo(20), data.subarray(40));
  const r2 = new StreamReader(chunked(data, 8));
  await r2.readExact(45);
  const err = await assertRejects(() => r2.readExact(10, "the trailer"), FormatError, "truncated");
  assertEquals(
    err.message,
    "data ends at byte 50 while reading the trailer: needed 10 bytes, only 5 remain (truncated)",
  );
});

Deno.test("StreamReader: buffered/consume/fill and skip", async () => {
  const data = pseudoRandom(40, 6);
  const r = new StreamReader(chunked(data, 16));
  assertEquals(r.buffered().length, 0);
  assert(await r.fill());
  assertEquals(r.buffered(), data.subarray(0, 16));
  r.consume(10);
  assert(await r.fill()); // Joins the 6 leftover bytes with the next chunk.
  assertEquals(r.buffered(), data.subarray(10, 32));
  assertEquals(r.position, 10);
  await r.skip(25);
  assertEquals(r.position, 35);
  await assertRejects(() => r.skip(10), FormatError, "truncated");
  assert(!(await r.fill()));
});

Deno.test("StreamReader: empty chunks are ignored; stream errors pass through unchanged", async () => {
  const parts = [new Uint8Array(0), new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])];
  const r = new StreamReader(ReadableStream.from(parts));
  assertEquals(await r.readExact(3), new Uint8Array([1, 2, 3]));
  assert(await r.atEnd());

  const failing = new ReadableStream<Uint8Array>({
    pull(c) {
      c.error(new TypeError("connection reset"));
    },
  });
  const err = await assertRejects(() => new StreamReader(failing).readExact(1), TypeError);
  assertEquals(err.message, "connection reset");
});

Deno.test("StreamReader: cancel cancels the source", async () => {
  let cancelled: unknown;
  const s = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new Uint8Array(4));
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const r = new StreamReader(s);
  await r.readExact(2);
  await r.cancel("stop");
  assertEquals(cancelled, "stop");
});
