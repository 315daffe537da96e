/**
 * SQLite helpers for tests that drive the real Litestream v0.3.13 binary: create WAL-mode databases
 * with a chosen page size, write small and big transactions, checkpoint, VACUUM, inspect the live
 * WAL, and read user tables back for comparisons.
 *
 * Recipes (measured with Litestream v0.3.13, see tests/support/litestream_harness_test.ts):
 *
 * - **New WAL index.** While `litestream replicate` runs it holds a read transaction, so an
 *   application checkpoint cannot restart the WAL (`PRAGMA wal_checkpoint(TRUNCATE)` answers
 *   busy=1). Litestream checkpoints by itself when, at a sync, the current WAL index holds at least
 *   `min-checkpoint-page-count` frames (default 1000): it runs `PRAGMA wal_checkpoint(PASSIVE)`,
 *   writes one row to `_litestream_seq`, SQLite restarts the WAL with new salts and Litestream
 *   starts index + 1. Reliable recipe: configure a small `min-checkpoint-page-count` (e.g. 32) and
 *   commit a transaction of more pages than that (`writeBigTransaction(db, { minPages: 40 })`),
 *   then `waitForSync()`. `checkpoint-interval` (default 1m; compared with the database file's
 *   mtime) also triggers it but is timing dependent.
 * - **New generation.** Stop Litestream, run `checkpoint(db, "TRUNCATE")` from the application
 *   (the WAL file becomes empty), start Litestream again: it logs
 *   `init: cannot determine last wal position, clearing generation` and
 *   `sync: new generation … reason="no generation exists"`. Closing the application's last
 *   connection while Litestream is stopped has the same effect (SQLite checkpoints and deletes the
 *   WAL on last close) — beware of it when you only meant to read.
 */
import { DatabaseSync } from "node:sqlite";
import { FormatError } from "../../src/formats/format_error.ts";
import { WAL_HEADER_SIZE, walFrameOffset, WalReader } from "../../src/formats/sqlite_wal.ts";
import { StreamReader } from "../../src/formats/stream_reader.ts";

/** Checkpoint modes accepted by `PRAGMA wal_checkpoint`. */
export type CheckpointMode = "PASSIVE" | "FULL" | "RESTART" | "TRUNCATE";

/** Options for {@link openWalDatabase}. */
export interface OpenWalOptions {
  /** Page size in bytes; only takes effect while the database is still empty. Default 4096. */
  pageSize?: number;
  /** `PRAGMA busy_timeout` in milliseconds; Litestream briefly takes the write lock. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * `PRAGMA wal_autocheckpoint` (pages). Default 0: the application never checkpoints by itself,
   * which keeps WAL indexes deterministic (only Litestream or an explicit {@link checkpoint} does).
   */
  walAutocheckpoint?: number;
}

/**
 * Opens (creating if needed) a database in WAL mode. The page size is set before anything is
 * written, so a new database gets it; an existing database keeps its page size.
 */
export function openWalDatabase(path: string, opts: OpenWalOptions = {}): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA busy_timeout = ${int(opts.busyTimeoutMs ?? 5000)}`);
    db.exec(`PRAGMA page_size = ${int(opts.pageSize ?? 4096)}`);
    const mode = db.prepare("PRAGMA journal_mode = WAL").get();
    if (mode?.journal_mode !== "wal") {
      throw new Error(`cannot enable WAL mode on ${path}: ${JSON.stringify(mode)}`);
    }
    db.exec(`PRAGMA wal_autocheckpoint = ${int(opts.walAutocheckpoint ?? 0)}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Creates a database (see {@link openWalDatabase}) with an `items` table (or `table`). */
export function createWalDatabase(
  path: string,
  opts: OpenWalOptions & { table?: string } = {},
): DatabaseSync {
  const db = openWalDatabase(path, opts);
  createItemsTable(db, opts.table);
  return db;
}

/** `CREATE TABLE IF NOT EXISTS <table>(id INTEGER PRIMARY KEY, label TEXT NOT NULL, body TEXT)`. */
export function createItemsTable(db: DatabaseSync, table = "items"): void {
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${ident(table)} ` +
      `(id INTEGER PRIMARY KEY, label TEXT NOT NULL, body TEXT)`,
  );
}

/** Current `PRAGMA page_size`. */
export function pageSizeOf(db: DatabaseSync): number {
  return Number(db.prepare("PRAGMA page_size").get()?.page_size);
}

/** Options for the write helpers. */
export interface WriteOptions {
  /** Table created by {@link createItemsTable}. Default `items`. */
  table?: string;
  /** Length of the `body` text per row. Default 100. */
  payloadBytes?: number;
  /** Label prefix of the rows, to tell batches apart. Default `row`. */
  label?: string;
}

/** Inserts `count` rows, each in its own transaction (autocommit). Returns the new row ids. */
export function writeSmallTransactions(
  db: DatabaseSync,
  count: number,
  opts: WriteOptions = {},
): number[] {
  const stmt = db.prepare(
    `INSERT INTO ${ident(opts.table ?? "items")} (label, body) VALUES (?, ?)`,
  );
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const label = `${opts.label ?? "row"}-${i}`;
    ids.push(Number(stmt.run(label, payload(label, opts.payloadBytes ?? 100)).lastInsertRowid));
  }
  return ids;
}

/**
 * Inserts rows in one transaction. With `minPages` it inserts that many rows of one page of payload
 * each, so the commit adds at least `minPages` WAL frames; otherwise `rows` rows (default 100).
 * Returns the number of rows inserted.
 */
export function writeBigTransaction(
  db: DatabaseSync,
  opts: WriteOptions & { rows?: number; minPages?: number } = {},
): number {
  const rows = opts.minPages ?? opts.rows ?? 100;
  const bytes = opts.minPages !== undefined ? pageSizeOf(db) : opts.payloadBytes ?? 100;
  const stmt = db.prepare(
    `INSERT INTO ${ident(opts.table ?? "items")} (label, body) VALUES (?, ?)`,
  );
  inTransaction(db, () => {
    for (let i = 0; i < rows; i++) {
      const label = `${opts.label ?? "big"}-${i}`;
      stmt.run(label, payload(label, bytes));
    }
  });
  return rows;
}

/** Runs `fn` between `BEGIN IMMEDIATE` and `COMMIT` (rolled back if it throws). */
export function inTransaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/** Result row of `PRAGMA wal_checkpoint`. */
export interface CheckpointResult {
  /** 1 when the checkpoint could not complete (e.g. Litestream holds its read lock). */
  busy: number;
  /** Frames in the WAL (-1 if not in WAL mode). */
  log: number;
  /** Frames checkpointed into the database file. */
  checkpointed: number;
}

/**
 * Runs `PRAGMA wal_checkpoint(mode)` (default TRUNCATE). While Litestream replicates, expect
 * `busy: 1` for TRUNCATE/RESTART — Litestream's read transaction prevents a WAL restart.
 */
export function checkpoint(db: DatabaseSync, mode: CheckpointMode = "TRUNCATE"): CheckpointResult {
  const row = db.prepare(`PRAGMA wal_checkpoint(${mode})`).get();
  return {
    busy: Number(row?.busy),
    log: Number(row?.log),
    checkpointed: Number(row?.checkpointed),
  };
}

/**
 * Shrinks the database: deletes every row of `table` whose id is greater than `keepRows` (default:
 * keep none) and runs VACUUM. The commit of a VACUUM carries a smaller database size in the WAL,
 * which a restore must honour by truncating the file.
 */
export function shrinkWithVacuum(
  db: DatabaseSync,
  opts: { table?: string; keepRows?: number } = {},
): void {
  db.prepare(`DELETE FROM ${ident(opts.table ?? "items")} WHERE id > ?`).run(opts.keepRows ?? 0);
  db.exec("VACUUM");
}

/** Number of pages of the database (`PRAGMA page_count`). */
export function pageCountOf(db: DatabaseSync): number {
  return Number(db.prepare("PRAGMA page_count").get()?.page_count);
}

// ---------------------------------------------------------------------------------------------
// Reading tables back

/** A row with values normalised for deep equality (BLOBs as `{ blob: hex }`, bigints as strings). */
export type NormalizedValue = string | number | null | { blob: string };
export type NormalizedRow = Record<string, NormalizedValue>;

/** Names of user tables: everything but `sqlite_%` and Litestream's `_litestream_%` tables. */
export function userTableNames(db: DatabaseSync): string[] {
  return db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' " +
      "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' " +
      "ORDER BY name",
  ).all().map((r) => String(r.name));
}

/**
 * Reads every user table (see {@link userTableNames}) of the database at `path`, opened read-only,
 * as rows sorted canonically. Compare two databases with `assert.deepStrictEqual` on the results.
 * Opening read-only never checkpoints or deletes the WAL on close, so it is safe on a live source.
 */
export function readUserTables(path: string): Record<string, NormalizedRow[]> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const out: Record<string, NormalizedRow[]> = {};
    for (const table of userTableNames(db)) {
      const rows = db.prepare(`SELECT * FROM ${ident(table)}`).all().map(normalizeRow);
      rows.sort((a, b) => compareText(JSON.stringify(a), JSON.stringify(b)));
      out[table] = rows;
    }
    return out;
  } finally {
    db.close();
  }
}

/** `SELECT count(*)` of one table of the database at `path` (opened read-only). */
export function countRows(path: string, table: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(db.prepare(`SELECT count(*) AS n FROM ${ident(table)}`).get()?.n);
  } finally {
    db.close();
  }
}

function normalizeRow(row: Record<string, unknown>): NormalizedRow {
  const out: NormalizedRow = {};
  for (const [k, v] of Object.entries(row)) out[k] = normalizeValue(v);
  return out;
}

function normalizeValue(v: unknown): NormalizedValue {
  if (v === null || typeof v === "string" || typeof v === "number") return v;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) {
    return { blob: Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("") };
  }
  throw new Error(`unexpected SQLite value: ${String(v)}`);
}

// ---------------------------------------------------------------------------------------------
// Live WAL inspection (SQLite WAL format: LITESTREAM-FORMATS §1.2)

/** What a WAL file currently holds, as far as it is valid (salts and checksum chain). */
export interface WalState {
  /** The 32-byte WAL header. */
  header: Uint8Array;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** Size of the WAL file on disk (may contain stale frames of an earlier WAL cycle). */
  fileSize: number;
  /** Number of valid frames up to and including the last commit frame. */
  committedFrames: number;
  /** Byte offset just after the last valid commit frame (32 when there is none). */
  committedEnd: number;
}

/**
 * Parses the WAL file at `walPath` with litewarden's WAL reader: header, then frames while their
 * salts match the header and the checksum chain holds; reports the end of the last commit frame.
 * `undefined` when the file is missing, shorter than a header, or its header is invalid.
 */
export async function readWalState(walPath: string): Promise<WalState | undefined> {
  let buf: Uint8Array;
  try {
    buf = await Deno.readFile(walPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  let wal: WalReader;
  try {
    wal = await WalReader.open(new StreamReader(ReadableStream.from([buf])));
  } catch (err) {
    if (err instanceof FormatError) return undefined;
    throw err;
  }
  while (await wal.next());
  const h = wal.header;
  return {
    header: buf.slice(0, WAL_HEADER_SIZE),
    pageSize: h.pageSize,
    checkpointSeq: h.checkpointSeq,
    salt1: h.salt1,
    salt2: h.salt2,
    fileSize: buf.length,
    committedFrames: wal.committedFrames,
    committedEnd: walFrameOffset(wal.committedFrames, h.pageSize),
  };
}

// ---------------------------------------------------------------------------------------------

function payload(seed: string, bytes: number): string {
  let out = "";
  let i = 0;
  while (out.length < bytes) out += `${seed}:${i++};`;
  return out.slice(0, bytes);
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function int(n: number): number {
  if (!Number.isInteger(n)) throw new Error(`expected an integer, got ${n}`);
  return n;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Another process (a Deno child) holding `path` open with SQLite, as the app or Litestream does,
 * until disposed. Resolves once it has read from the database.
 */
export async function holdOpenInChild(
  path: string,
  table: string,
): Promise<AsyncDisposable & { pid: number }> {
  const holder = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { DatabaseSync } from "node:sqlite";
       const db = new DatabaseSync(${JSON.stringify(path)});
       db.prepare(${JSON.stringify(`SELECT count(*) FROM "${table}"`)}).get();
       console.log("open");
       await new Promise((r) => setTimeout(r, 60_000));`,
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const stop = async () => {
    holder.kill("SIGKILL");
    await holder.status;
    await holder.stdout.cancel().catch(() => {});
  };
  try {
    const reader = holder.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const said = new TextDecoder().decode(value).trim();
    if (said !== "open") throw new Error(`the holder process said ${JSON.stringify(said)}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: holder.pid, [Symbol.asyncDispose]: stop };
}
