/**
 * Layer 4 of `verify` (src/checks/database.ts): the Vaultwarden fixtures, damaged copies built
 * here, and proof that a user's file is never touched (bytes, mtime, directory listing).
 * Fixtures are always copied to a temp dir first: opening a WAL-mode file the usual way would
 * create -wal/-shm files beside it.
 */
import { DatabaseSync } from "node:sqlite";
import { gzipSync } from "node:zlib";
import { exitCodeFor } from "../../src/checks/check.ts";
import type { Check } from "../../src/checks/check.ts";
import { checkDatabaseFile, describeForeignContent } from "../../src/checks/database.ts";
import { checkApplication } from "../../src/apps/check_application.ts";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";
import { resealWal, walCommitFieldOffset } from "../support/wal_craft.ts";
import { walFrameOffset } from "../../src/formats/sqlite_wal.ts";
import type { TempDir } from "../support/tmp.ts";

const FIXTURES = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;
const POPULATED = "vw-1.37.2-populated.sqlite3";

async function copyFixture(dir: TempDir, name: string, as = name): Promise<string> {
  const dest = dir.join(as);
  await Deno.copyFile(FIXTURES + name, dest);
  return dest;
}

function byId(checks: Check[]): Map<string, Check> {
  return new Map(checks.map((c) => [c.id, c]));
}

function get(checks: Check[], id: string): Check {
  const c = byId(checks).get(id);
  assert(c, `no check ${id} in ${checks.map((x) => x.id).join(", ")}`);
  return c;
}

/** id → status of every check, for compact assertions. */
function statuses(checks: Check[]): Record<string, string> {
  return Object.fromEntries(checks.map((c) => [c.id, c.status]));
}

const run = (path: string, quick = false) => checkDatabaseFile(path, { quick, restored: false });

Deno.test("clean fixtures: every database check passes", async () => {
  await using dir = await makeTempDir();
  for (
    const name of [
      "vw-1.20.0.sqlite3",
      "vw-1.30.0.sqlite3",
      "vw-1.37.2.sqlite3",
      POPULATED,
      "vw-1.37.2-populated-missing-table.sqlite3",
    ]
  ) {
    const checks = await run(await copyFixture(dir, name));
    assertEquals(statuses(checks), {
      "file.format": "pass",
      "db.header": "pass",
      "file.size": "pass",
      "db.integrity": "pass",
      "db.foreign-keys": "pass",
    }, name);
    assertEquals(exitCodeFor(checks), 0);
  }
  const checks = await run(await copyFixture(dir, POPULATED, "p.sqlite3"));
  assertMatch(get(checks, "db.header").message, /^4096-byte pages, WAL mode, UTF-8/);
  assertEquals(get(checks, "file.size").message, "598,016 bytes = 146 pages, as the header says");
  assertEquals(get(checks, "db.integrity").message, "integrity_check: ok");
  assertEquals(
    get(await run(await copyFixture(dir, POPULATED, "q.sqlite3"), true), "db.integrity").message,
    "quick_check: ok",
  );
});

Deno.test("corrupt page: integrity_check fails (exit 6) and names the damaged table", async () => {
  await using dir = await makeTempDir();
  const path = await copyFixture(dir, "vw-1.37.2-populated-corrupt-page.sqlite3");
  for (const quick of [false, true]) {
    const checks = await run(path, quick);
    const integrity = get(checks, "db.integrity");
    assertEquals(integrity.status, "fail");
    assertEquals(integrity.exitCode, 6);
    assertMatch(integrity.message, quick ? /^quick_check / : /^integrity_check /);
    assertMatch(integrity.message, /malformed.*damaged: table ciphers$/);
    assert(!integrity.message.includes("\n"));
    // foreign_key_check cannot read ciphers: said, not hidden as "no violations"
    const fk = get(checks, "db.foreign-keys");
    assertEquals(fk.status, "warn");
    assertMatch(fk.message, /could not check ciphers/);
    assertEquals(exitCodeFor(checks), 6);
  }
  // `SELECT count(*)` still answers 200 from the PK index: a count alone proves nothing.
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    assertEquals(db.prepare("SELECT count(*) AS n FROM ciphers").get()?.n, 200);
  } finally {
    db.close();
  }
});

Deno.test("orphan cipher: foreign_key_check names child → parent and the count", async () => {
  await using dir = await makeTempDir();
  const checks = await run(await copyFixture(dir, "vw-1.37.2-populated-orphan-cipher.sqlite3"));
  const fk = get(checks, "db.foreign-keys");
  assertEquals([fk.status, fk.exitCode], ["fail", 6]);
  assertEquals(
    fk.message,
    "foreign_key_check: 1 row points at a missing parent (ciphers → users: 1 row)",
  );
  assertEquals(get(checks, "db.integrity").status, "pass");
  assertEquals(exitCodeFor(checks), 6);
});

Deno.test("missing file or a directory: exit 2; 0 bytes, gzip, other content: exit 6", async () => {
  await using dir = await makeTempDir();
  let checks = await run(dir.join("nope.sqlite3"));
  assertEquals(checks, [{
    id: "file.exists",
    status: "fail",
    message: `${dir.join("nope.sqlite3")}: no such file`,
    exitCode: 2,
  }]);
  checks = await run(dir.path);
  assertEquals([checks[0].id, checks[0].exitCode], ["file.exists", 2]);
  assertMatch(checks[0].message, /is a directory/);

  const one = async (name: string, data: Uint8Array) => {
    await Deno.writeFile(dir.join(name), data);
    const cs = await run(dir.join(name));
    assertEquals(cs.length, 1, name);
    assertEquals([cs[0].id, cs[0].status, cs[0].exitCode], ["file.format", "fail", 6], name);
    return cs[0].message;
  };
  assertMatch(await one("empty.sqlite3", new Uint8Array()), /^0 bytes/);
  const fixture = await Deno.readFile(FIXTURES + POPULATED);
  assertEquals(
    await one("db.sqlite3.gz", gzipSync(fixture)),
    "this is a gzip file; decompress it first (gunzip)",
  );
  assertMatch(
    await one("notes.txt", new TextEncoder().encode("hello, world\n".repeat(20))),
    /^not a SQLite database/,
  );
  assertMatch(await one("head.sqlite3", fixture.subarray(0, 60)), /header is cut off/);
  assertMatch(await one("zeros.sqlite3", new Uint8Array(8192)), /all zero/);
  assertMatch(await one("snap.lz4", new Uint8Array([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40])), /LZ4/);
  assertEquals(describeForeignContent(fixture.subarray(0, 100)), null);
});

Deno.test("truncated: mid-page, and whole pages short of the header's page count", async () => {
  await using dir = await makeTempDir();
  const fixture = await Deno.readFile(FIXTURES + POPULATED);

  await Deno.writeFile(dir.join("mid.sqlite3"), fixture.subarray(0, 300_000));
  let checks = await run(dir.join("mid.sqlite3"));
  let size = get(checks, "file.size");
  assertEquals([size.status, size.exitCode], ["fail", 6]);
  assertMatch(size.message, /^truncated: 300,000 bytes is not a whole number of 4096-byte pages/);
  assertEquals(exitCodeFor(checks), 6);

  await Deno.writeFile(dir.join("pages.sqlite3"), fixture.subarray(0, 100 * 4096));
  checks = await run(dir.join("pages.sqlite3"));
  size = get(checks, "file.size");
  assertEquals(size.status, "fail");
  assertMatch(
    size.message,
    /^truncated: the header says 146 pages \(598,016 bytes\) but the file has 409,600 bytes \(100\)/,
  );
  assert(checks.some((c) => c.id.startsWith("db.") && c.id !== "db.header" && c.status === "fail"));

  // Longer than the header says: a warning only.
  const longer = new Uint8Array(fixture.length + 4096);
  longer.set(fixture);
  await Deno.writeFile(dir.join("long.sqlite3"), longer);
  checks = await run(dir.join("long.sqlite3"));
  assertEquals(get(checks, "file.size").status, "warn");
  assertEquals(exitCodeFor(checks), 0);
});

Deno.test("header sanity: page size, versions, reserved bytes, payload fractions", async () => {
  await using dir = await makeTempDir();
  const fixture = await Deno.readFile(FIXTURES + POPULATED);
  const cases: [string, (b: Uint8Array) => void, RegExp][] = [
    ["pagesize", (b) => b.set([0x03, 0xe8], 16), /invalid SQLite page size 1000/],
    ["version", (b) => (b[18] = 3), /file format versions 3\/2/],
    [
      "reserved",
      (b) => {
        b.set([0x02, 0x00], 16); // 512-byte pages…
        b[20] = 100; // …of which 100 reserved leave 412 usable (< 480)
      },
      /100 reserved bytes per page at byte 20 leave less than 480 usable bytes of a 512-byte page/,
    ],
    ["fraction", (b) => (b[21] = 65), /payload fractions 65\/32\/32/],
  ];
  for (const [name, damage, re] of cases) {
    const copy = fixture.slice();
    damage(copy);
    await Deno.writeFile(dir.join(name), copy);
    const checks = await run(dir.join(name));
    const h = get(checks, "db.header");
    assertEquals([h.status, h.exitCode], ["fail", 6], name);
    assertMatch(h.message, re);
    assertEquals(checks.at(-1)?.id, "db.header", "no SQLite checks after a damaged header");
  }
});

/** A WAL-mode database and a copy of it taken while a writer still has frames in its -wal. */
function makeLiveCopy(dir: TempDir, opts: { checkpointFirst: boolean }): string {
  const live = dir.join("live.sqlite3");
  const w = new DatabaseSync(live);
  try {
    w.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;");
    w.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    w.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    w.exec("INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);");
    if (opts.checkpointFirst) w.exec("PRAGMA wal_checkpoint(PASSIVE)");
    Deno.mkdirSync(dir.join("copy"));
    for (const suffix of ["", "-wal", "-shm"]) {
      Deno.copyFileSync(live + suffix, dir.join("copy", `db.sqlite3${suffix}`));
    }
  } finally {
    w.close();
  }
  return dir.join("copy", "db.sqlite3");
}

Deno.test("a -wal with committed pages beside the file: fail 6, and the main file is still checked", async () => {
  await using dir = await makeTempDir();
  const path = makeLiveCopy(dir, { checkpointFirst: false });
  assert(Deno.statSync(`${path}-wal`).size > 0);
  const checks = await run(path);
  const wal = get(checks, "db.wal");
  assertEquals([wal.status, wal.exitCode], ["fail", 6]);
  assertMatch(
    wal.message,
    /^db\.sqlite3-wal holds 1 committed page the main file lacks: the main file alone is stale/,
  );
  assertMatch(wal.message, /PRAGMA wal_checkpoint/);
  assertEquals(get(checks, "db.integrity").status, "pass");
  assertEquals(get(checks, "db.foreign-keys").status, "pass");
});

Deno.test("a -wal already checkpointed, or invalid, is not a failure", async () => {
  await using dir = await makeTempDir();
  const path = makeLiveCopy(dir, { checkpointFirst: true });
  assert(Deno.statSync(`${path}-wal`).size > 0);
  let wal = get(await run(path), "db.wal");
  assertEquals(wal.status, "pass");
  assertMatch(wal.message, /already checkpointed into the main file/);

  await Deno.writeFile(`${path}-wal`, new Uint8Array(5000).fill(7));
  wal = get(await run(path), "db.wal");
  assertEquals(wal.status, "warn");
  assertMatch(wal.message, /no valid WAL header .*SQLite ignores it/);
});

Deno.test("a -wal's frames are read by the WAL reader: its end reason and SQLite's size bound", async () => {
  await using dir = await makeTempDir();
  const path = makeLiveCopy(dir, { checkpointFirst: false });
  const walPath = `${path}-wal`;
  const wal = await Deno.readFile(walPath);
  const ps = new DataView(wal.buffer).getUint32(8);
  const frames = (wal.length - 32) / (24 + ps);
  assert(Number.isInteger(frames) && frames >= 2, `frames: ${frames}`);

  // A damaged last frame: SQLite's recovery stops there, and the message says where and why.
  const damaged = wal.slice();
  damaged[walFrameOffset(frames - 1, ps) + 24 + 100] ^= 1;
  await Deno.writeFile(walPath, damaged);
  let check = get(await run(path), "db.wal");
  assertEquals([check.status, check.exitCode], ["fail", 6]);
  assertMatch(
    check.message,
    new RegExp(
      `SQLite ignores the rest of it \\(frame ${frames - 1} \\(page \\d+\\): checksum mismatch`,
    ),
  );

  // A checksum-valid commit frame claiming 4294967295 pages: SQLite refuses to checkpoint it.
  const huge = wal.slice();
  new DataView(huge.buffer).setUint32(walCommitFieldOffset(frames - 1, ps), 0xffffffff);
  await Deno.writeFile(walPath, resealWal(huge));
  check = get(await run(path), "db.wal");
  assertEquals([check.status, check.exitCode], ["fail", 6]);
  assertMatch(
    check.message,
    /^db\.sqlite3-wal is damaged: its last commit frame sets the database to 4294967295 pages/,
  );
  assertMatch(check.message, /database disk image is malformed/);
});

Deno.test("a hot rollback journal beside the file: warn", async () => {
  await using dir = await makeTempDir();
  const path = await copyFixture(dir, POPULATED);
  const journal = new Uint8Array(512);
  journal.set([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
  await Deno.writeFile(`${path}-journal`, journal);
  const checks = await run(path);
  assertEquals(get(checks, "db.journal").status, "warn");
  assertEquals(exitCodeFor(checks), 0);
});

/** Names, sizes, mtimes and bytes of every file in `dir`. */
async function snapshot(dir: string): Promise<Map<string, { mtime: number; bytes: Uint8Array }>> {
  const out = new Map<string, { mtime: number; bytes: Uint8Array }>();
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    const st = await Deno.stat(p);
    out.set(e.name, { mtime: st.mtime?.getTime() ?? -1, bytes: await Deno.readFile(p) });
  }
  return out;
}

Deno.test("verify --file is strictly read-only: no file created, bytes and mtimes unchanged", async () => {
  await using dir = await makeTempDir();
  // A WAL-mode fixture alone, a live copy with -wal and -shm, a damaged file.
  await Deno.mkdir(dir.join("plain"));
  await copyFixture(dir, POPULATED, "plain/db.sqlite3");
  const live = makeLiveCopy(dir, { checkpointFirst: false });
  await Deno.mkdir(dir.join("corrupt"));
  await copyFixture(dir, "vw-1.37.2-populated-corrupt-page.sqlite3", "corrupt/db.sqlite3");
  for (const path of [dir.join("plain", "db.sqlite3"), live, dir.join("corrupt", "db.sqlite3")]) {
    const parent = path.slice(0, path.lastIndexOf("/"));
    const before = await snapshot(parent);
    await new Promise((r) => setTimeout(r, 20)); // an mtime change would be visible
    for (const quick of [false, true]) await run(path, quick);
    for (const mode of ["auto", "vaultwarden"] as const) await checkApplication(path, mode);
    const after = await snapshot(parent);
    assertEquals([...after.keys()].sort(), [...before.keys()].sort(), path);
    for (const [name, b] of before) {
      const a = after.get(name)!;
      assertEquals(a.mtime, b.mtime, `${name} mtime`);
      assert(
        a.bytes.length === b.bytes.length && a.bytes.every((x, i) => x === b.bytes[i]),
        `${name} bytes`,
      );
    }
  }
});

Deno.test("restored copies get the same checks", async () => {
  await using dir = await makeTempDir();
  const checks = await checkDatabaseFile(
    await copyFixture(dir, "vw-1.37.2-populated-orphan-cipher.sqlite3"),
    {
      quick: false,
      restored: true,
    },
  );
  assertEquals(get(checks, "db.foreign-keys").status, "fail");
  assertEquals(exitCodeFor(checks), 6);
});

Deno.test("odd file names are opened through a correctly escaped URI", async () => {
  await using dir = await makeTempDir();
  await Deno.mkdir(dir.join("a dir#1?x=%41"));
  const path = await copyFixture(dir, "vw-1.37.2.sqlite3", "a dir#1?x=%41/v w%20#?.sqlite3");
  const checks = await run(path);
  assertEquals(get(checks, "db.integrity").status, "pass");
  assertEquals((await checkApplication(path, "auto")).app?.releases, {
    min: "1.37.0",
    max: "1.37.2",
  });
});
