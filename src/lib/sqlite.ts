/** SQLite helpers shared by the database checks and the application checks. */
import { DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";

/** Opens `path` strictly read-only: `immutable=1` (no locks, no -shm, -wal ignored). */
export function openDatabaseReadOnly(path: string): DatabaseSync {
  const abs = resolve(path);
  const uri = `file://${abs.split("/").map(encodeURIComponent).join("/")}?immutable=1`;
  return new DatabaseSync(uri, { readOnly: true });
}

/** `"name"` with embedded quotes doubled, for table names in SQL text. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
