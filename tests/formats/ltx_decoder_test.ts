import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import { DatabaseChecksum, databaseChecksum } from "../../src/formats/ltx_checksum.ts";
import { LtxDecoder } from "../../src/formats/ltx_decoder.ts";
import type { LtxPage } from "../../src/formats/ltx_decoder.ts";
import type { LtxHeader, LtxTrailer } from "../../src/formats/ltx_header.ts";
import { lockPageNumber } from "../../src/formats/sqlite_header.ts";
import { chunked, LTX_FIXTURES, readFixture, readTsv, sha256hex } from "./helpers.ts";
import { writeLtx } from "./ltx_writer.ts";
import type { TestLtx, TestPage } from "./ltx_writer.ts";

const ROWS = readTsv(new TextDecoder().decode(readFixture(LTX_FIXTURES, "ltx-files.tsv")));
const TREES = [
  "ltx-v0.5.1-frame/checksummed",
  "ltx-v0.5.2-block/checksummed",
  "ltx-v0.5.2-block/nochecksum",
];
const ltxPath = (tree: string, level: number, min: number, max: number) =>
  `${tree}/ltx/${level}/${min.toString(16).padStart(16, "0")}-${
    max.toString(16).padStart(16, "0")
  }.ltx`;
const state = (name: string) => readFixture(LTX_FIXTURES, `states/${name}.db`);

interface Decoded {
  header: LtxHeader;
  pages: LtxPage[];
  trailer: LtxTrailer;
}

async function decode(bytes: Uint8Array, chunk = 4096): Promise<Decoded> {
  const d = new LtxDecoder(chunked(bytes, chunk));
  const header = await d.readHeader();
  const pages: LtxPage[] = [];
  for await (const p of d.pages()) pages.push(p);
  return { header, pages, trailer: d.trailer! };
}

/** §4.8: write each page at (pgno-1)·pageSize, then set the length to commit·pageSize. */
function applyLtx(image: Uint8Array, f: Decoded): Uint8Array {
  const size = f.header.pageSize;
  const maxPage = Math.max(0, ...f.pages.map((p) => p.pgno));
  const out = new Uint8Array(Math.max(image.length, maxPage * size));
  out.set(image);
  for (const p of f.pages) out.set(p.data, (p.pgno - 1) * size);
  const end = f.header.commit * size;
  if (end <= out.length) return out.slice(0, end);
  const grown = new Uint8Array(end);
  grown.set(out);
  return grown;
}

/** Page-index entries [pgno, offset, length] and where each varint starts, read from the tail. */
function readIndex(file: Uint8Array) {
  const v = new DataView(file.buffer, file.byteOffset, file.length);
  const len = Number(v.getBigUint64(file.length - 24));
  const start = file.length - 24 - len;
  const entries: { values: number[]; at: number[] }[] = [];
  let p = start;
  const varint = () => {
    let value = 0, mul = 1;
    for (;;) {
      const b = file[p++];
      value += (b & 0x7f) * mul;
      if (!(b & 0x80)) return value;
      mul *= 128;
    }
  };
  for (;;) {
    const at = [p];
    const pgno = varint();
    if (pgno === 0) break;
    at.push(p);
    const offset = varint();
    at.push(p);
    entries.push({ values: [pgno, offset, varint()], at });
  }
  return { start, length: len, entries };
}

async function assertDecodeFails(bytes: Uint8Array, ...parts: string[]): Promise<FormatError> {
  const err = await assertRejects(() => decode(bytes), FormatError);
  for (const part of parts) assertStringIncludes(err.message, part);
  return err;
}

Deno.test("LTX fixtures: every file decodes, verifies its checksum and lists the tsv's pages", async () => {
  assertEquals(ROWS.length, 21);
  for (const row of ROWS) {
    const file = readFixture(LTX_FIXTURES, row.path);
    assertEquals(await sha256hex(file), row.sha256, `${row.path} copied intact`);
    for (const chunk of [1, 13, 4096, file.length]) {
      const d = await decode(file, chunk);
      assertEquals(d.pages.map((p) => p.pgno).join(","), row.pgnos, `${row.path} / ${chunk}`);
      assert(d.pages.every((p) => p.data.length === d.header.pageSize));
      assertEquals(d.trailer.fileChecksum.toString(16).padStart(16, "0"), row.file_checksum);
      assertEquals(d.trailer.postApplyChecksum.toString(16).padStart(16, "0"), row.post_apply);
    }
    // The encoding named by the tsv is the one on disk (flags of every frame, via the index).
    for (const e of readIndex(file).entries) {
      assertEquals(
        String((file[e.values[1] + 4] << 8) | file[e.values[1] + 5]),
        row.page_frame_flags,
      );
    }
  }
});

Deno.test("LTX fixtures: L0 TXIDs 1..4 applied in order give S1..S4 byte for byte", async () => {
  for (const tree of TREES) {
    let image: Uint8Array = new Uint8Array(0);
    for (let txid = 1; txid <= 4; txid++) {
      image = applyLtx(
        image,
        await decode(readFixture(LTX_FIXTURES, ltxPath(tree, 0, txid, txid))),
      );
      assertEquals(image, state(`S${txid}`), `${tree} after TXID ${txid}`);
    }
  }
});

Deno.test("LTX fixtures: L1 on S1, L2 alone and L9 alone give S4", async () => {
  for (const tree of TREES) {
    const l1 = await decode(readFixture(LTX_FIXTURES, ltxPath(tree, 1, 2, 4)));
    assertEquals(applyLtx(state("S1"), l1), state("S4"), `${tree} L1`);
    for (const level of [2, 9]) {
      const f = await decode(readFixture(LTX_FIXTURES, ltxPath(tree, level, 1, 4)));
      assertEquals(applyLtx(new Uint8Array(0), f), state("S4"), `${tree} L${level}`);
    }
  }
});

Deno.test("LTX fixtures: pre/post-apply checksums are the states' rolling checksums", async () => {
  const c = (name: string) => databaseChecksum(state(name), 4096);
  for (const tree of TREES.filter((t) => t.endsWith("/checksummed"))) {
    for (let txid = 1; txid <= 4; txid++) {
      const f = await decode(readFixture(LTX_FIXTURES, ltxPath(tree, 0, txid, txid)));
      assertEquals(f.header.preApplyChecksum, txid === 1 ? 0n : c(`S${txid - 1}`));
      assertEquals(f.trailer.postApplyChecksum, c(`S${txid}`));
    }
    const l1 = await decode(readFixture(LTX_FIXTURES, ltxPath(tree, 1, 2, 4)));
    assertEquals([l1.header.preApplyChecksum, l1.trailer.postApplyChecksum], [c("S1"), c("S4")]);
    for (const level of [2, 9]) {
      const f = await decode(readFixture(LTX_FIXTURES, ltxPath(tree, level, 1, 4)));
      assertEquals([f.header.preApplyChecksum, f.trailer.postApplyChecksum], [0n, c("S4")]);
    }
  }
  // The S4 value from the README, so the comparison above is not circular.
  assertEquals(c("S4"), 0xc738a9aeecb4d8e1n);
});

Deno.test("LTX fixtures: the nochecksum chain is TXID-contiguous with zero database checksums", async () => {
  const tree = "ltx-v0.5.2-block/nochecksum";
  let prevMax = 0n;
  for (let txid = 1; txid <= 4; txid++) {
    const f = await decode(readFixture(LTX_FIXTURES, ltxPath(tree, 0, txid, txid)));
    assertEquals(f.header.minTxid, prevMax + 1n);
    assertEquals([f.header.preApplyChecksum, f.trailer.postApplyChecksum], [0n, 0n]);
    prevMax = f.header.maxTxid;
  }
});

const FRAME_FILE = "ltx-v0.5.1-frame/checksummed/ltx/0/0000000000000001-0000000000000001.ltx";
const BLOCK_FILE = "ltx-v0.5.2-block/checksummed/ltx/0/0000000000000001-0000000000000001.ltx";

Deno.test("LTX corruption: a flipped byte in a page payload is detected", async () => {
  for (const path of [FRAME_FILE, BLOCK_FILE]) {
    const file = readFixture(LTX_FIXTURES, path);
    const [pgno, offset, length] = readIndex(file).entries[1].values;
    const bad = file.slice();
    bad[offset + length - 1] ^= 0x01; // Last payload byte of page 2's frame.
    if (path === FRAME_FILE) {
      // The LZ4 frame's content checksum is its last 4 bytes.
      await assertDecodeFails(
        bad,
        `page ${pgno} (frame at byte ${offset})`,
        "content checksum mismatch",
      );
    } else {
      // A block has no checksum of its own; the last byte is a literal, so only the file
      // checksum, which covers the decompressed page, can notice.
      await assertDecodeFails(bad, "file checksum mismatch");
    }
  }
});

Deno.test("LTX corruption: a flipped byte in the page index or its length is detected", async () => {
  for (const path of [FRAME_FILE, BLOCK_FILE]) {
    const file = readFixture(LTX_FIXTURES, path);
    const idx = readIndex(file);
    const [pgno, offset, length] = idx.entries[1].values;
    const lenByte = file.slice();
    lenByte[idx.entries[1].at[2]] ^= 0x01; // Entry 1's frame length, off by one.
    await assertDecodeFails(
      lenByte,
      `page index entry 1 (page ${pgno}, offset ${offset}, length ${length ^ 1})`,
      `does not match frame 1: page ${pgno} at offset ${offset}, length ${length}`,
    );
    const field = file.slice();
    field[file.length - 17] ^= 0x02; // Low byte of the u64be index length.
    await assertDecodeFails(field, "page index length field", `the index is ${idx.length} bytes`);
  }
});

Deno.test("LTX corruption: a flipped byte in the trailer is detected", async () => {
  for (const path of [FRAME_FILE, BLOCK_FILE, BLOCK_FILE.replace("checksummed", "nochecksum")]) {
    const file = readFixture(LTX_FIXTURES, path);
    for (const at of [file.length - 16, file.length - 9, file.length - 8, file.length - 1]) {
      const bad = file.slice();
      bad[at] ^= 0x40;
      await assertDecodeFails(bad, "file checksum mismatch", `byte ${file.length - 8}`);
    }
  }
});

Deno.test("LTX truncation: every cut point fails with a truncation error", async () => {
  for (const path of [FRAME_FILE, BLOCK_FILE]) {
    const file = readFixture(LTX_FIXTURES, path);
    for (let cut = 0; cut < file.length; cut++) {
      await assertDecodeFails(file.subarray(0, cut), "truncated");
    }
  }
});

Deno.test("LTX: trailing bytes, bad header flags and unknown page flags are rejected", async () => {
  const file = readFixture(LTX_FIXTURES, BLOCK_FILE);
  const longer = new Uint8Array(file.length + 1);
  longer.set(file);
  await assertDecodeFails(longer, `unexpected data after the trailer, at byte ${file.length}`);
  const flags = file.slice();
  flags[7] = 0x08;
  await assertDecodeFails(flags, "header flags 0x00000008");
  const pageFlags = file.slice();
  pageFlags[105] = 0x02; // First frame (at byte 100): flags are bytes 104-105.
  await assertDecodeFails(
    pageFlags,
    "page 1 (frame at byte 100) has unsupported page flags 0x0002",
  );
  const size = file.slice();
  new DataView(size.buffer).setUint32(106, 0x00ffffff);
  await assertDecodeFails(
    size,
    "page 1 (frame at byte 100): LZ4 block size 16777215 is impossible",
  );
});

// --- Files built by the test writer, each breaking one rule. -----------------------------

const PAGE = 4096;
const page = (seed: number, size = PAGE) =>
  new Uint8Array(size).map((_, i) => (i * 31 + seed) & 0xff);
const pages = (...pgnos: number[]): TestPage[] => pgnos.map((pgno) => ({ pgno, data: page(pgno) }));
/** A non-snapshot without checksums: page rules apply, no checksum bookkeeping needed. */
const delta = (t: Partial<TestLtx>): TestLtx => ({
  flags: 2,
  pageSize: PAGE,
  commit: 10,
  minTxid: 5n,
  maxTxid: 5n,
  pages: [],
  ...t,
});

Deno.test("LTX writer files: both page encodings in one file decode", async () => {
  const t = delta({
    pages: [
      { pgno: 2, data: page(2), encoding: "frame" },
      { pgno: 3, data: page(3), encoding: "block" },
      { pgno: 7, data: page(7), encoding: "frame" },
    ],
  });
  const d = await decode(writeLtx(t), 100);
  assertEquals(d.pages.map((p) => p.pgno), [2, 3, 7]);
  for (const p of d.pages) assertEquals(p.data, page(p.pgno));
});

Deno.test("LTX writer files: page order, commit and lock page rules", async () => {
  await assertDecodeFails(writeLtx(delta({ pages: pages(3, 2) })), "page 2", "follows page 3");
  await assertDecodeFails(writeLtx(delta({ pages: pages(2, 2) })), "follows page 2");
  await assertDecodeFails(
    writeLtx(delta({ pages: pages(1, 11) })),
    "page 11",
    "beyond the commit size of 10 pages",
  );
  const lock = lockPageNumber(512);
  await assertDecodeFails(
    writeLtx(
      delta({ pageSize: 512, commit: lock + 1, pages: [{ pgno: lock, data: page(1, 512) }] }),
    ),
    `page ${lock}`,
    "is the lock page",
  );
});

Deno.test("LTX writer files: snapshots must hold every page; their checksum is recomputed", async () => {
  const snap = (t: Partial<TestLtx>): TestLtx => ({
    pageSize: PAGE,
    commit: 3,
    minTxid: 1n,
    maxTxid: 3n,
    pages: pages(1, 2, 3),
    ...t,
  });
  const sum = new DatabaseChecksum();
  for (const p of [1, 2, 3]) sum.add(p, page(p));
  const good = await decode(writeLtx(snap({ postApply: sum.value() })));
  assertEquals(good.trailer.postApplyChecksum, sum.value());
  await assertDecodeFails(
    writeLtx(snap({ postApply: sum.value() ^ 1n })),
    "snapshot pages have database checksum",
  );
  await assertDecodeFails(
    writeLtx(snap({ flags: 2, pages: pages(1, 3) })),
    "snapshot is missing page 2",
  );
  await assertDecodeFails(
    writeLtx(snap({ flags: 2, pages: pages(1, 2) })),
    "snapshot ends after page 2 but its commit size is 3 pages",
  );
});

Deno.test("LTX writer files: a deleted database (commit 0) has no pages", async () => {
  const d = await decode(writeLtx({
    pageSize: PAGE,
    commit: 0,
    minTxid: 5n,
    maxTxid: 5n,
    preApply: 0x8e2e53a80d2fe384n,
    postApply: 0x8000000000000000n,
    pages: [],
  }));
  assertEquals(d.pages.length, 0);
  assertEquals(d.trailer.postApplyChecksum, 0x8000000000000000n);
});

Deno.test("LTX writer files: page payloads must decode to exactly one page", async () => {
  for (const encoding of ["block", "frame"] as const) {
    await assertDecodeFails(
      writeLtx(delta({ pages: [{ pgno: 1, data: page(1, PAGE - 1), encoding }] })),
      "page 1 (frame at byte 100)",
      `decodes to ${PAGE - 1} bytes, expected the page size ${PAGE}`,
    );
  }
  await assertDecodeFails(
    writeLtx(delta({ pages: [{ pgno: 1, data: page(1, PAGE + 1), encoding: "frame" }] })),
    "page 1 (frame at byte 100)",
    "more than the page size",
  );
  await assertDecodeFails(
    writeLtx(delta({ pages: [{ pgno: 1, data: page(1, PAGE + 1), encoding: "block" }] })),
    "page 1 (frame at byte 100)",
    "decodes to more than 4096 bytes",
  );
});

Deno.test("LTX writer files: index entries must match the frames", async () => {
  const base = delta({ pages: pages(1, 2, 3) });
  await assertDecodeFails(
    writeLtx({ ...base, editIndex: (e) => [...e, [4, 9999, 10]] }),
    "page index entry 3",
    "more pages than the 3 frames",
  );
  await assertDecodeFails(
    writeLtx({ ...base, editIndex: (e) => e.slice(0, 2) }),
    "page index lists 2 pages, the file has 3 page frames",
  );
  await assertDecodeFails(
    writeLtx({ ...base, editIndex: (e) => e.map(([p, o, l]) => [p === 3 ? 5 : p, o, l]) }),
    "page index entry 2 (page 5",
    "does not match frame 2: page 3",
  );
});

Deno.test("LTX writer files: beyond the recorded frames, the index is checked by hash", async () => {
  // More frames than the decoder records individually (16384): memory stays bounded.
  const n = 16390;
  const small = new Uint8Array(512);
  const many = (edit?: TestLtx["editIndex"]): TestLtx => ({
    flags: 2,
    pageSize: 512,
    commit: n,
    minTxid: 2n,
    maxTxid: 2n,
    pages: Array.from({ length: n }, (_, i) => ({ pgno: i + 1, data: small })),
    editIndex: edit,
  });
  const d = new LtxDecoder(chunked(writeLtx(many()), 65536));
  const t = await d.finish();
  assertEquals(d.pageCount, n);
  assert(t.fileChecksum > 0n);
  await assertDecodeFails(
    writeLtx(many((e) => e.map(([p, o, l]) => [p === n ? n + 1 : p, o, l]))),
    "page index entries after entry 16384 do not match the page frames",
  );
  await assertDecodeFails(
    writeLtx(many((e) => e.map(([p, o, l]) => [p, p === n - 1 ? o + 1 : o, l]))),
    `page index entry ${n - 2}`,
    "the previous frame ends at offset",
  );
});

Deno.test("LtxDecoder: stopping early cancels the source; finish() drains and verifies", async () => {
  const file = readFixture(LTX_FIXTURES, BLOCK_FILE);
  let cancelled = false;
  let pos = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pos >= file.length) return c.close();
      c.enqueue(file.slice(pos, pos + 100));
      pos += 100;
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const d = new LtxDecoder(source);
  for await (const p of d.pages()) {
    assertEquals(p.pgno, 1);
    break;
  }
  assert(cancelled, "the source was cancelled");
  assert(pos < file.length, "the rest of the file was never read");
  assertEquals(d.trailer, undefined);

  const full = new LtxDecoder(chunked(file, 50));
  const t = await full.finish();
  assertEquals(t.fileChecksum, 0x90c233e534542f3en);
  assertEquals(full.pageCount, 6);
});
