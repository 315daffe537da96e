import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../support/assert.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import {
  lz4DecodeBlock,
  lz4DecodeFrames,
  lz4FrameDecoderStream,
  Lz4FrameParser,
} from "../../src/formats/lz4.ts";
import { xxhash32 } from "../../src/formats/xxhash32.ts";
import {
  chunked,
  collect,
  concat,
  LZ4_FIXTURES,
  readFixture,
  readTsv,
  sha256hex,
} from "./helpers.ts";

/** Fixture → the original it decompresses to (originals.tsv, written by the generator). */
const FIXTURES: Record<string, string> = {
  "hello.txt.lz4": "hello.txt",
  "hello.txt.B4-BX.lz4": "hello.txt",
  "pages.db.B4.lz4": "pages.db",
  "pages.db.B4D.lz4": "pages.db",
  "pages.db.B4D-BX.lz4": "pages.db",
  "pages.db.B4D-hc.lz4": "pages.db",
  "pages.db.B5-size.lz4": "pages.db",
  "rep.db.lz4": "rep.db",
  "rep.db.B6-BX-size-nocrc.lz4": "rep.db",
  "mixed.bin.B4.lz4": "mixed.bin",
  "mixed.bin.B4D-BX.lz4": "mixed.bin",
  "empty.lz4": "empty",
  "multi.lz4": "multi",
};

const originals = new Map(
  readTsv(new TextDecoder().decode(readFixture(LZ4_FIXTURES, "originals.tsv"))).map((r) => [
    r.name,
    { size: Number(r.size), sha256: r.sha256 },
  ]),
);

const fixture = (name: string) => readFixture(LZ4_FIXTURES, name);

async function assertOriginal(out: Uint8Array, name: string, what: string) {
  const want = originals.get(FIXTURES[name])!;
  assertEquals(out.length, want.size, `${what}: size`);
  assertEquals(await sha256hex(out), want.sha256, `${what}: sha256`);
}

/** Walks the blocks of the single frame in `data` (test-side parser, from the spec). */
function blocks(data: Uint8Array): { at: number; size: number; stored: boolean }[] {
  const flg = data[4];
  let p = 4 + 2 + (flg & 0x08 ? 8 : 0) + 1;
  const out = [];
  const v = new DataView(data.buffer, data.byteOffset, data.length);
  for (;;) {
    const word = v.getUint32(p, true);
    if (word === 0) return out;
    const size = word & 0x7fffffff;
    out.push({ at: p, size, stored: word >>> 31 === 1 });
    p += 4 + size + (flg & 0x10 ? 4 : 0);
  }
}

/** Rewrites FLG/BD (and optional fields) and recomputes the header checksum byte. */
function withDescriptor(data: Uint8Array, edit: (d: Uint8Array) => void): Uint8Array {
  const out = data.slice();
  edit(out);
  const len = 2 + (out[4] & 0x08 ? 8 : 0);
  out[4 + len] = (xxhash32(out.subarray(4, 4 + len)) >>> 8) & 0xff;
  return out;
}

Deno.test("lz4 fixtures: every file decodes to its original (whole buffer)", async () => {
  for (const name of Object.keys(FIXTURES)) {
    await assertOriginal(lz4DecodeFrames(fixture(name)), name, name);
  }
  const hello = fixture("hello.txt");
  assertEquals(lz4DecodeFrames(fixture("hello.txt.lz4")), hello);
  assertEquals(lz4DecodeFrames(fixture("multi.lz4")), concat([hello, hello]));
});

Deno.test("lz4 fixtures: the stream decoder gives the same bytes for any chunking", async () => {
  for (const name of Object.keys(FIXTURES)) {
    const data = fixture(name);
    for (const size of [1, 7, 4096, data.length || 1]) {
      const parts = await collect(chunked(data, size).pipeThrough(lz4FrameDecoderStream()));
      await assertOriginal(concat(parts), name, `${name} in ${size}-byte chunks`);
    }
  }
});

Deno.test("lz4 fixtures: cover the descriptor variants the generator meant", () => {
  const desc = (name: string) => {
    const d = fixture(name);
    return { flg: d[4], bd: d[5] };
  };
  // FLG bit 5 = independent blocks, bit 4 = block checksums, bit 3 = content size,
  // bit 2 = content checksum; BD bits 6-4 = block size code.
  assertEquals(desc("hello.txt.lz4"), { flg: 0x64, bd: 0x40 });
  assertEquals(desc("pages.db.B4.lz4"), { flg: 0x64, bd: 0x40 });
  assertEquals(desc("pages.db.B4D.lz4"), { flg: 0x44, bd: 0x40 });
  assertEquals(desc("pages.db.B4D-BX.lz4"), { flg: 0x54, bd: 0x40 });
  assertEquals(desc("pages.db.B5-size.lz4"), { flg: 0x6c, bd: 0x50 });
  assertEquals(desc("rep.db.lz4"), { flg: 0x64, bd: 0x70 }); // Litestream v0.3.13's descriptor.
  assertEquals(desc("rep.db.B6-BX-size-nocrc.lz4"), { flg: 0x78, bd: 0x60 });
  assertEquals(desc("mixed.bin.B4D-BX.lz4"), { flg: 0x54, bd: 0x40 });
  // Multi-block frames, and frames with a stored (uncompressed) block.
  assert(blocks(fixture("pages.db.B4D.lz4")).length >= 2);
  assertEquals(blocks(fixture("rep.db.B6-BX-size-nocrc.lz4")).length, 3);
  for (const name of ["mixed.bin.B4.lz4", "mixed.bin.B4D-BX.lz4"]) {
    const bs = blocks(fixture(name));
    assert(bs.some((b) => b.stored) && bs.some((b) => !b.stored), `${name} mixes block kinds`);
  }
});

Deno.test("lz4: linked-block fixtures really reference the previous block", () => {
  // Declaring the blocks independent removes the history: decoding must then fail on a match
  // that reaches back into the previous block, proving the history is used (and bounded).
  for (const name of ["pages.db.B4D.lz4", "pages.db.B4D-hc.lz4"]) {
    const lying = withDescriptor(fixture(name), (d) => (d[4] |= 0x20));
    const err = assertThrows(
      () => lz4DecodeFrames(lying),
      FormatError,
      "before the available output",
    );
    assertStringIncludes(err.message, "block 1");
  }
});

Deno.test("lz4: the stream emits one chunk per block, never more than the block size", async () => {
  const parts = await collect(
    chunked(fixture("pages.db.B4D.lz4"), 100_000).pipeThrough(lz4FrameDecoderStream()),
  );
  assertEquals(parts.length, blocks(fixture("pages.db.B4D.lz4")).length);
  assert(parts.every((p) => p.length <= 65536));
});

Deno.test("lz4: corrupt header, block, block checksum, content checksum, content size", () => {
  const hdr = fixture("pages.db.B4.lz4").slice();
  hdr[6] ^= 0xff; // The header checksum byte.
  assertThrows(() => lz4DecodeFrames(hdr), FormatError, "header checksum mismatch");

  const bx = fixture("pages.db.B4D-BX.lz4");
  const b1 = blocks(bx)[1];
  const flipped = bx.slice();
  flipped[b1.at + 4 + 100] ^= 0x01;
  const e1 = assertThrows(() => lz4DecodeFrames(flipped), FormatError, "block checksum mismatch");
  assertStringIncludes(e1.message, `block 1 at byte ${b1.at}`);

  // Without block checksums a changed literal still decodes; the content checksum catches it.
  const plain = fixture("mixed.bin.B4.lz4");
  const stored = blocks(plain).find((b) => b.stored)!;
  const lit = plain.slice();
  lit[stored.at + 4 + 10] ^= 0x80;
  assertThrows(() => lz4DecodeFrames(lit), FormatError, "content checksum mismatch");

  const sum = plain.slice();
  sum[sum.length - 1] ^= 0x01;
  assertThrows(() => lz4DecodeFrames(sum), FormatError, "content checksum mismatch");

  // Declared content size one byte larger than the content.
  const sized = withDescriptor(fixture("pages.db.B5-size.lz4"), (d) => (d[6] += 1));
  assertThrows(() => lz4DecodeFrames(sized), FormatError, "content size mismatch");
  const smaller = withDescriptor(fixture("pages.db.B5-size.lz4"), (d) => (d[6] -= 1));
  assertThrows(() => lz4DecodeFrames(smaller), FormatError, "content size mismatch");
});

Deno.test("lz4: invalid descriptors are rejected", () => {
  const base = fixture("hello.txt.lz4");
  const cases: [(d: Uint8Array) => void, string][] = [
    [(d) => (d[4] = (d[4] & 0x3f) | 0x80), "unsupported frame version"],
    [(d) => (d[4] |= 0x02), "reserved FLG bit"],
    [(d) => (d[4] |= 0x01), "dictionary"],
    [(d) => (d[5] = 0x30), "invalid block maximum size code 3"],
    [(d) => (d[5] |= 0x01), "reserved BD bits"],
  ];
  for (const [edit, msg] of cases) {
    assertThrows(() => lz4DecodeFrames(withDescriptor(base, edit)), FormatError, msg);
  }
  // A block claiming more than the maximum block size.
  const big = fixture("pages.db.B4.lz4").slice();
  new DataView(big.buffer).setUint32(blocks(big)[0].at, 65537, true);
  assertThrows(() => lz4DecodeFrames(big), FormatError, "more than the frame's maximum block size");
});

Deno.test("lz4: truncated input fails at every cut point, in both decoders", async () => {
  const data = fixture("pages.db.B4D-BX.lz4");
  const cuts = [1, 4, 5, 6, 7, 10, 500, blocks(data)[1].at + 2, data.length - 5, data.length - 1];
  for (const cut of cuts) {
    const part = data.subarray(0, cut);
    assertThrows(() => lz4DecodeFrames(part), FormatError, "truncated");
    await assertRejects(
      () => collect(chunked(part, 1000).pipeThrough(lz4FrameDecoderStream())),
      FormatError,
      "truncated",
    );
  }
});

Deno.test("lz4: no frame, skippable-only, garbage and legacy input are errors", async () => {
  assertThrows(() => lz4DecodeFrames(new Uint8Array(0)), FormatError, "no LZ4 frame");
  await assertRejects(
    () => collect(ReadableStream.from<Uint8Array>([]).pipeThrough(lz4FrameDecoderStream())),
    FormatError,
    "no LZ4 frame",
  );
  const skip = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9]);
  assertThrows(() => lz4DecodeFrames(skip), FormatError, "only skippable frames");
  assertThrows(
    () => lz4DecodeFrames(skip.subarray(0, 9)),
    FormatError,
    "inside a skippable frame",
  );
  const hello = fixture("hello.txt.lz4");
  const trailing = concat([hello, new Uint8Array([1, 2, 3, 4])]);
  assertThrows(
    () => lz4DecodeFrames(trailing),
    FormatError,
    `not an LZ4 frame: magic 0x04030201 at byte ${hello.length}`,
  );
  assertThrows(
    () => lz4DecodeFrames(new Uint8Array([0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0])),
    FormatError,
    "legacy LZ4 format",
  );
});

Deno.test("lz4: the single-frame parser stops exactly at the end of its frame", () => {
  const hello = fixture("hello.txt.lz4");
  const data = concat([hello, new Uint8Array([0xaa, 0xbb])]);
  const out: Uint8Array[] = [];
  const p = new Lz4FrameParser((c) => out.push(c.slice()), { singleFrame: true });
  assertEquals(p.push(data), hello.length);
  assert(p.done);
  assertEquals(concat(out), fixture("hello.txt"));
});

Deno.test("lz4DecodeBlock: hand-made blocks", () => {
  const dst = new Uint8Array(64);
  // Literals only: token 0x30 = 3 literals, no match.
  assertEquals(lz4DecodeBlock(new Uint8Array([0x30, 1, 2, 3]), dst, 0), 3);
  assertEquals(dst.subarray(0, 3), new Uint8Array([1, 2, 3]));
  // 2 literals then an overlapping match (offset 2, length 4 + 2 = 6), then 1 final literal.
  const out = new Uint8Array(16);
  const n = lz4DecodeBlock(new Uint8Array([0x22, 7, 8, 2, 0, 0x10, 9]), out, 0);
  assertEquals(out.subarray(0, n), new Uint8Array([7, 8, 7, 8, 7, 8, 7, 8, 9]));
  // A match into history before dstPos (what linked blocks need).
  const hist = new Uint8Array(16);
  hist.set([5, 6, 7], 0);
  const end = lz4DecodeBlock(new Uint8Array([0x00, 3, 0, 0x10, 1]), hist, 3);
  assertEquals(hist.subarray(0, end), new Uint8Array([5, 6, 7, 5, 6, 7, 5, 1]));
});

Deno.test("lz4DecodeBlock: long matches (fill, overlapping pattern, plain copy)", () => {
  // Literal length 15+0 extension; match length 15+4+ext.
  const lits = Array.from({ length: 15 }, (_, i) => i + 1);
  const block = (offset: number, extra: number) =>
    new Uint8Array([0xff, 0, ...lits, offset, 0, extra, 0x10, 99]);
  for (const offset of [1, 3, 15]) {
    const dst = new Uint8Array(300);
    const n = lz4DecodeBlock(block(offset, 200), dst, 0);
    assertEquals(n, 15 + 219 + 1);
    const want = new Uint8Array(n);
    want.set(lits);
    for (let i = 15; i < 15 + 219; i++) want[i] = want[i - offset];
    want[n - 1] = 99;
    assertEquals(dst.subarray(0, n), want, `offset ${offset}`);
  }
  // Literal run with a 255 extension byte: 15 + 255 + 3 = 273 literals.
  const long = new Uint8Array([0xf0, 255, 3, ...new Uint8Array(273).fill(4)]);
  const dst = new Uint8Array(300);
  assertEquals(lz4DecodeBlock(long, dst, 0), 273);
});

Deno.test("lz4DecodeBlock: malformed blocks throw FormatError", () => {
  const dst = new Uint8Array(32);
  const cases: [number[], string][] = [
    [[], "empty"],
    [[0x30, 1, 2], "literal run of 3 bytes runs past the end"],
    [[0xf0], "literal length runs past the end"],
    [[0x10, 1, 0], "match offset is cut off"],
    [[0x10, 1, 0, 0], "match offset is 0"],
    [[0x10, 1, 2, 0, 0x10, 1], "reaches 1 bytes before the available output"],
    [[0x1f, 1, 1, 0], "match length runs past the end"],
    [[0x1f, 1, 1, 0, 100, 0x10, 1], "decodes to more than 32 bytes"],
  ];
  for (const [bytes, msg] of cases) {
    assertThrows(() => lz4DecodeBlock(new Uint8Array(bytes), dst, 0), FormatError, msg);
  }
  // Output that would not fit after dstPos.
  assertThrows(
    () => lz4DecodeBlock(new Uint8Array([0x30, 1, 2, 3]), new Uint8Array(4), 2),
    FormatError,
    "more than 2 bytes",
  );
});
