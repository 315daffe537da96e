/** SQLite helpers shared by the database checks and the application checks. */
import { DatabaseSync } from "node:sqlite";
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
