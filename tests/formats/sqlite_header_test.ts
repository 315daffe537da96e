import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertThrows } from "../support/assert.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import { lockPageNumber, parseDatabaseHeader } from "../../src/formats/sqlite_header.ts";
import { LTX_FIXTURES, readFixture } from "./helpers.ts";

Deno.test("parseDatabaseHeader: fixture databases", () => {
  for (const [name, pageSize, pages] of [["S1", 4096, 6], ["S3", 4096, 12], ["small", 1024, 2]]) {
    const db = readFixture(LTX_FIXTURES, `states/${name}.db`);
    const h = parseDatabaseHeader(db);
    assertEquals(h.pageSize, pageSize, `${name} page size`);
    assertEquals(db.length, h.pageSize * h.pageCount, `${name} file length`);
    assertEquals(h.pageCount, pages);
    assertEquals(h.pageCountValid, true);
    // The fixtures are rollback-journal files (README).
    assertEquals([h.writeVersion, h.readVersion], [1, 1]);
    assertEquals(h.textEncoding, 1);
  }
});

Deno.test("parseDatabaseHeader: a WAL-mode database made by SQLite, 64 KiB pages", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const db = new DatabaseSync(`${dir}/a.db`);
    db.exec("PRAGMA page_size = 65536; PRAGMA journal_mode = WAL; CREATE TABLE t(x)");
    db.exec("INSERT INTO t VALUES (1)");
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    const bytes = Deno.readFileSync(`${dir}/a.db`);
    assertEquals([bytes[16], bytes[17]], [0, 1]); // 65536 is stored as 1.
    const h = parseDatabaseHeader(bytes);
    assertEquals(h.pageSize, 65536);
    assertEquals([h.writeVersion, h.readVersion], [2, 2]);
    assertEquals(h.pageCount * h.pageSize, bytes.length);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseDatabaseHeader: bad magic, page size and short input throw FormatError", () => {
  const good = readFixture(LTX_FIXTURES, "states/S1.db").slice(0, 100);
  assertThrows(() => parseDatabaseHeader(good.subarray(0, 99)), FormatError, "needs 100 bytes");
  const magic = good.slice();
  magic[15] = 0x20;
  assertThrows(() => parseDatabaseHeader(magic), FormatError, "byte 15 differs");
  for (const raw of [0, 256, 1000, 3]) {
    const bad = good.slice();
    bad[16] = raw >> 8;
    bad[17] = raw & 0xff;
    assertThrows(() => parseDatabaseHeader(bad), FormatError, `invalid SQLite page size ${raw}`);
  }
});

Deno.test("lockPageNumber: the page holding byte 0x40000000", () => {
  assertEquals(lockPageNumber(4096), 262145);
  assertEquals(lockPageNumber(512), 2097153);
  assertEquals(lockPageNumber(65536), 16385);
  for (const size of [512, 1024, 4096, 65536]) {
    const p = lockPageNumber(size);
    // Page p spans [(p-1)·size, p·size).
    assertEquals((p - 1) * size <= 0x40000000 && 0x40000000 < p * size, true);
  }
  assertThrows(() => lockPageNumber(1000), FormatError);
});
