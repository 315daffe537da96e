/**
 * Brings chosen Vaultwarden items back from an older copy of the database into the current one,
 * without rolling anybody else back: the cipher rows and what hangs on them (folder links of the
 * same user, collection links, favorites, archive marks, attachment rows).
 *
 * Works on one connection where `main` is the target database and `point` the older copy
 * (attached read-only). The plan refuses, with the reason, an item that cannot work in the
 * target: its owner or organization is gone, their keys changed since (the item is encrypted with
 * them and would not decrypt), one of its collections is gone, or the uuid is already there. Only
 * uuids, item types and e-mail addresses leave SQLite; rows are copied with INSERT … SELECT, so
 * encrypted fields and keys never pass through JavaScript.
 */
import type { DatabaseSync } from "node:sqlite";
import { LitewardenError } from "../../errors.ts";
import type { ErrorKind } from "../../errors.ts";
import { listForMessage } from "../../lib/message_list.ts";
import { errorText, quoteIdent } from "../../lib/sqlite.ts";
import { ITEM_TYPES, named } from "./diff_summary.ts";

/** The schema name the older copy is attached under. */
export const POINT_SCHEMA = "point";

/** One table's rows that hang on an item, and how to find them. */
interface LinkTable {
  table: string;
  /** The column naming the item. */
  itemColumn: string;
  /** The row key, for the message of a row left out (never secret: uuids). */
  keyColumn: string;
  /**
   * Rows kept only when this holds (SQL over `p`, the point's row, and `main`); the others are
   * left out with `reason` (the item still works without them).
   */
  keep?: { sql: string; reason: string };
}

/** In insert order: the cipher first, then what references it. */
const LINKS: readonly LinkTable[] = [
  {
    table: "folders_ciphers",
    itemColumn: "cipher_uuid",
    keyColumn: "folder_uuid",
    // A folder link is a user's own filing: only into that user's folder, if it still exists.
    keep: {
      sql:
        `EXISTS (SELECT 1 FROM main.folders f JOIN ${POINT_SCHEMA}.folders pf ON pf.uuid = f.uuid WHERE f.uuid = p.folder_uuid AND f.user_uuid = pf.user_uuid)`,
      reason: "the folder is gone (or is now another user's)",
    },
  },
  { table: "ciphers_collections", itemColumn: "cipher_uuid", keyColumn: "collection_uuid" },
  {
    table: "favorites",
    itemColumn: "cipher_uuid",
    keyColumn: "user_uuid",
    keep: {
      sql: "EXISTS (SELECT 1 FROM main.users u WHERE u.uuid = p.user_uuid)",
      reason: "the user is gone",
    },
  },
  {
    table: "archives",
    itemColumn: "cipher_uuid",
    keyColumn: "user_uuid",
    keep: {
      sql: "EXISTS (SELECT 1 FROM main.users u WHERE u.uuid = p.user_uuid)",
      reason: "the user is gone",
    },
  },
  { table: "attachments", itemColumn: "cipher_uuid", keyColumn: "id" },
];

export interface RecoveryItem {
  uuid: string;
  /** login, note, card, identity, ssh-key. */
  type: string;
  owner: { user: string; email: string | null } | { organization: string };
  /** Rows to copy per table (the cipher's own row under `ciphers`). */
  rows: Record<string, number>;
  /** Rows that hang on the item but cannot be copied (the item works without them). */
  skipped: { table: string; key: string; reason: string }[];
  /** Attachment rows copied; their files live outside the database (`attachments/ITEM/ID`). */
  attachments: { id: string; size: number; file: string }[];
}

export interface RecoveryPlan {
  items: RecoveryItem[];
  /** Users whose revision date is moved to now, so their clients fetch the items on next sync. */
  revisedUsers: string[];
}

/** Why an item cannot be brought back, with the exit-code kind that says it. */
interface Refusal {
  kind: ErrorKind;
  message: string;
}

/** The most telling kind first: missing at the point, cannot work here, already there. */
const REFUSAL_ORDER: readonly ErrorKind[] = ["noBackup", "appCheck", "refused"];

function columnsOf(db: DatabaseSync, schema: string, table: string) {
  return db.prepare('SELECT name, "notnull" AS nn, dflt_value AS d FROM pragma_table_info(?, ?)')
    .all(table, schema) as { name: string; nn: number; d: unknown }[];
}

/**
 * The columns to copy from the point's table into the target's: the shared ones. A column only
 * the point has that holds a value for these rows would be lost, and a NOT NULL column without a
 * default only the target has cannot be filled: both refuse (the schemas are too far apart).
 */
function copyColumns(
  db: DatabaseSync,
  table: string,
  where: string,
  args: string[],
): { columns: string[] } | { refusal: string } {
  const inPoint = columnsOf(db, POINT_SCHEMA, table);
  const inMain = columnsOf(db, "main", table);
  const mainNames = new Set(inMain.map((c) => c.name));
  const pointNames = new Set(inPoint.map((c) => c.name));
  for (const c of inMain) {
    if (!pointNames.has(c.name) && c.nn && c.d === null) {
      return {
        refusal:
          `the target's ${table}.${c.name} (NOT NULL, no default) is not in the older database: the two Vaultwarden versions are too far apart`,
      };
    }
  }
  for (const c of inPoint) {
    if (mainNames.has(c.name)) continue;
    const used = db.prepare(
      `SELECT count(*) AS n FROM ${POINT_SCHEMA}.${quoteIdent(table)} p WHERE ${where} AND p.${
        quoteIdent(c.name)
      } IS NOT NULL`,
    ).get(...args) as { n: number };
    if (Number(used.n) > 0) {
      return {
        refusal:
          `the target has no column ${table}.${c.name}, which the item uses (an older Vaultwarden than the point's)`,
      };
    }
  }
  return { columns: inPoint.filter((c) => mainNames.has(c.name)).map((c) => c.name) };
}

const hasTable = (db: DatabaseSync, schema: string, table: string) =>
  db.prepare(`SELECT 1 FROM ${schema}.sqlite_master WHERE type = 'table' AND name = ?`).get(
    table,
  ) !== undefined;

/**
 * What recovering `uuids` would copy, or a refusal naming every item that cannot be recovered and
 * why. `main` is the target, `point` the older copy (see {@link POINT_SCHEMA}).
 */
export function planRecovery(db: DatabaseSync, uuids: readonly string[]): RecoveryPlan {
  const refusals: Refusal[] = [];
  const items: RecoveryItem[] = [];
  const revised = new Set<string>();
  const refuse = (kind: ErrorKind, message: string) => refusals.push({ kind, message });
  for (const uuid of uuids) {
    const row = db.prepare(
      `SELECT atype, user_uuid, organization_uuid FROM ${POINT_SCHEMA}.ciphers WHERE uuid = ?`,
    ).get(uuid) as
      | { atype: unknown; user_uuid: string | null; organization_uuid: string | null }
      | undefined;
    if (!row) {
      refuse("noBackup", `item ${uuid} is not in the database at that point`);
      continue;
    }
    const present = db.prepare(
      "SELECT deleted_at IS NOT NULL AS trashed FROM main.ciphers WHERE uuid = ?",
    )
      .get(uuid) as { trashed: number } | undefined;
    if (present) {
      refuse(
        "refused",
        `item ${uuid} is already in the target${
          present.trashed ? " (in the trash: restore it from the trash in Vaultwarden)" : ""
        }`,
      );
      continue;
    }
    const problems: string[] = [];
    let owner: RecoveryItem["owner"];
    if (row.organization_uuid) {
      const org = row.organization_uuid;
      owner = { organization: org };
      const now = db.prepare(
        `SELECT (o.private_key IS NOT p.private_key OR o.public_key IS NOT p.public_key) AS rekeyed
           FROM main.organizations o JOIN ${POINT_SCHEMA}.organizations p ON p.uuid = o.uuid
          WHERE o.uuid = ?`,
      ).get(org) as { rekeyed: number } | undefined;
      if (!now) problems.push(`its organization ${org} no longer exists`);
      else if (now.rekeyed) {
        problems.push(
          `the key of its organization ${org} changed since (the item is encrypted with the old one and would not decrypt)`,
        );
      }
      const gone = (db.prepare(
        `SELECT p.collection_uuid AS c FROM ${POINT_SCHEMA}.ciphers_collections p
          WHERE p.cipher_uuid = ? AND NOT EXISTS (
            SELECT 1 FROM main.collections m WHERE m.uuid = p.collection_uuid AND m.org_uuid = ?)
          ORDER BY 1`,
      ).all(uuid, org) as { c: string }[]).map((r) => r.c);
      if (now && gone.length > 0) {
        problems.push(
          `${gone.length === 1 ? "its collection" : "its collections"} ${listForMessage(gone, 3)} ${
            gone.length === 1 ? "is" : "are"
          } gone`,
        );
      }
      for (
        const m of db.prepare(
          "SELECT user_uuid AS u FROM main.users_organizations WHERE org_uuid = ?",
        )
          .all(org) as { u: string }[]
      ) revised.add(m.u);
    } else if (row.user_uuid) {
      const user = row.user_uuid;
      const now = db.prepare(
        // A password or KDF change re-wraps the same user key (akey changes, the private key
        // encrypted with that key does not); a key rotation re-encrypts the private key.
        `SELECT u.email AS email,
                CASE WHEN u.private_key IS NULL AND p.private_key IS NULL THEN u.akey IS NOT p.akey
                     ELSE u.private_key IS NOT p.private_key OR u.public_key IS NOT p.public_key
                END AS rekeyed
           FROM main.users u JOIN ${POINT_SCHEMA}.users p ON p.uuid = u.uuid WHERE u.uuid = ?`,
      ).get(user) as { email: string; rekeyed: number } | undefined;
      const email = now?.email ??
        (db.prepare(`SELECT email FROM ${POINT_SCHEMA}.users WHERE uuid = ?`).get(user) as
          | { email: string }
          | undefined)?.email ??
        null;
      owner = { user, email };
      const who = `${email ?? "?"} (${user})`;
      if (!now) problems.push(`its owner ${who} no longer exists`);
      else if (now.rekeyed) {
        problems.push(
          `its owner ${who} re-keyed their account since (a key rotation: the item is encrypted with the old key and would not decrypt)`,
        );
      }
      revised.add(user);
    } else {
      refuse("appCheck", `item ${uuid} has neither an owner nor an organization at that point`);
      continue;
    }
    const rows: Record<string, number> = { ciphers: 1 };
    const skipped: RecoveryItem["skipped"] = [];
    const cipherCols = copyColumns(db, "ciphers", "p.uuid = ?", [uuid]);
    if ("refusal" in cipherCols) problems.push(cipherCols.refusal);
    for (const link of LINKS) {
      if (!hasTable(db, POINT_SCHEMA, link.table)) continue;
      const t = quoteIdent(link.table);
      const at = `p.${quoteIdent(link.itemColumn)} = ?`;
      const all = db.prepare(
        `SELECT p.${quoteIdent(link.keyColumn)} AS k${
          link.keep ? `, (${link.keep.sql}) AS keep` : ", 1 AS keep"
        } FROM ${POINT_SCHEMA}.${t} p WHERE ${at} ORDER BY 1`,
      ).all(uuid) as { k: string; keep: number }[];
      if (all.length === 0) continue;
      if (!hasTable(db, "main", link.table)) {
        for (const r of all) {
          skipped.push({ table: link.table, key: r.k, reason: "the target has no such table" });
        }
        continue;
      }
      const cols = copyColumns(db, link.table, at, [uuid]);
      if ("refusal" in cols) problems.push(cols.refusal);
      for (const r of all) {
        if (!r.keep) skipped.push({ table: link.table, key: r.k, reason: link.keep!.reason });
      }
      const kept = all.filter((r) => r.keep).length;
      if (kept > 0) rows[link.table] = kept;
    }
    const attachments = hasTable(db, POINT_SCHEMA, "attachments")
      ? (db.prepare(
        `SELECT id, file_size AS size FROM ${POINT_SCHEMA}.attachments WHERE cipher_uuid = ? ORDER BY id`,
      ).all(uuid) as { id: string; size: number }[]).map((a) => ({
        id: a.id,
        size: Number(a.size),
        file: `attachments/${uuid}/${a.id}`,
      }))
      : [];
    const taken = attachments.filter((a) =>
      db.prepare("SELECT 1 FROM main.attachments WHERE id = ?").get(a.id) !== undefined
    );
    if (taken.length > 0) {
      refuse(
        "refused",
        `item ${uuid}: attachment ${
          listForMessage(taken.map((a) => a.id), 3)
        } is already in the target`,
      );
      continue;
    }
    if (problems.length > 0) {
      refuse("appCheck", `item ${uuid} cannot work in the target: ${problems.join("; ")}`);
      continue;
    }
    items.push({
      uuid,
      type: named(ITEM_TYPES, row.atype),
      owner,
      rows,
      skipped,
      attachments,
    });
  }
  if (refusals.length > 0) {
    const kind = REFUSAL_ORDER.find((k) => refusals.some((r) => r.kind === k)) ?? "appCheck";
    throw new LitewardenError(
      kind,
      `${
        refusals.map((r) => r.message).join("; ")
      }; nothing was recovered, the target is unchanged`,
    );
  }
  // Only users still in the target can be told to sync.
  const revisedUsers = [...revised].filter((u) =>
    db.prepare("SELECT 1 FROM main.users WHERE uuid = ?").get(u) !== undefined
  ).sort();
  return { items, revisedUsers };
}

/** Diesel's SQLite time text, as Vaultwarden writes it: `YYYY-MM-DD HH:MM:SS.nnnnnnnnn`. */
export function dieselTime(t: Date): string {
  return `${t.toISOString().replace("T", " ").replace("Z", "")}000000`;
}

/**
 * Copies the planned rows from `point` into `main` in one transaction (foreign keys enforced, so
 * every row lands on existing parents), and moves the revision date of `plan.revisedUsers` to
 * `now` so their clients fetch the items. Anything failing rolls the whole transaction back.
 */
export function applyRecovery(db: DatabaseSync, plan: RecoveryPlan, now: Date): void {
  db.exec("PRAGMA foreign_keys = ON");
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const item of plan.items) {
      copyRows(db, "ciphers", "p.uuid = ?", [item.uuid]);
      for (const link of LINKS) {
        if (!item.rows[link.table]) continue;
        const at = `p.${quoteIdent(link.itemColumn)} = ?`;
        copyRows(db, link.table, link.keep ? `${at} AND (${link.keep.sql})` : at, [item.uuid]);
      }
    }
    const revise = db.prepare("UPDATE main.users SET updated_at = ? WHERE uuid = ?");
    for (const u of plan.revisedUsers) revise.run(dieselTime(now), u);
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    if (err instanceof LitewardenError) throw err;
    // A constraint the plan did not foresee (a UNIQUE index, a foreign key): nothing was written.
    throw new LitewardenError(
      "appCheck",
      `copying the items' rows failed: ${
        errorText(err)
      }; nothing was recovered, the target is unchanged`,
      { cause: err },
    );
  }
}

function copyRows(db: DatabaseSync, table: string, where: string, args: string[]): void {
  const cols = copyColumns(db, table, where, args);
  if ("refusal" in cols) throw new LitewardenError("appCheck", cols.refusal);
  const list = cols.columns.map(quoteIdent).join(", ");
  const t = quoteIdent(table);
  db.prepare(
    `INSERT INTO main.${t} (${list}) SELECT ${
      cols.columns.map((c) => `p.${quoteIdent(c)}`).join(", ")
    } FROM ${POINT_SCHEMA}.${t} p WHERE ${where}`,
  ).run(...args);
}
