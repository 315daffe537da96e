/** SQLite helpers shared by the database checks and the application checks. */
import { constants as sqliteConstants, DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";

/** Opens `path` strictly read-only: `immutable=1` (no locks, no -shm, -wal ignored). */
export function openDatabaseReadOnly(path: string): DatabaseSync {
  return new DatabaseSync(readOnlyUri(path, { ignoreWal: true }), { readOnly: true });
}

/**
 * A `file:` URI for `path` (every segment percent-encoded, so `?` and `#` in a directory name stay
 * part of the path) that opens it read-only: `immutable=1` unless a non-empty `-wal` lies beside
 * it, whose committed transactions are part of the database (a live one), then `mode=ro`. Either
 * way nothing is written, and no -wal or -shm is created beside a database that has none.
 * `ignoreWal`: always `immutable=1` (the checks read the main file alone).
 */
export function readOnlyUri(path: string, opts: { ignoreWal?: boolean } = {}): string {
  const abs = resolve(path);
  let walBytes = 0;
  try {
    if (!opts.ignoreWal) walBytes = Deno.statSync(`${abs}-wal`).size;
  } catch {
    // No -wal: the file alone is the database.
  }
  return `file://${abs.split("/").map(encodeURIComponent).join("/")}?${
    walBytes > 0 ? "mode=ro" : "immutable=1"
  }`;
}

/** `"name"` with embedded quotes doubled, for table names in SQL text. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * What Deno 2.9's node:sqlite has at run time but its bundled types (an older Node's) lack: the
 * authorizer, defensive mode and the authorizer's constants.
 */
interface GuardedDatabase {
  enableDefensive(on: boolean): void;
  setAuthorizer(
    fn: (action: number, arg1: string | null, arg2: string | null) => number,
  ): void;
}
const AUTH = sqliteConstants as unknown as Record<
  | "SQLITE_OK"
  | "SQLITE_DENY"
  | "SQLITE_SELECT"
  | "SQLITE_READ"
  | "SQLITE_FUNCTION"
  | "SQLITE_RECURSIVE",
  number
>;

/** Authorizer codes a read-only query needs: reading tables, calling functions, CTEs. */
const QUERY_ACTIONS = new Set([
  AUTH.SQLITE_SELECT,
  AUTH.SQLITE_READ,
  AUTH.SQLITE_FUNCTION,
  AUTH.SQLITE_RECURSIVE,
]);
/** Functions that reach outside the database (core SQLite has one). */
const DENIED_FUNCTIONS = new Set(["load_extension"]);

/**
 * Runs one user-supplied query on `path` on a connection that can only read it: opened
 * read-only and immutable, extensions off, SQLite's defensive mode on, and an authorizer that
 * refuses everything but SELECT, reading tables and calling functions (so no ATTACH, PRAGMA,
 * write, transaction or `load_extension`). Returns every row, in order, as its values.
 */
export function readOnlyQuery(path: string, sql: string): unknown[][] {
  const db = new DatabaseSync(readOnlyUri(path, { ignoreWal: true }), {
    readOnly: true,
    allowExtension: false,
  });
  try {
    const guarded = db as unknown as GuardedDatabase;
    guarded.enableDefensive(true);
    guarded.setAuthorizer((action, _table, fn) =>
      QUERY_ACTIONS.has(action) &&
        !(action === AUTH.SQLITE_FUNCTION && DENIED_FUNCTIONS.has(String(fn).toLowerCase()))
        ? AUTH.SQLITE_OK
        : AUTH.SQLITE_DENY
    );
    return db.prepare(sql).all().map((row) => Object.values(row));
  } finally {
    db.close();
  }
}
