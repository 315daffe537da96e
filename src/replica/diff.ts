import { readOnlyUri } from "../lib/sqlite.ts";
import { DatabaseSync } from "node:sqlite";

/** Litestream's own bookkeeping tables change on every checkpoint; they are not user data. */
const IGNORED_TABLES = /^(sqlite_|_litestream_)/;

export interface SchemaChange {
  type: string;
  name: string;
  change: "added" | "removed" | "changed";
}

export interface TableDiff {
  table: string;
  /** How rows were matched: the primary key columns, or `rowid`. */
  key: string[];
  rowsBefore: number;
  rowsAfter: number;
  added: number;
  removed: number;
  changed: number;
  /** Up to `keyLimit` primary-key values per kind (ids only, never row content). */
  addedKeys: string[];
  removedKeys: string[];
  changedKeys: string[];
}

export interface DatabaseDiff {
  schema: SchemaChange[];
  tables: TableDiff[];
}

/**
 * Compares two database files opened read-only. Row sets are compared inside SQLite (EXCEPT over
 * the attached database), so memory stays flat whatever the table sizes; only counts and key
 * values leave SQLite — never column contents, which may be encrypted vault data.
 */
export function diffDatabases(
  beforePath: string,
  afterPath: string,
  keyLimit = 20,
  onlyTable?: string,
): DatabaseDiff {
  return withAttachedPair(beforePath, afterPath, (db) => diffAttached(db, keyLimit, onlyTable));
}

/**
 * Runs `fn` on one read-only connection where `main` is the older database and `after` the newer,
 * so any comparison stays inside SQLite (the application summaries use it too).
 */
export function withAttachedPair<T>(
  beforePath: string,
  afterPath: string,
  fn: (db: DatabaseSync) => T,
): T {
  const db = new DatabaseSync(readOnlyUri(beforePath), { readOnly: true });
  try {
    // readOnlyUri percent-encodes the path: SQLite reads `?` and `#` in a URI as its query and
    // fragment, so a temp dir like `/x/decoy.db?a=/…` must not reach it raw.
    db.exec(`ATTACH DATABASE ${sqlString(readOnlyUri(afterPath))} AS after`);
    return fn(db);
  } finally {
    db.close();
  }
}

function diffAttached(db: DatabaseSync, keyLimit: number, onlyTable?: string): DatabaseDiff {
  const schemaOf = (schema: string) =>
    new Map(
      (db.prepare(
        `SELECT type, name, sql FROM ${schema}.sqlite_master WHERE sql IS NOT NULL`,
      ).all() as { type: string; name: string; sql: string }[])
        .filter((r) => !IGNORED_TABLES.test(r.name))
        .map((r) => [`${r.type}:${r.name}`, r]),
    );
  const before = schemaOf("main");
  const after = schemaOf("after");
  const schema: SchemaChange[] = [];
  for (const [k, r] of after) {
    const old = before.get(k);
    if (!old) schema.push({ type: r.type, name: r.name, change: "added" });
    else if (normalizeSql(old.sql) !== normalizeSql(r.sql)) {
      schema.push({ type: r.type, name: r.name, change: "changed" });
    }
  }
  for (const [k, r] of before) {
    if (!after.has(k)) schema.push({ type: r.type, name: r.name, change: "removed" });
  }
  const tables: TableDiff[] = [];
  const names = new Set(
    [...before.values(), ...after.values()].filter((r) => r.type === "table").map((r) => r.name),
  );
  for (const table of [...names].sort()) {
    if (onlyTable !== undefined && table !== onlyTable) continue;
    const inBefore = before.get(`table:${table}`);
    const inAfter = after.get(`table:${table}`);
    const count = (schemaName: string) =>
      Number(
        (db.prepare(`SELECT count(*) AS n FROM ${schemaName}.${ident(table)}`).get() as {
          n: number;
        }).n,
      );
    if (!inBefore || !inAfter) {
      tables.push({
        table,
        key: [],
        rowsBefore: inBefore ? count("main") : 0,
        rowsAfter: inAfter ? count("after") : 0,
        added: inAfter ? count("after") : 0,
        removed: inBefore ? count("main") : 0,
        changed: 0,
        addedKeys: [],
        removedKeys: [],
        changedKeys: [],
      });
      continue;
    }
    tables.push(diffTable(db, table, keyLimit, count("main"), count("after")));
  }
  return {
    schema,
    tables: tables.filter((t) => t.added || t.removed || t.changed || t.key.length === 0),
  };
}

function diffTable(
  db: DatabaseSync,
  table: string,
  keyLimit: number,
  rowsBefore: number,
  rowsAfter: number,
): TableDiff {
  const t = ident(table);
  const cols = (
    schemaName: string,
  ) => (db.prepare(`SELECT name, pk FROM pragma_table_info(?, ?) ORDER BY cid`).all(
    table,
    schemaName,
  ) as { name: string; pk: number }[]);
  const colsBefore = cols("main");
  const colsAfter = cols("after");
  const shared = colsAfter.filter((c) => colsBefore.some((b) => b.name === c.name));
  let key = colsAfter.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const withoutRowid = /WITHOUT\s+ROWID/i.test(
    String(
      (db.prepare("SELECT sql FROM after.sqlite_master WHERE type='table' AND name=?").get(
        table,
      ) as { sql: string } | undefined)?.sql ?? "",
    ),
  );
  if (key.length === 0 || !key.every((k) => colsBefore.some((c) => c.name === k))) {
    key = withoutRowid ? shared.map((c) => c.name) : ["rowid"];
  }
  const keyList = key.map((k) => (k === "rowid" ? "rowid" : ident(k))).join(", ");
  const keyExpr = key.length === 1 ? keyList : `json_array(${keyList})`;
  // Rows of both sides with the same key whose other shared columns differ: a join on the key
  // (its index), so no temp copy of the table is sorted, whatever its rows hold.
  const keyCols = key.map((k) => (k === "rowid" ? "rowid" : ident(k)));
  const others = shared.map((c) => ident(c.name)).filter((c) => !keyCols.includes(c));
  const differs = others.length ? others.map((c) => `a.${c} IS NOT b.${c}`).join(" OR ") : "0";
  const changed = `SELECT ${
    keyCols.map((k) => `a.${k} AS ${k}`).join(", ")
  } FROM after.${t} a JOIN main.${t} b ON ${
    keyCols.map((k) => `a.${k} IS b.${k}`).join(" AND ")
  } WHERE ${differs}`;
  const keyOnly = (from: string, other: string) =>
    `SELECT ${keyList} FROM ${from}.${t} EXCEPT SELECT ${keyList} FROM ${other}.${t}`;
  const countOf = (sql: string) =>
    Number((db.prepare(`SELECT count(*) AS n FROM (${sql})`).get() as { n: number }).n);
  const keysOf = (sql: string) =>
    (db.prepare(`SELECT ${keyExpr} AS k FROM (${sql}) LIMIT ${keyLimit}`).all() as {
      k: unknown;
    }[]).map((r) => String(r.k));
  const added = keyOnly("after", "main");
  const removed = keyOnly("main", "after");
  return {
    table,
    key,
    rowsBefore,
    rowsAfter,
    added: countOf(added),
    removed: countOf(removed),
    changed: countOf(changed),
    addedKeys: keysOf(added),
    removedKeys: keysOf(removed),
    changedKeys: keysOf(changed),
  };
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function normalizeSql(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}
