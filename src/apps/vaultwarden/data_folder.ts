/**
 * What a Vaultwarden database references in its data folder besides itself: attachment bodies,
 * file-send bodies, and the two files that are not in any row (the JWT signing key and the
 * admin-page settings). Pure: reads rows, never encrypted fields (file names and keys stay
 * unread), never the files themselves.
 */
import type { DatabaseSync } from "node:sqlite";
import { openDatabaseReadOnly } from "../../lib/sqlite.ts";
import { parseDieselTime } from "./check.ts";
import { isVaultFileRel } from "../../replica/vault_files.ts";
import type { ReferencedFile, VaultPaths } from "../../replica/vault_files.ts";

export interface ReferencedFiles {
  /** In `rel` order, one per path (a path two rows name is listed once). */
  files: ReferencedFile[];
  /** Rows whose ids cannot be a path (a crafted or damaged row): skipped, counted. */
  invalid: number;
}

/**
 * Every file the database references. Missing tables or columns (an older schema, a database
 * that is not Vaultwarden's) mean no files of that kind.
 */
export function referencedFiles(db: DatabaseSync): ReferencedFiles {
  const byRel = new Map<string, ReferencedFile>();
  let invalid = 0;
  const add = (f: ReferencedFile) => {
    if (!isVaultFileRel(f.rel)) invalid++;
    else if (!byRel.has(f.rel)) byRel.set(f.rel, f);
  };
  if (hasColumns(db, "attachments", ["id", "cipher_uuid", "file_size"])) {
    const time = hasColumns(db, "ciphers", ["uuid", "updated_at"])
      ? "(SELECT c.updated_at FROM ciphers c WHERE c.uuid = a.cipher_uuid)"
      : "NULL";
    const rows = db.prepare(
      `SELECT a.id AS id, a.cipher_uuid AS cipher, a.file_size AS size, ${time} AS t FROM attachments a`,
    ).all();
    for (const r of rows) {
      add({
        kind: "attachment",
        rel: `attachments/${text(r.cipher)}/${text(r.id)}`,
        size: sizeOf(r.size),
        rowTime: parseDieselTime(r.t),
      });
    }
  }
  if (hasColumns(db, "sends", ["uuid", "atype", "data"])) {
    const time = hasColumns(db, "sends", ["revision_date"]) ? "revision_date" : "NULL";
    const rows = db.prepare(
      `SELECT uuid, data, ${time} AS t FROM sends WHERE atype = 1`,
    ).all();
    for (const r of rows) {
      const data = parseSendData(r.data);
      if (!data) {
        invalid++;
        continue;
      }
      add({
        kind: "send",
        rel: `sends/${text(r.uuid)}/${data.id}`,
        size: data.size,
        rowTime: parseDieselTime(r.t),
      });
    }
  }
  const files = [...byRel.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return { files, invalid };
}

/** `referencedFiles` of the database file at `path`, opened strictly read-only. */
export function readReferencedFiles(path: string): ReferencedFiles {
  const db = openDatabaseReadOnly(path);
  try {
    return referencedFiles(db);
  } finally {
    db.close();
  }
}

/**
 * Where Vaultwarden keeps the files, from the same settings it reads (its defaults live under
 * DATA_FOLDER): ATTACHMENTS_FOLDER, SENDS_FOLDER, RSA_KEY_FILENAME (given without `.pem`),
 * CONFIG_FILE. `s3://` values are Vaultwarden's own object storage: nothing local to keep.
 */
export function dataFolderPaths(
  dataDir: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): VaultPaths {
  const dir = dataDir.replace(/\/+$/, "") || "/";
  const local = (name: string, fallback: string) => {
    const v = env(name);
    if (v === undefined || v === "") return fallback;
    return /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? undefined : v;
  };
  const rsa = local("RSA_KEY_FILENAME", `${dir}/rsa_key`);
  return {
    dataDir: dir,
    attachmentsDir: local("ATTACHMENTS_FOLDER", `${dir}/attachments`),
    sendsDir: local("SENDS_FOLDER", `${dir}/sends`),
    secrets: {
      "rsa_key.pem": rsa === undefined ? undefined : `${rsa}.pem`,
      "config.json": local("CONFIG_FILE", `${dir}/config.json`),
    },
  };
}

function hasColumns(db: DatabaseSync, table: string, columns: string[]): boolean {
  const rows = db.prepare(`SELECT name FROM pragma_table_info(${sqlString(table)})`).all();
  const have = new Set(rows.map((r) => String(r.name)));
  return columns.every((c) => have.has(c));
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function text(v: unknown): string {
  return typeof v === "string" ? v : v === null || v === undefined ? "" : String(v);
}

function sizeOf(v: unknown): number | null {
  const n = typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** The file id and size of a file send's `data` JSON (`id`, `size`; the size may be a string). */
function parseSendData(raw: unknown): { id: string; size: number | null } | undefined {
  if (typeof raw !== "string") return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null) return undefined;
  const rec = data as Record<string, unknown>;
  const id = rec.id ?? rec.Id;
  if (typeof id !== "string" || id === "") return undefined;
  const size = rec.size ?? rec.Size;
  return { id, size: sizeOf(typeof size === "string" ? Number(size) : size) };
}
