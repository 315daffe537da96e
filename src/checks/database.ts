/**
 * Layer 4 of `verify`: is the file a healthy SQLite database? `file.*` checks are about the file
 * itself (exists, SQLite at all, complete), `db.*` checks ask SQLite (header fields, sidecar
 * files, integrity_check, foreign_key_check).
 *
 * The file is never written: the header and the -wal are read with plain reads, and SQLite opens
 * the file through a `file:` URI with `immutable=1` and `readOnly`, so it takes no locks and
 * creates no `-shm`/`-wal`/`-journal` beside it (a user's live database under `verify --file`,
 * a backup directory on read-only media). `immutable=1` ignores any `-wal`, so the SQLite checks
 * see the main file alone; `db.wal` says when the -wal holds committed pages the main file lacks.
 */
import type { DatabaseSync } from "node:sqlite";
import { FormatError } from "../formats/format_error.ts";
import { parseDatabaseHeader, SQLITE_HEADER_SIZE } from "../formats/sqlite_header.ts";
import type { DatabaseHeader } from "../formats/sqlite_header.ts";
import {
  readWalPageMap,
  walCommitSizeProblem,
  type WalPageMap,
  WalReader,
} from "../formats/sqlite_wal.ts";
import { StreamReader } from "../formats/stream_reader.ts";
import { errorText, openDatabaseReadOnly, quoteIdent } from "../lib/sqlite.ts";
import { fail, pass, warn } from "./check.ts";
import type { Check } from "./check.ts";

const SQLITE_MAGIC = "SQLite format 3\0";
/** Problems integrity_check lists at most (its argument), and how many a message quotes. */
const MAX_PROBLEMS = 100;
const QUOTED_PROBLEMS = 3;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const bytes = (n: number) => `${n.toLocaleString("en-US")} bytes`;

/**
 * Header, size, sidecar files, then `PRAGMA integrity_check` (`quick_check` with `quick`) and
 * `PRAGMA foreign_key_check`. Fails map to exit 6, a missing file to exit 2. `restored` (a temp
 * copy litewarden just restored) and a user's file get the same checks; both are opened the same
 * strictly read-only way.
 */
export async function checkDatabaseFile(
  path: string,
  opts: { quick: boolean; restored: boolean },
): Promise<Check[]> {
  const checks: Check[] = [];
  const unhealthy = (id: string, msg: string) => fail(id, msg, "unhealthy");

  // file.exists
  let size: number;
  let head: Uint8Array;
  try {
    const st = Deno.statSync(path);
    if (st.isDirectory) {
      return [fail("file.exists", `${path} is a directory, not a database file`, "usage")];
    }
    size = st.size;
    head = readAt(path, 0, SQLITE_HEADER_SIZE);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied; run as a user who may read it"
      : errorText(err);
    return [fail("file.exists", `${path}: ${why}`, "usage")];
  }

  // file.format
  if (size === 0) {
    return [unhealthy("file.format", "0 bytes: an empty file, not a database (a failed copy?)")];
  }
  const foreign = describeForeignContent(head);
  if (foreign !== null) return [unhealthy("file.format", foreign)];
  if (size < SQLITE_HEADER_SIZE) {
    return [
      unhealthy(
        "file.format",
        `only ${bytes(size)}: the 100-byte SQLite header is cut off (a truncated copy)`,
      ),
    ];
  }
  checks.push(pass("file.format", "SQLite 3 database"));

  // db.header
  let header: DatabaseHeader;
  try {
    header = parseDatabaseHeader(head);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    checks.push(unhealthy("db.header", `${err.message}: the header is damaged`));
    return checks;
  }
  const headerProblem = headerProblems(header, head);
  if (headerProblem !== null) {
    checks.push(unhealthy("db.header", `${headerProblem}: the header is damaged`));
    return checks;
  }
  checks.push(pass("db.header", describeHeader(header)));

  // file.size
  checks.push(sizeCheck(path, size, header, opts.restored));

  // Sidecar files: a -wal with committed pages, a hot rollback journal.
  const wal = await walCheck(path, header, size);
  if (wal) checks.push(wal);
  const journal = journalCheck(path);
  if (journal) checks.push(journal);

  // db.integrity, db.foreign-keys
  let db: DatabaseSync;
  try {
    db = openDatabaseReadOnly(path);
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
  } catch (err) {
    checks.push(unhealthy("db.open", `SQLite cannot read it: ${errorText(err)}`));
    return checks;
  }
  try {
    checks.push(integrityCheck(db, opts.quick));
    checks.push(foreignKeyCheck(db));
  } finally {
    db.close();
  }
  return checks;
}

/** Reads up to `n` bytes at `offset` (fewer at the end of the file). */
function readAt(path: string, offset: number, n: number): Uint8Array {
  const f = Deno.openSync(path, { read: true });
  try {
    return readFrom(f, offset, n);
  } finally {
    f.close();
  }
}

function readFrom(f: Deno.FsFile, offset: number, n: number): Uint8Array {
  const buf = new Uint8Array(n);
  f.seekSync(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < n) {
    const r = f.readSync(buf.subarray(got));
    if (r === null || r === 0) break;
    got += r;
  }
  return buf.subarray(0, got);
}

const startsWith = (b: Uint8Array, sig: number[]) => sig.every((x, i) => b[i] === x);
const ascii = (b: Uint8Array, n: number) => String.fromCharCode(...b.subarray(0, n));

/** Null for SQLite's magic; otherwise one line naming what the file is and what to do. */
export function describeForeignContent(head: Uint8Array): string | null {
  if (ascii(head, 16) === SQLITE_MAGIC) return null;
  if (SQLITE_MAGIC.startsWith(ascii(head, Math.min(head.length, 16)))) {
    return "the SQLite header is cut off (a truncated copy)";
  }
  const known: [number[], string][] = [
    [[0x1f, 0x8b], "this is a gzip file; decompress it first (gunzip)"],
    [[0x28, 0xb5, 0x2f, 0xfd], "this is a zstd file; decompress it first (zstd -d)"],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "this is an xz file; decompress it first (unxz)"],
    [[0x42, 0x5a, 0x68], "this is a bzip2 file; decompress it first (bunzip2)"],
    [[0x50, 0x4b, 0x03, 0x04], "this is a zip archive; extract the database from it first"],
    [
      [0x04, 0x22, 0x4d, 0x18],
      "this is an LZ4 frame (a Litestream v0.3 snapshot or WAL segment?); decompress it (lz4 -d) or use litewarden restore",
    ],
    [
      [0x4c, 0x54, 0x58, 0x31],
      "this is a Litestream LTX file, not a database; use litewarden restore",
    ],
    [
      [0x37, 0x7f, 0x06, 0x82],
      "this is a SQLite WAL file, not a database; check the main file beside it",
    ],
    [
      [0x37, 0x7f, 0x06, 0x83],
      "this is a SQLite WAL file, not a database; check the main file beside it",
    ],
    [
      [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7],
      "this is a SQLite rollback journal, not a database; check the main file beside it",
    ],
  ];
  for (const [sig, msg] of known) if (startsWith(head, sig)) return msg;
  if (ascii(head, 21) === "age-encryption.org/v1") {
    return "this is an age-encrypted file; decrypt it first (age -d)";
  }
  if (ascii(head, 10) === "-----BEGIN") {
    return "this is a PEM/PGP text file; decrypt it first";
  }
  if (head.every((b) => b === 0)) {
    return "the first bytes are all zero: not a SQLite database (a preallocated or wiped file?)";
  }
  return 'not a SQLite database (bytes 0-15 are not "SQLite format 3"; encrypted, or another format?)';
}

/** Header fields SQLite would refuse, beyond the magic and page size the parser checks. */
function headerProblems(h: DatabaseHeader, head: Uint8Array): string | null {
  if (head[21] !== 64 || head[22] !== 32 || head[23] !== 32) {
    return `payload fractions ${head[21]}/${head[22]}/${
      head[23]
    } at bytes 21-23 (must be 64/32/32)`;
  }
  if (h.writeVersion < 1 || h.writeVersion > 2 || h.readVersion < 1 || h.readVersion > 2) {
    return `file format versions ${h.writeVersion}/${h.readVersion} at bytes 18-19 (expected 1 or 2)`;
  }
  if (h.pageSize - h.reservedBytes < 480) {
    return `${h.reservedBytes} reserved bytes per page at byte 20 leave less than 480 usable bytes of a ${h.pageSize}-byte page`;
  }
  if (h.textEncoding > 3) return `text encoding ${h.textEncoding} at byte 56 (expected 1, 2 or 3)`;
  if (h.schemaFormat > 4) return `schema format ${h.schemaFormat} at byte 44 (expected 1 to 4)`;
  return null;
}

function describeHeader(h: DatabaseHeader): string {
  const mode = h.writeVersion === 2 ? "WAL mode" : "rollback-journal mode";
  const enc = ["", "UTF-8", "UTF-16le", "UTF-16be"][h.textEncoding] || "no encoding yet";
  const v = h.sqliteVersion;
  const by = v > 0
    ? `, last written by SQLite ${Math.floor(v / 1000000)}.${Math.floor(v / 1000) % 1000}.${
      v % 1000
    }`
    : "";
  const reserved = h.reservedBytes > 0 ? `, ${h.reservedBytes} reserved bytes per page` : "";
  return `${h.pageSize}-byte pages, ${mode}, ${enc}${reserved}${by}`;
}

/** Truncation from the header alone (VAULTWARDEN-SCHEMA §7.2). */
function sizeCheck(path: string, size: number, h: DatabaseHeader, restored: boolean): Check {
  const ps = h.pageSize;
  // A replay that ends on a size the last transaction's header disagrees with has lost committed
  // transactions: e.g. the last WAL segment of an index that another index follows is missing,
  // which no offset or name check can see. In a restored copy that is replica damage (exit 5).
  if (restored && h.pageCountValid && size % ps === 0 && size / ps !== h.pageCount) {
    return fail(
      "file.size",
      `the restored database has ${
        size / ps
      } pages but its header says ${h.pageCount}: the replay missed committed transactions; a WAL segment at the end of an index is probably missing from the replica`,
      "damaged",
    );
  }
  const walHint = nonEmptySize(`${path}-wal`) > 0
    ? " (the -wal beside it may hold the missing pages)"
    : "";
  if (size % ps !== 0) {
    return fail(
      "file.size",
      `truncated: ${
        bytes(size)
      } is not a whole number of ${ps}-byte pages (cut off mid-page: an incomplete copy or download?)${walHint}`,
      "unhealthy",
    );
  }
  const pages = size / ps;
  if (!h.pageCountValid) {
    return pass(
      "file.size",
      `${bytes(size)} = ${plural(pages, "page")} (no valid page count in the header to compare)`,
    );
  }
  if (pages < h.pageCount) {
    return fail(
      "file.size",
      `truncated: the header says ${plural(h.pageCount, "page")} (${
        bytes(h.pageCount * ps)
      }) but the file has ${bytes(size)} (${pages}): an incomplete copy or download?${walHint}`,
      "unhealthy",
    );
  }
  if (pages > h.pageCount) {
    return warn(
      "file.size",
      `${bytes(size)} = ${pages} pages, ${
        pages - h.pageCount
      } more than the ${h.pageCount} the header says: SQLite ignores the bytes past the end`,
    );
  }
  return pass("file.size", `${bytes(size)} = ${plural(pages, "page")}, as the header says`);
}

function nonEmptySize(path: string): number {
  try {
    const st = Deno.statSync(path);
    return st.isFile ? st.size : 0;
  } catch {
    return 0;
  }
}

/**
 * A non-empty `-wal` beside the file: does it hold committed pages the main file lacks? SQLite's
 * recovery rules decide which frames count (salts, checksum chain, commit frames); the newest
 * committed version of each page is compared with the main file's page.
 */
async function walCheck(path: string, h: DatabaseHeader, dbSize: number): Promise<Check | null> {
  const walPath = `${path}-wal`;
  const walSize = nonEmptySize(walPath);
  if (walSize === 0) return null;
  const name = walPath.split("/").at(-1);
  let map: WalPageMap;
  try {
    map = await readLocalWal(walPath);
  } catch (err) {
    if (err instanceof FormatError) {
      return warn(
        "db.wal",
        `${name} (${bytes(walSize)}) has no valid WAL header (${err.message}): SQLite ignores it`,
      );
    }
    return warn("db.wal", `${name} (${bytes(walSize)}) cannot be read: ${errorText(err)}`);
  }
  const ps = map.header.pageSize;
  if (ps !== h.pageSize) {
    return fail(
      "db.wal",
      `${name} has ${ps}-byte pages but the database ${h.pageSize}-byte ones: the pair does not belong together`,
      "unhealthy",
    );
  }
  // Where SQLite's recovery stops reading, when that is before the end of the file.
  const ignored = map.endReason ? `; SQLite ignores the rest of it (${map.endReason})` : "";
  if (map.committedFrames === 0) {
    return pass(
      "db.wal",
      `${name} (${bytes(walSize)}) holds no committed transaction: SQLite ignores it${ignored}`,
    );
  }
  const sizeProblem = walCommitSizeProblem(dbSize, ps, map.committedFrames, map.databaseSize);
  if (sizeProblem !== null) {
    return fail(
      "db.wal",
      `${name} is damaged: ${sizeProblem}; SQLite refuses to checkpoint it ("database disk image is malformed"); keep both files and restore from a backup`,
      "unhealthy",
    );
  }
  let differ: number;
  try {
    differ = countDifferentPages(path, walPath, map, dbSize);
  } catch (err) {
    return warn("db.wal", `cannot compare ${name} with ${path}: ${errorText(err)}`);
  }
  const dbPages = Math.floor(dbSize / ps);
  const sizeDiffers = map.databaseSize !== dbPages;
  if (differ === 0 && !sizeDiffers) {
    return pass(
      "db.wal",
      `${name} (${bytes(walSize)}): its ${
        plural(map.committedFrames, "committed frame")
      } are already checkpointed into the main file${ignored}`,
    );
  }
  const what = differ > 0
    ? `${plural(differ, "committed page")} the main file lacks`
    : `a committed size of ${map.databaseSize} pages (the main file has ${dbPages})`;
  return fail(
    "db.wal",
    `${name} holds ${what}: the main file alone is stale (a live database, or a copy without its -wal); the checks below saw the main file only; run the app once or \`sqlite3 FILE 'PRAGMA wal_checkpoint'\` on a copy of both files${ignored}`,
    "unhealthy",
  );
}

/** The committed-page map of a local -wal, streamed through the one WAL reader. */
async function readLocalWal(walPath: string): Promise<WalPageMap> {
  const file = await Deno.open(walPath, { read: true });
  const reader = new StreamReader(file.readable);
  try {
    return await readWalPageMap(await WalReader.open(reader));
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Committed WAL pages whose bytes differ from the main file's page (or that it lacks). */
function countDifferentPages(
  path: string,
  walPath: string,
  map: WalPageMap,
  dbSize: number,
): number {
  const ps = map.header.pageSize;
  const wal = Deno.openSync(walPath, { read: true });
  try {
    const db = Deno.openSync(path, { read: true });
    try {
      let differ = 0;
      for (const [pgno, off] of map.pages) {
        const walPage = readFrom(wal, off, ps);
        const dbPage = (pgno - 1) * ps < dbSize
          ? readFrom(db, (pgno - 1) * ps, ps)
          : new Uint8Array();
        if (!equalBytes(walPage, dbPage)) differ++;
      }
      return differ;
    } finally {
      db.close();
    }
  } finally {
    wal.close();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A hot rollback journal (valid journal magic): the last write may not have finished. */
function journalCheck(path: string): Check | null {
  const jPath = `${path}-journal`;
  if (nonEmptySize(jPath) === 0) return null;
  let head: Uint8Array;
  try {
    head = readAt(jPath, 0, 8);
  } catch {
    return null;
  }
  if (!startsWith(head, [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7])) return null;
  return warn(
    "db.journal",
    `a rollback journal beside the file: a write was in progress or did not finish, so the main file may hold half a transaction; open a copy of both files once with sqlite3 to roll it back`,
  );
}

/**
 * `PRAGMA integrity_check` / `quick_check`; on an exception, which tables are damaged.
 *
 * Results are read with `.all()` on a bounded query, never `.iterate()`: in Deno 2.9.6 an
 * iterator ends silently when a step fails (e.g. SQLITE_CORRUPT), which would turn a damaged
 * database into a short, clean-looking result.
 */
function integrityCheck(db: DatabaseSync, quick: boolean): Check {
  const pragma = quick ? "quick_check" : "integrity_check";
  try {
    const problems = db.prepare(`PRAGMA ${pragma}(${MAX_PROBLEMS})`).all()
      .map((row) => oneLine(String(Object.values(row)[0])))
      .filter((text) => text !== "ok" && text !== "");
    const count = problems.length;
    if (count === 0) return pass("db.integrity", `${pragma}: ok`);
    const n = count >= MAX_PROBLEMS ? `${MAX_PROBLEMS} or more problems` : plural(count, "problem");
    return fail(
      "db.integrity",
      `${pragma} found ${n}: ${problems.slice(0, QUOTED_PROBLEMS).join("; ")}${
        count > QUOTED_PROBLEMS ? "; …" : ""
      }`,
      "unhealthy",
    );
  } catch (err) {
    const damaged = perTable(db, (t) => {
      const rows = db.prepare(`PRAGMA ${pragma}(${quoteIdent(t)})`).all();
      return rows.length === 1 && Object.values(rows[0])[0] === "ok";
    });
    const where = damaged === null
      ? ""
      : damaged.length > 0
      ? `; damaged: ${damaged.slice(0, 5).join(", ")}${damaged.length > 5 ? ", …" : ""}`
      : "";
    return fail("db.integrity", `${pragma} stopped: ${errorText(err)}${where}`, "unhealthy");
  }
}

/** integrity_check's first row starts with "*** in database main ***" and a newline. */
function oneLine(text: string): string {
  return text.replace(/^\*\*\* in database \w+ \*\*\*\s*/, "").replace(/\s*\n\s*/g, " ").trim();
}

/** The tables for which `ok` returns false or throws (null when the schema cannot be read). */
function perTable(db: DatabaseSync, ok: (table: string) => boolean): string[] | null {
  let tables: string[];
  try {
    tables = tableNames(db);
  } catch {
    return null;
  }
  const bad: string[] = [];
  for (const t of tables) {
    try {
      if (!ok(t)) bad.push(`table ${t}`);
    } catch {
      bad.push(`table ${t}`);
    }
  }
  return bad;
}

export function tableNames(db: DatabaseSync): string[] {
  return db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all()
    .map((r) => String(r.name));
}

/** `PRAGMA foreign_key_check`, table by table: violations counted per child → parent. */
function foreignKeyCheck(db: DatabaseSync): Check {
  let tables: string[];
  try {
    tables = tableNames(db);
  } catch (err) {
    return fail(
      "db.foreign-keys",
      `foreign_key_check could not run: ${errorText(err)}`,
      "unhealthy",
    );
  }
  const counts = new Map<string, number>();
  const unreadable: string[] = [];
  let total = 0;
  // Aggregated in SQL: a table with millions of orphans costs one row per parent here.
  const stmt = db.prepare(
    `SELECT "table" AS child, parent, count(*) AS n FROM pragma_foreign_key_check(?) GROUP BY 1, 2`,
  );
  for (const t of tables) {
    try {
      for (const row of stmt.all(t)) {
        const key = `${String(row.child)} → ${String(row.parent)}`;
        const n = Number(row.n);
        counts.set(key, (counts.get(key) ?? 0) + n);
        total += n;
      }
    } catch (err) {
      unreadable.push(`${t} (${errorText(err)})`);
    }
  }
  const cannot = unreadable.length > 0 ? `; could not check ${unreadable.join(", ")}` : "";
  if (total > 0) {
    const list = [...counts].map(([k, n]) => `${k}: ${plural(n, "row")}`).join(", ");
    return fail(
      "db.foreign-keys",
      `foreign_key_check: ${plural(total, "row")} point${
        total === 1 ? "s" : ""
      } at a missing parent (${list})${cannot}`,
      "unhealthy",
    );
  }
  if (unreadable.length > 0) {
    return warn("db.foreign-keys", `foreign_key_check: no violations found${cannot}`);
  }
  return pass("db.foreign-keys", "foreign_key_check: no violations");
}
