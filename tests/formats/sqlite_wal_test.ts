import { DatabaseSync } from "node:sqlite";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../support/assert.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import {
  parseWalFrameHeader,
  parseWalHeader,
  readWalPageMap,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  walChecksum,
  walCommitSizeProblem,
  walFrameOffset,
  WalFrameValidator,
  type WalHeader,
  walMaxDatabasePages,
  WalReader,
  walRestartProblem,
} from "../../src/formats/sqlite_wal.ts";
import { StreamReader } from "../../src/formats/stream_reader.ts";
import { resealWal, walCommitFieldOffset } from "../support/wal_craft.ts";
import { chunked } from "./helpers.ts";

interface WalCase {
  /** Main database file as it was when the WAL was copied. */
  before: Uint8Array;
  wal: Uint8Array;
  /** Main database file after SQLite checkpointed that WAL (TRUNCATE). */
  after: Uint8Array;
}

/**
 * Writes transactions with SQLite in WAL mode (no auto-checkpoint), copies the live `-wal` while
 * the connection is open, then lets SQLite checkpoint to learn the expected result.
 */
function makeWal(pageSize: number, write: (db: DatabaseSync) => void): WalCase {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/t.db`;
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA page_size = ${pageSize}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA wal_autocheckpoint = 0");
    write(db);
    const before = Deno.readFileSync(path);
    const wal = Deno.readFileSync(`${path}-wal`);
    if (db.isTransaction) db.exec("ROLLBACK"); // A checkpoint cannot run inside it.
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    const after = Deno.readFileSync(path);
    db.close();
    return { before, wal, after };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function writeRows(db: DatabaseSync) {
  db.exec("CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT)");
  db.exec("CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT)");
  const ins = db.prepare("INSERT INTO a(v) VALUES (?)");
  const insB = db.prepare("INSERT INTO b(v) VALUES (?)");
  for (let t = 0; t < 6; t++) {
    db.exec("BEGIN");
    for (let i = 0; i < 40; i++) {
      ins.run(`row ${t}/${i} `.repeat(10));
      insB.run("filler ".repeat(60));
    }
    db.exec("COMMIT");
  }
  // Shrinks the database: the last commit frame carries a smaller size (§1.2 step 4).
  db.exec("DROP TABLE b");
  db.exec("VACUUM");
}

const CASE = makeWal(4096, writeRows);

/** A committed row, then an open transaction that a tiny page cache spills into the WAL. */
const SPILLED = makeWal(1024, (db) => {
  db.exec("CREATE TABLE t(v TEXT)");
  db.exec("INSERT INTO t VALUES ('committed')");
  db.exec("PRAGMA cache_size = 4");
  db.exec("BEGIN");
  const ins = db.prepare("INSERT INTO t VALUES (?)");
  for (let i = 0; i < 400; i++) ins.run("x".repeat(200));
});

/** Checkpoint semantics (§1.2) driven by the validator; returns the applied image. */
function applyWal(before: Uint8Array, wal: Uint8Array): { image: Uint8Array; frames: number } {
  const h = parseWalHeader(wal);
  const v = new WalFrameValidator(h);
  const frameSize = WAL_FRAME_HEADER_SIZE + h.pageSize;
  const latest = new Map<number, Uint8Array>();
  const pending: [number, Uint8Array][] = [];
  for (let off = WAL_HEADER_SIZE; off + frameSize <= wal.length; off += frameSize) {
    const fh = wal.subarray(off, off + WAL_FRAME_HEADER_SIZE);
    const page = wal.subarray(off + WAL_FRAME_HEADER_SIZE, off + frameSize);
    if (!v.accept(fh, page)) break;
    const f = parseWalFrameHeader(fh);
    pending.push([f.pgno, page]);
    if (f.commit) {
      for (const [p, d] of pending) latest.set(p, d);
      pending.length = 0;
    }
  }
  const n = v.databaseSize;
  if (n === 0) return { image: before, frames: 0 };
  const image = new Uint8Array(n * h.pageSize);
  image.set(before.subarray(0, Math.min(before.length, image.length)));
  for (const [p, d] of latest) if (p <= n) image.set(d, (p - 1) * h.pageSize);
  return { image, frames: v.committedFrames };
}

Deno.test("walChecksum: hand-computed values, both byte orders, 32-bit wrap-around", () => {
  const data = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 2]);
  // s0 = 0 + 1 + 0 = 1; s1 = 0 + 2 + 1 = 3.
  assertEquals(walChecksum(data, 0, 0, true), [1, 3]);
  assertEquals(walChecksum(data, 0, 0, false), [0x01000000, 0x03000000]);
  // Continuing: s0 = 1 + 1 + 3 = 5; s1 = 3 + 2 + 5 = 10.
  assertEquals(walChecksum(data, 1, 3, true), [5, 10]);
  assertEquals(walChecksum(data, 0xffffffff, 0xffffffff, true), [0xffffffff, 0x00000000]);
  assertThrows(() => walChecksum(new Uint8Array(4), 0, 0, true), FormatError, "multiple of 8");
});

Deno.test("WAL from SQLite: header parses, every frame validates, apply equals checkpoint", () => {
  const h = parseWalHeader(CASE.wal);
  assertEquals(h.pageSize, 4096);
  assertEquals(h.formatVersion, 3007000);
  const frames = (CASE.wal.length - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + 4096);
  assert(Number.isInteger(frames) && frames > 20, `whole frames: ${frames}`);
  const { image, frames: applied } = applyWal(CASE.before, CASE.wal);
  assertEquals(applied, frames); // Every frame is valid and committed.
  assertEquals(image, CASE.after); // Byte for byte what SQLite's checkpoint wrote.
  // The VACUUM shrank the database: the last commit is smaller than the largest page written.
  const last = parseWalFrameHeader(CASE.wal.subarray(walFrameOffset(frames - 1, 4096)));
  assert(last.commit > 0 && last.commit * 4096 === CASE.after.length);
});

Deno.test("WalFrameValidator: a flipped page byte stops the chain at that frame, for good", () => {
  const h = parseWalHeader(CASE.wal);
  const total = (CASE.wal.length - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + h.pageSize);
  for (const bad of [0, 5, total - 1]) {
    const wal = CASE.wal.slice();
    wal[walFrameOffset(bad, h.pageSize) + WAL_FRAME_HEADER_SIZE + 777] ^= 0x10;
    const v = new WalFrameValidator(h);
    const results: boolean[] = [];
    for (let k = 0; k < total; k++) {
      const off = walFrameOffset(k, h.pageSize);
      results.push(
        v.accept(
          wal.subarray(off, off + WAL_FRAME_HEADER_SIZE),
          wal.subarray(off + WAL_FRAME_HEADER_SIZE, off + WAL_FRAME_HEADER_SIZE + h.pageSize),
        ),
      );
    }
    assertEquals(results.indexOf(false), bad, `first rejected frame`);
    assert(results.slice(bad).every((r) => !r), "later frames stay rejected");
    assertEquals(v.frames, bad);
    assert(v.invalidReason?.startsWith(`frame ${bad} (page `) ?? false, v.invalidReason);
    assert(v.invalidReason?.includes("checksum mismatch") ?? false);
  }
});

Deno.test("WalFrameValidator: salts, page number 0 and wrong sizes are invalid", () => {
  const h = parseWalHeader(CASE.wal);
  const off = walFrameOffset(0, h.pageSize);
  const frame = () => CASE.wal.slice(off, off + WAL_FRAME_HEADER_SIZE + h.pageSize);
  const check = (f: Uint8Array, reason: string) => {
    const v = new WalFrameValidator(h);
    assertEquals(v.accept(f.subarray(0, 24), f.subarray(24)), false);
    assert(v.invalidReason?.includes(reason) ?? false, v.invalidReason);
  };
  const salt = frame();
  salt[8] ^= 1;
  check(salt, "salts");
  const zero = frame();
  zero.fill(0, 0, 4);
  check(zero, "page number 0");
  check(frame().subarray(0, 24 + 100), "expected a 24-byte header and 4096-byte page");
});

Deno.test("WalFrameValidator: frames of an unfinished transaction do not count", () => {
  let committedBefore = 0;
  const c = SPILLED;
  const h = parseWalHeader(c.wal);
  const v = new WalFrameValidator(h);
  const frameSize = WAL_FRAME_HEADER_SIZE + h.pageSize;
  for (let off = WAL_HEADER_SIZE; off + frameSize <= c.wal.length; off += frameSize) {
    const fh = c.wal.subarray(off, off + 24);
    assert(v.accept(fh, c.wal.subarray(off + 24, off + frameSize)));
    if (parseWalFrameHeader(fh).commit) committedBefore = v.frames;
  }
  assert(v.uncommittedFrames > 0, "the open transaction spilled frames");
  assertEquals(v.committedFrames, committedBefore);
  assertEquals(v.frames, v.committedFrames + v.uncommittedFrames);
});

Deno.test("parseWalHeader: rejects bad magic, version, page size and header checksum", () => {
  const good = CASE.wal.slice(0, 32);
  const cases: [number, number, string][] = [
    [0, 0x12, "not a SQLite WAL"],
    [5, 0x01, "unsupported WAL format version"],
    [10, 0x11, "invalid WAL page size"],
    [17, 0x01, "header checksum mismatch"],
    [28, 0x01, "header checksum mismatch"],
  ];
  for (const [at, xor, msg] of cases) {
    const b = good.slice();
    b[at] ^= xor;
    assertThrows(() => parseWalHeader(b), FormatError, msg);
  }
  assertThrows(() => parseWalHeader(good.subarray(0, 31)), FormatError, "needs 32 bytes");
});

Deno.test("WAL with big-endian checksums (magic 0x377f0683) validates", () => {
  // Re-encode the SQLite WAL with the other checksum byte order (what a big-endian host writes).
  const wal = CASE.wal.slice();
  const v = new DataView(wal.buffer);
  v.setUint32(0, 0x377f0683);
  resealWal(wal);
  const h = parseWalHeader(wal);
  assertEquals(h.bigEndianChecksum, true);
  assertEquals(applyWal(CASE.before, wal).image, CASE.after);
  // The little-endian reading of the same bytes fails.
  v.setUint32(0, 0x377f0682);
  assertThrows(() => parseWalHeader(wal), FormatError, "header checksum mismatch");
});

Deno.test("WAL streamed through StreamReader in odd chunks validates frame by frame", async () => {
  const r = new StreamReader(chunked(CASE.wal, 1000));
  const h = parseWalHeader(await r.readExact(WAL_HEADER_SIZE));
  const v = new WalFrameValidator(h);
  let n = 0;
  for (;;) {
    const fh = await r.readUpTo(WAL_FRAME_HEADER_SIZE);
    if (fh.length === 0) break;
    assert(v.accept(fh, await r.readExact(h.pageSize)));
    n++;
  }
  assertEquals(v.committedFrames, n);
  assertEquals(v.databaseSize * h.pageSize, CASE.after.length);
});

// ---------------------------------------------------------------------------------------------
// WalReader: the one frame loop

function walReaderOf(wal: Uint8Array, chunk = 1000): Promise<WalReader> {
  return WalReader.open(new StreamReader(chunked(wal, chunk)));
}

/** Applies a page map to `before` as a checkpoint does (§1.2 steps 3–4). */
function applyPageMap(
  before: Uint8Array,
  wal: Uint8Array,
  map: Awaited<ReturnType<typeof readWalPageMap>>,
) {
  const ps = map.header.pageSize;
  const image = new Uint8Array(map.databaseSize * ps);
  image.set(before.subarray(0, Math.min(before.length, image.length)));
  for (const [pgno, off] of map.pages) image.set(wal.subarray(off, off + ps), (pgno - 1) * ps);
  return image;
}

Deno.test("WalReader: yields every frame of SQLite's WAL, in odd chunks; the page map checkpoints", async () => {
  for (const chunk of [1000, 4120, 1 << 20]) {
    const r = await walReaderOf(CASE.wal, chunk);
    const ps = r.header.pageSize;
    let k = 0;
    for (let f = await r.next(); f !== undefined; f = await r.next(), k++) {
      const off = walFrameOffset(k, ps);
      assertEquals([f.index, f.offset], [k, off]);
      assertEquals(f.header, parseWalFrameHeader(CASE.wal.subarray(off, off + 24)));
      assertEquals(f.page, CASE.wal.subarray(off + 24, off + 24 + ps));
    }
    assertEquals(k, (CASE.wal.length - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + ps));
    assertEquals(r.endReason, undefined); // Ended on a frame boundary: nothing was cut off.
    assertEquals([r.frames, r.committedFrames, r.uncommittedFrames], [k, k, 0]);
    assertEquals(await r.next(), undefined); // And stays ended.
  }
  const map = await readWalPageMap(await walReaderOf(CASE.wal));
  assertEquals(map.databaseSize * 4096, CASE.after.length);
  // The VACUUM shrank the database: pages past the final size are not in the map.
  assert([...map.pages.keys()].every((p) => p <= map.databaseSize));
  assertEquals(applyPageMap(CASE.before, CASE.wal, map), CASE.after);
});

Deno.test("WalReader: the end reason says which frame, where, and why", async () => {
  const ps = 4096;
  const flipped = CASE.wal.slice();
  flipped[walFrameOffset(5, ps) + WAL_FRAME_HEADER_SIZE + 9] ^= 1;
  let r = await walReaderOf(flipped);
  while (await r.next());
  assertEquals(r.frames, 5);
  assertStringIncludes(r.endReason ?? "", "frame 5 (page ");
  assertStringIncludes(r.endReason ?? "", "checksum mismatch");
  assertStringIncludes(r.endReason ?? "", `(WAL offset ${walFrameOffset(5, ps)})`);

  const cut = CASE.wal.subarray(0, walFrameOffset(3, ps) + 100);
  r = await walReaderOf(cut);
  while (await r.next());
  assertEquals(r.frames, 3);
  assertStringIncludes(r.endReason ?? "", "ends inside frame 3");
  assertStringIncludes(r.endReason ?? "", `100 of its ${ps + 24} bytes`);

  r = await walReaderOf(CASE.wal.subarray(0, WAL_HEADER_SIZE));
  assertEquals(await r.next(), undefined);
  assertEquals([r.frames, r.endReason], [0, undefined]);

  await assertRejects(
    () => walReaderOf(CASE.wal.subarray(0, 20)),
    FormatError,
    "while reading the WAL header",
  );
});

Deno.test("readWalPageMap: pages of an unfinished transaction are not in the map", async () => {
  const c = SPILLED;
  const map = await readWalPageMap(await walReaderOf(c.wal));
  assert(map.frames > map.committedFrames, "the open transaction spilled frames");
  assertEquals(map.endReason, undefined);
  // Every mapped page comes from a committed frame: an offset before the first spilled frame.
  const firstUncommitted = walFrameOffset(map.committedFrames, 1024);
  assert([...map.pages.values()].every((off) => off < firstUncommitted));
  assertEquals(applyPageMap(c.before, c.wal, map), c.after);
});

/** SQLite's own verdict: checkpoints `wal` over `before`; the error text, or null on success. */
function sqliteCheckpointError(before: Uint8Array, wal: Uint8Array): string | null {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/t.db`, before);
    Deno.writeFileSync(`${dir}/t.db-wal`, wal);
    const db = new DatabaseSync(`${dir}/t.db`);
    try {
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      db.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("walCommitSizeProblem: the same bound as SQLite's checkpoint, on both sides of it", () => {
  const ps = 4096;
  const frames = (CASE.wal.length - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + ps);
  const largest = Math.floor((CASE.before.length + 65536 + frames * ps) / ps);
  for (const [claim, ok] of [[largest, true], [largest + 1, false], [0xffffffff, false]] as const) {
    const wal = CASE.wal.slice();
    new DataView(wal.buffer).setUint32(walCommitFieldOffset(frames - 1, ps), claim);
    resealWal(wal);
    const sqlite = sqliteCheckpointError(CASE.before, wal);
    const ours = walCommitSizeProblem(CASE.before.length, ps, frames, claim);
    if (ok) {
      assertEquals([sqlite, ours], [null, null], `claim ${claim}`);
    } else {
      assertStringIncludes(sqlite ?? "", "malformed");
      assertStringIncludes(ours ?? "", `sets the database to ${claim} pages`);
    }
  }
  // Shrinking, or staying within the current file, is always allowed.
  assertEquals(walCommitSizeProblem(100 * ps, ps, 0, 100), null);
  assertEquals(walCommitSizeProblem(100 * ps, ps, 1, 3), null);
});

Deno.test("walMaxDatabasePages: the file, the lock page and every frame the bytes can hold", () => {
  const frameBytes = WAL_FRAME_HEADER_SIZE + 4096;
  assertEquals(walMaxDatabasePages(10 * 4096, 4096, WAL_HEADER_SIZE + 3 * frameBytes), 10 + 16 + 3);
  assertEquals(walMaxDatabasePages(10 * 4096, 4096, WAL_HEADER_SIZE + 3 * frameBytes - 1), 28);
  assertEquals(walMaxDatabasePages(0, 65536, 0), 1);
  assertEquals(walMaxDatabasePages(0, 4096, Infinity), Infinity); // size not listed: no bound
});

Deno.test("walRestartProblem: the next index's salt-1 is the previous one's + 1", () => {
  const prev = parseWalHeader(CASE.wal);
  const next = (
    salt1: number,
    salt2 = 0x12345678,
    checkpointSeq = prev.checkpointSeq,
  ): WalHeader => ({
    ...prev,
    salt1,
    salt2,
    checkpointSeq,
  });
  assertEquals(walRestartProblem(prev, next((prev.salt1 + 1) >>> 0)), null);
  // The checkpoint sequence is per connection in SQLite: not a continuity counter.
  assertEquals(walRestartProblem(prev, next((prev.salt1 + 1) >>> 0, 7, prev.checkpointSeq)), null);
  assertEquals(walRestartProblem({ ...prev, salt1: 0xffffffff }, next(0)), null); // wraps
  assertStringIncludes(walRestartProblem(prev, prev) ?? "", "the same salts");
  assertStringIncludes(
    walRestartProblem(prev, next((prev.salt1 - 1) >>> 0)) ?? "",
    `writes 0x${((prev.salt1 + 1) >>> 0).toString(16).padStart(8, "0")}`,
  );
});
