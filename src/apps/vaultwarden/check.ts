/**
 * Layer 5 of `verify` for Vaultwarden (VAULTWARDEN-SCHEMA §3–§7): recognise the database, map the
 * applied migration set to a release range, compare the physical schema with what that set
 * creates, and run the content checks of §7 items 9–16, plus row counts and the last activity.
 *
 * Every query is an aggregate or a bounded `LIMIT` (never `.iterate()`, which in Deno 2.9.6 ends
 * silently on a read error), so a 1 GB database costs a few table scans, not memory. Messages carry
 * ids (UUIDs), versions and counts only: never e-mail addresses, names, keys, hashes or any
 * encrypted or JSON content.
 */
import type { DatabaseSync } from "node:sqlite";
import type { AppReport } from "../app_report.ts";
import { fail, pass, skip, warn } from "../../checks/check.ts";
import type { Check } from "../../checks/check.ts";
import { errorText, openDatabaseReadOnly, quoteIdent } from "../../lib/sqlite.ts";
import { formatTime } from "../../lib/format.ts";
import { KNOWN_MIGRATIONS } from "./versions.ts";
import { analyzeVersions, NEWEST_RELEASE, rangeText } from "./versions.ts";
import type { VersionAnalysis } from "./versions.ts";
import {
  CORE_TABLES,
  expectedSchema,
  NOOP_MIGRATIONS,
  objectsCreatedBy,
  tableSpec,
} from "./schema.ts";

/** Table name → its column names, as the database has them. */
export type PhysicalSchema = Map<string, Set<string>>;

/** How many ids a message quotes. */
const QUOTED_IDS = 3;
const DIESEL_TABLE = "__diesel_schema_migrations";

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const appFail = (id: string, msg: string) => fail(id, msg, "appCheck");

/** Tables and their columns (`sqlite_*` internals excluded). */
export function readPhysicalSchema(db: DatabaseSync): PhysicalSchema {
  const schema: PhysicalSchema = new Map();
  const tables = db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
  ).all();
  const cols = db.prepare("SELECT name FROM pragma_table_info(?)");
  for (const t of tables) {
    const name = String(t.name);
    schema.set(name, new Set(cols.all(name).map((c) => String(c.name))));
  }
  return schema;
}

export type Detection =
  | { kind: "none" }
  | { kind: "other-diesel"; versions: string[] }
  | { kind: "vaultwarden"; versions: string[]; coreTables: number };

/**
 * Vaultwarden = `__diesel_schema_migrations` plus either a recorded Vaultwarden migration or most
 * of its core tables (so a database whose bookkeeping lost every row is still recognised).
 */
export function detectVaultwarden(db: DatabaseSync, schema: PhysicalSchema): Detection {
  if (!schema.has(DIESEL_TABLE)) return { kind: "none" };
  const versions = db.prepare(`SELECT version FROM ${DIESEL_TABLE}`).all().map((r) =>
    String(r.version)
  );
  const coreTables = CORE_TABLES.filter((t) => schema.has(t)).length;
  const knownApplied = versions.some((v) => KNOWN_MIGRATIONS.has(v));
  if (knownApplied || coreTables >= CORE_TABLES.length / 2) {
    return { kind: "vaultwarden", versions, coreTables };
  }
  return { kind: "other-diesel", versions };
}

/** All checks for a database `detectVaultwarden` recognised. */
export function checkVaultwarden(
  db: DatabaseSync,
  schema: PhysicalSchema,
  versions: string[],
): { checks: Check[]; app: AppReport } {
  const checks: Check[] = [];
  const analysis = analyzeVersions(versions);
  const app: AppReport = {
    name: "vaultwarden",
    releases: analysis.exact ? { min: analysis.exact.min, max: analysis.exact.max } : null,
    migrations: {
      applied: analysis.applied.length,
      highest: analysis.highest,
      unknown: analysis.unknown,
      missing: analysis.missing,
    },
    rowCounts: {},
    lastActivity: null,
  };
  const appTables = [...schema.keys()].filter((t) => !t.startsWith("_litestream_"));
  checks.push(pass(
    "app.detect",
    `Vaultwarden database: ${plural(appTables.length, "table")}${bookkeepingStyle(db)}`,
  ));
  checks.push(
    ...guarded(
      "app.migrations",
      "the migration bookkeeping",
      () => migrationsCheck(db, schema, analysis),
    ),
  );
  checks.push(releaseCheck(analysis));
  checks.push(schemaCheck(schema, analysis));
  const ctx: Ctx = { db, schema };
  for (const [id, what, fn] of CONTENT_CHECKS) checks.push(...guarded(id, what, () => fn(ctx)));
  checks.push(...guarded("app.summary", "row counts", () => summaryCheck(ctx, app)));
  return { checks, app };
}

/** Runs `fn`; a SQLite error (a damaged page, a missing column) becomes a failed check. */
function guarded(id: string, what: string, fn: () => Check | Check[]): Check[] {
  try {
    const r = fn();
    return Array.isArray(r) ? r : [r];
  } catch (err) {
    return [fail(id, `could not read ${what}: ${errorText(err)}`, "unhealthy")];
  }
}

/** §1: the stored DDL of the bookkeeping table tells whether the instance was born before 1.27.0. */
function bookkeepingStyle(db: DatabaseSync): string {
  const row = db.prepare("SELECT sql FROM sqlite_schema WHERE name = ?").get(DIESEL_TABLE);
  const sql = typeof row?.sql === "string" ? row.sql : "";
  if (sql.includes("\n")) return "; diesel-2 bookkeeping (created by Vaultwarden 1.27.0 or later)";
  if (sql.includes("NOT NULL,run_on")) {
    return "; diesel-1 bookkeeping (created by Vaultwarden 1.26.0 or earlier)";
  }
  return "";
}

function listVersions(versions: string[], max = 5): string {
  const named = versions.slice(0, max).map((v) => {
    const m = KNOWN_MIGRATIONS.get(v);
    return m ? `${v} (${m.directory.replace(/^[^_]*_/, "")}, ${m.release})` : v;
  });
  return named.join(", ") + (versions.length > max ? `, … (${versions.length} in all)` : "");
}

function migrationsCheck(
  db: DatabaseSync,
  schema: PhysicalSchema,
  a: VersionAnalysis,
): Check {
  if (a.applied.length === 0) {
    return appFail(
      "app.migrations",
      `${DIESEL_TABLE} is empty: no migration is recorded, so Vaultwarden would run them all again on this schema and fail`,
    );
  }
  if (a.nearest === null) {
    return appFail(
      "app.migrations",
      `none of the ${
        plural(a.applied.length, "recorded migration")
      } is one of Vaultwarden's: the bookkeeping belongs to another build`,
    );
  }
  if (a.missing.length > 0) {
    const clashes = a.missing.flatMap((v) => objectsCreatedBy(v).filter((o) => exists(schema, o)));
    const onlyNoops = a.missing.every((v) => NOOP_MIGRATIONS.has(v));
    const what = `bookkeeping gap: ${plural(a.missing.length, "migration")} of ${
      rangeText(a.nearest)
    } ${a.missing.length === 1 ? "is" : "are"} not recorded: ${listVersions(a.missing)}`;
    if (a.between && clashes.length === 0) {
      return warn(
        "app.migrations",
        `between releases: every migration of ${rangeText(a.between)} and ${
          a.applied.length - a.between.versions.size
        } of ${a.nearest.min}'s are recorded, ${
          plural(a.missing.length, "migration")
        } of ${a.nearest.min} not yet: ${
          listVersions(a.missing)
        } (a testing or nightly build?); ${a.nearest.min} applies ${
          a.missing.length === 1 ? "it" : "them"
        } at its first start`,
      );
    }
    if (onlyNoops) {
      return warn(
        "app.migrations",
        `${what}; ${
          a.missing.length === 1 ? "it is" : "they are"
        } a no-op on SQLite, so the re-run at the next start is harmless`,
      );
    }
    const consequence = clashes.length > 0
      ? `Vaultwarden re-runs ${
        a.missing.length === 1 ? "it" : "them"
      } at the next start and fails, because ${clashes.slice(0, 3).join(", ")} already exist${
        clashes.length === 1 ? "s" : ""
      }`
      : `Vaultwarden re-runs ${a.missing.length === 1 ? "it" : "them"} at the next start`;
    return appFail("app.migrations", `${what}; ${consequence}`);
  }
  const runOn = db.prepare(`SELECT min(run_on) AS first, max(run_on) AS last FROM ${DIESEL_TABLE}`)
    .get();
  const first = runOn?.first == null ? "" : String(runOn.first);
  const last = runOn?.last == null ? "" : String(runOn.last);
  const history = first === ""
    ? ""
    : first === last
    ? `; all run at ${first} UTC`
    : `; first run ${first} UTC (about the install date), last ${last} UTC`;
  return pass(
    "app.migrations",
    `${plural(a.applied.length, "migration")} recorded, highest ${a.highest}, no gap${history}`,
  );
}

function exists(schema: PhysicalSchema, object: string): boolean {
  const [table, column] = object.split(".");
  const cols = schema.get(table);
  return cols !== undefined && (column === undefined || cols.has(column));
}

function releaseCheck(a: VersionAnalysis): Check {
  if (a.exact) {
    return pass(
      "app.release",
      `release ${rangeText(a.exact)} (its ${a.exact.versions.size} migrations exactly)`,
    );
  }
  if (a.unknown.length > 0) {
    const rest = a.knownMatch ? `; the rest is exactly ${rangeText(a.knownMatch)}` : "";
    if (a.unknownAreNewer) {
      return warn(
        "app.release",
        `${
          plural(a.unknown.length, "migration")
        } newer than every release litewarden knows (newest ${NEWEST_RELEASE}): ${
          listVersions(a.unknown)
        }${rest}; update litewarden`,
      );
    }
    return warn(
      "app.release",
      `${plural(a.unknown.length, "migration")} no Vaultwarden release has: ${
        listVersions(a.unknown)
      } (a fork, pull-request or testing build?)${rest}`,
    );
  }
  if (a.nearest && a.between) {
    return warn(
      "app.release",
      `no release has this migration set: it lies between ${a.between.max} and ${a.nearest.min}`,
    );
  }
  if (a.nearest) {
    return warn(
      "app.release",
      `no release has this migration set; nearest ${rangeText(a.nearest)} (${
        plural(a.missing.length, "migration")
      } missing)`,
    );
  }
  return warn("app.release", "no release has this migration set");
}

/** §5/§7.7: physical tables and columns against the set's; missing = fail, extra = warn. */
function schemaCheck(schema: PhysicalSchema, a: VersionAnalysis): Check {
  const applied = new Set(
    a.exact ? a.exact.versions : a.applied.filter((v) => KNOWN_MIGRATIONS.has(v)),
  );
  const expected = expectedSchema(applied);
  const what = a.exact ? `release ${rangeText(a.exact)}` : "the recorded migrations";
  const missing: string[] = [];
  const extra: string[] = [];
  for (const [table, cols] of expected) {
    const have = schema.get(table);
    if (!have) {
      missing.push(`table ${table}`);
      continue;
    }
    if (cols === null) continue;
    for (const c of cols) if (!have.has(c)) missing.push(`column ${table}.${c}`);
    for (const c of have) if (!cols.includes(c)) extra.push(explainExtra(table, c, applied));
  }
  for (const table of schema.keys()) {
    if (expected.has(table) || table.startsWith("_litestream_")) continue;
    extra.push(explainExtra(table, undefined, applied));
  }
  const list = (xs: string[]) => xs.slice(0, 6).join(", ") + (xs.length > 6 ? ", …" : "");
  if (missing.length > 0) {
    const also = extra.length > 0
      ? `; also ${plural(extra.length, "extra object")}: ${list(extra)}`
      : "";
    return appFail(
      "app.schema",
      `the schema lacks ${plural(missing.length, "object")} that ${what} has: ${
        list(missing)
      }; Vaultwarden fails at the first query that touches ${
        missing.length === 1 ? "it" : "them"
      }${also}`,
    );
  }
  if (extra.length > 0) {
    return warn(
      "app.schema",
      `every table and column of ${what} is there, plus ${plural(extra.length, "extra object")}: ${
        list(extra)
      }`,
    );
  }
  return pass(
    "app.schema",
    `${plural(expected.size, "table")} and their columns, exactly as ${what} creates them`,
  );
}

function explainExtra(table: string, column: string | undefined, applied: Set<string>): string {
  const name = column === undefined ? `table ${table}` : `column ${table}.${column}`;
  const t = tableSpec(table);
  const spec = column === undefined ? t : t?.columns?.find((c) => c.name === column);
  if (!t || !spec) return `${name} (not Vaultwarden's)`;
  const since = spec.since ?? t.since;
  const until = spec.until ?? t.until;
  if (until !== undefined && applied.has(until)) {
    return `${name} (migration ${until} removes it)`;
  }
  return since !== undefined
    ? `${name} (from migration ${since}, not recorded: a release that has it would run it again and fail)`
    : name;
}

// ---------------------------------------------------------------------------------------------
// Content checks (§7 items 9–16)

interface Ctx {
  db: DatabaseSync;
  schema: PhysicalSchema;
}

function has(ctx: Ctx, table: string, ...columns: string[]): boolean {
  const cols = ctx.schema.get(table);
  return cols !== undefined && columns.every((c) => cols.has(c));
}

/** Which of the needed `table.column`s are missing, for a skip message; null when all exist. */
function lacking(ctx: Ctx, needs: string[]): string | null {
  const gone = needs.filter((n) => {
    const [t, c] = n.split(".");
    return c === undefined ? !ctx.schema.has(t) : !has(ctx, t, c);
  });
  return gone.length === 0 ? null : `not checked: ${gone.join(", ")} missing`;
}

function count(ctx: Ctx, sql: string): number {
  const row = ctx.db.prepare(sql).get();
  return row ? Number(Object.values(row)[0] ?? 0) : 0;
}

/** `count` rows of `from` (a FROM … WHERE … clause) and the first few of `idExpr`. */
function countWithIds(ctx: Ctx, idExpr: string, from: string): { n: number; ids: string[] } {
  const n = count(ctx, `SELECT count(*) ${from}`);
  if (n === 0) return { n, ids: [] };
  const ids = ctx.db.prepare(`SELECT ${idExpr} AS id ${from} LIMIT ${QUOTED_IDS}`).all()
    .map((r) => String(r.id));
  return { n, ids };
}

function idList(r: { n: number; ids: string[] }): string {
  return `${r.ids.join(", ")}${r.n > r.ids.length ? ", …" : ""}`;
}

type ContentCheck = [id: string, what: string, fn: (ctx: Ctx) => Check];

/** Item 9: an item belongs to a user or to an organization, not both, not neither. */
function ownersCheck(ctx: Ctx): Check {
  const id = "app.content.owners";
  const why = lacking(ctx, ["ciphers.user_uuid", "ciphers.organization_uuid"]);
  if (why) return skip(id, why);
  const neither = countWithIds(
    ctx,
    "uuid",
    "FROM ciphers WHERE user_uuid IS NULL AND organization_uuid IS NULL",
  );
  const both = count(
    ctx,
    "SELECT count(*) FROM ciphers WHERE user_uuid IS NOT NULL AND organization_uuid IS NOT NULL",
  );
  const bothText = both > 0
    ? `${plural(both, "item")} ${
      both === 1 ? "has" : "have"
    } both a user and an organization (data from before 2021?)`
    : "";
  if (neither.n > 0) {
    return appFail(
      id,
      `${plural(neither.n, "item")} belong${
        neither.n === 1 ? "s" : ""
      } to neither a user nor an organization, so nobody sees ${neither.n === 1 ? "it" : "them"}: ${
        idList(neither)
      }${bothText ? `; ${bothText}` : ""}`,
    );
  }
  if (both > 0) return warn(id, bothText);
  return pass(id, "every item belongs to exactly one user or one organization");
}

/** The references the app follows, with the id a message names for a dangling row. */
const LINKS: [child: string, column: string, parent: string, idColumn: string][] = [
  ["ciphers", "user_uuid", "users", "uuid"],
  ["ciphers", "organization_uuid", "organizations", "uuid"],
  ["folders", "user_uuid", "users", "uuid"],
  ["folders_ciphers", "cipher_uuid", "ciphers", "folder_uuid"],
  ["folders_ciphers", "folder_uuid", "folders", "cipher_uuid"],
  ["ciphers_collections", "cipher_uuid", "ciphers", "collection_uuid"],
  ["ciphers_collections", "collection_uuid", "collections", "cipher_uuid"],
  ["attachments", "cipher_uuid", "ciphers", "id"],
  ["users_organizations", "user_uuid", "users", "uuid"],
  ["users_organizations", "org_uuid", "organizations", "uuid"],
  ["collections", "org_uuid", "organizations", "uuid"],
  ["users_collections", "collection_uuid", "collections", "user_uuid"],
  ["devices", "user_uuid", "users", "uuid"],
  ["twofactor", "user_uuid", "users", "uuid"],
  ["sends", "user_uuid", "users", "uuid"],
];

/** Rows whose owner or container does not exist (item 8 seen from the app, with ids). */
function orphansCheck(ctx: Ctx): Check {
  const id = "app.content.orphans";
  const found: string[] = [];
  let total = 0;
  let checked = 0;
  for (const [child, col, parent, idCol] of LINKS) {
    if (!has(ctx, child, col, idCol) || !has(ctx, parent, "uuid")) continue;
    checked++;
    const r = countWithIds(
      ctx,
      `c.${quoteIdent(idCol)}`,
      `FROM ${quoteIdent(child)} c WHERE c.${
        quoteIdent(col)
      } IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${quoteIdent(parent)} p WHERE p.uuid = c.${
        quoteIdent(col)
      })`,
    );
    if (r.n > 0) {
      total += r.n;
      found.push(`${child}.${col} → missing ${parent}: ${r.n} (${idList(r)})`);
    }
  }
  if (checked === 0) return skip(id, "not checked: the linked tables are missing");
  if (total > 0) {
    return appFail(
      id,
      `${plural(total, "row")} point${total === 1 ? "s" : ""} at a missing owner or container: ${
        found.join("; ")
      }`,
    );
  }
  return pass(id, `no dangling references (${plural(checked, "link")} checked)`);
}

/** Item 10: an item's collections belong to the item's organization. */
function collectionsCheck(ctx: Ctx): Check {
  const id = "app.content.collections";
  const why = lacking(ctx, [
    "ciphers_collections",
    "ciphers.organization_uuid",
    "collections.org_uuid",
  ]);
  if (why) return skip(id, why);
  const r = countWithIds(
    ctx,
    "cc.cipher_uuid",
    `FROM ciphers_collections cc JOIN ciphers c ON c.uuid = cc.cipher_uuid
       JOIN collections col ON col.uuid = cc.collection_uuid
     WHERE c.organization_uuid IS NOT col.org_uuid`,
  );
  if (r.n > 0) {
    return appFail(
      id,
      `${plural(r.n, "item")} sit${
        r.n === 1 ? "s" : ""
      } in a collection of another organization (or a personal item in a collection): ${idList(r)}`,
    );
  }
  return pass(id, "every item's collections belong to its organization");
}

/** Item 11: group memberships and group-collection links stay within one organization. */
function groupsCheck(ctx: Ctx): Check {
  const id = "app.content.groups";
  const why = lacking(ctx, ["groups", "groups_users", "collections_groups"]);
  if (why) return skip(id, why);
  const members = countWithIds(
    ctx,
    "g.uuid",
    `FROM groups_users gu JOIN groups g ON g.uuid = gu.groups_uuid
       JOIN users_organizations uo ON uo.uuid = gu.users_organizations_uuid
     WHERE g.organizations_uuid IS NOT uo.org_uuid`,
  );
  const colls = countWithIds(
    ctx,
    "g.uuid",
    `FROM collections_groups cg JOIN groups g ON g.uuid = cg.groups_uuid
       JOIN collections c ON c.uuid = cg.collections_uuid
     WHERE g.organizations_uuid IS NOT c.org_uuid`,
  );
  const parts: string[] = [];
  if (members.n > 0) {
    parts.push(
      `${plural(members.n, "group membership")} of another organization's member (groups ${
        idList(members)
      })`,
    );
  }
  if (colls.n > 0) {
    parts.push(
      `${plural(colls.n, "group-collection link")} across organizations (groups ${idList(colls)})`,
    );
  }
  if (parts.length > 0) return appFail(id, parts.join("; "));
  return pass(id, "group memberships and collection links stay within their organization");
}

/** Item 12: each organization has a confirmed owner. */
function orgOwnersCheck(ctx: Ctx): Check {
  const id = "app.content.org-owners";
  const why = lacking(ctx, [
    "organizations",
    "users_organizations.atype",
    "users_organizations.status",
  ]);
  if (why) return skip(id, why);
  const r = countWithIds(
    ctx,
    "uuid",
    "FROM organizations WHERE uuid NOT IN (SELECT org_uuid FROM users_organizations WHERE atype = 0 AND status = 2)",
  );
  if (r.n > 0) {
    return appFail(
      id,
      `${plural(r.n, "organization")} ${
        r.n === 1 ? "has" : "have"
      } no confirmed owner, so nobody can administer ${r.n === 1 ? "it" : "them"}: ${idList(r)}`,
    );
  }
  return pass(id, "every organization has a confirmed owner");
}

/** Item 13: confirmed members (2, or revoked −126) hold the org key; invited/accepted ones not. */
function memberKeysCheck(ctx: Ctx): Check {
  const id = "app.content.member-keys";
  const why = lacking(ctx, ["users_organizations.akey", "users_organizations.status"]);
  if (why) return skip(id, why);
  const noKey = countWithIds(
    ctx,
    "uuid",
    "FROM users_organizations WHERE status IN (2, -126) AND (akey IS NULL OR akey = '')",
  );
  const early = count(
    ctx,
    "SELECT count(*) FROM users_organizations WHERE status IN (0, 1, -128, -127) AND akey IS NOT NULL AND akey <> ''",
  );
  const earlyText = early > 0
    ? `${plural(early, "invited or accepted membership")} already hold${
      early === 1 ? "s" : ""
    } an organization key`
    : "";
  if (noKey.n > 0) {
    return appFail(
      id,
      `${plural(noKey.n, "confirmed membership")} lack${
        noKey.n === 1 ? "s" : ""
      } the organization key, so ${
        noKey.n === 1 ? "that member cannot" : "those members cannot"
      } decrypt its items: ${idList(noKey)}${earlyText ? `; ${earlyText}` : ""}`,
    );
  }
  if (early > 0) return warn(id, earlyText);
  return pass(id, "every confirmed member holds the organization key");
}

/** Item 14: registered users have an EncString `akey`; missing keypairs are only a warning. */
function userKeysCheck(ctx: Ctx): Check {
  const id = "app.content.user-keys";
  const why = lacking(ctx, [
    "users.password_hash",
    "users.akey",
    "users.private_key",
    "users.public_key",
  ]);
  if (why) return skip(id, why);
  const registered = "FROM users WHERE length(password_hash) > 0";
  const bad = countWithIds(
    ctx,
    "uuid",
    `${registered} AND (akey IS NULL OR akey NOT GLOB '[0-9].?*' OR
       (akey GLOB '2.*' AND length(akey) - length(replace(akey, '|', '')) <> 2))`,
  );
  const noPair = count(
    ctx,
    `SELECT count(*) ${registered} AND (coalesce(private_key, '') = '' OR coalesce(public_key, '') = '')`,
  );
  const pairText = noPair > 0
    ? `${
      plural(noPair, "registered user")
    } without a keypair (very old accounts, or keys created at the next login)`
    : "";
  if (bad.n > 0) {
    return appFail(
      id,
      `${plural(bad.n, "registered user")} ${
        bad.n === 1 ? "has" : "have"
      } no valid encrypted user key, so ${
        bad.n === 1 ? "that vault cannot" : "those vaults cannot"
      } be decrypted: ${idList(bad)}${pairText ? `; ${pairText}` : ""}`,
    );
  }
  if (noPair > 0) return warn(id, pairText);
  return pass(id, "every registered user has an encrypted user key and a keypair");
}

/** Item 15: e-mails non-empty, lower-case, unique after lower(). Counts only, never addresses. */
function emailsCheck(ctx: Ctx): Check {
  const id = "app.content.emails";
  const why = lacking(ctx, ["users.email"]);
  if (why) return skip(id, why);
  const empty = count(ctx, "SELECT count(*) FROM users WHERE email IS NULL OR trim(email) = ''");
  const upper = count(ctx, "SELECT count(*) FROM users WHERE email <> lower(email)");
  const dup = ctx.db.prepare(
    `SELECT count(*) AS addresses, coalesce(sum(n), 0) AS accounts
       FROM (SELECT count(*) AS n FROM users WHERE email IS NOT NULL GROUP BY lower(email) HAVING n > 1)`,
  ).get();
  const addresses = Number(dup?.addresses ?? 0);
  const accounts = Number(dup?.accounts ?? 0);
  const parts: string[] = [];
  if (addresses > 0) {
    parts.push(
      `${plural(accounts, "account")} have e-mail addresses equal but for case (${
        plural(addresses, "address", "addresses")
      }; the UNIQUE index does not catch it, and a login finds only one of them)`,
    );
  }
  if (upper > 0) {
    parts.push(
      `${plural(upper, "e-mail address", "e-mail addresses")} ${
        upper === 1 ? "is" : "are"
      } not lower-case (Vaultwarden looks accounts up by the lower-case form)`,
    );
  }
  if (empty > 0) parts.push(`${plural(empty, "account")} without an e-mail address`);
  if (parts.length > 0) return appFail(id, parts.join("; "));
  return pass(id, "e-mail addresses are non-empty, lower-case and unique");
}

/** JSON columns (§6) and the row id a message names; `where` narrows the rows. */
const JSON_COLUMNS: [table: string, column: string, idColumn: string, where?: string][] = [
  ["ciphers", "data", "uuid"],
  ["ciphers", "fields", "uuid"],
  ["ciphers", "password_history", "uuid"],
  ["users", "equivalent_domains", "uuid"],
  ["users", "excluded_globals", "uuid"],
  ["users", "stamp_exception", "uuid"],
  ["org_policies", "data", "uuid"],
  ["sends", "data", "uuid"],
  // Type 0 (authenticator) holds a bare base32 secret, every other type JSON.
  ["twofactor", "data", "uuid", "atype <> 0"],
];

/** Item 16: JSON columns parse (`json_valid`, strict RFC 8259, as serde_json reads them). */
function jsonCheck(ctx: Ctx): Check {
  const id = "app.content.json";
  const found: string[] = [];
  let checked = 0;
  let total = 0;
  for (const [table, col, idCol, where] of JSON_COLUMNS) {
    if (!has(ctx, table, col, idCol)) continue;
    checked++;
    const c = quoteIdent(col);
    const r = countWithIds(
      ctx,
      quoteIdent(idCol),
      `FROM ${quoteIdent(table)} WHERE ${c} IS NOT NULL AND NOT json_valid(${c})${
        where ? ` AND ${where}` : ""
      }`,
    );
    if (r.n > 0) {
      total += r.n;
      found.push(`${table}.${col}: ${r.n} (${idList(r)})`);
    }
  }
  if (checked === 0) return skip(id, "not checked: no JSON column found");
  if (total > 0) {
    const cipherData = found.some((f) => f.startsWith("ciphers.data:"))
      ? "; the clients show such an item as empty"
      : "";
    return appFail(
      id,
      `${plural(total, "value")} ${total === 1 ? "is" : "are"} not valid JSON: ${
        found.join("; ")
      }${cipherData}`,
    );
  }
  return pass(id, `${plural(checked, "JSON column")} parse in every row`);
}

const CONTENT_CHECKS: ContentCheck[] = [
  ["app.content.owners", "ciphers", ownersCheck],
  ["app.content.orphans", "the linked tables", orphansCheck],
  ["app.content.collections", "collections", collectionsCheck],
  ["app.content.groups", "groups", groupsCheck],
  ["app.content.org-owners", "organizations", orgOwnersCheck],
  ["app.content.member-keys", "memberships", memberKeysCheck],
  ["app.content.user-keys", "users", userKeysCheck],
  ["app.content.emails", "users", emailsCheck],
  ["app.content.json", "JSON columns", jsonCheck],
];

// ---------------------------------------------------------------------------------------------
// Statistics (§7 item 23)

/** Tables whose row counts go into the report. */
const COUNTED_TABLES = [
  "users",
  "organizations",
  "users_organizations",
  "collections",
  "groups",
  "ciphers",
  "folders",
  "folders_ciphers",
  "ciphers_collections",
  "favorites",
  "attachments",
  "sends",
  "devices",
  "twofactor",
  "emergency_access",
  "event",
];

/** Timestamp columns whose newest value is the last activity. */
const ACTIVITY_COLUMNS: [string, string][] = [
  ["users", "updated_at"],
  ["ciphers", "updated_at"],
  ["ciphers", "deleted_at"],
  ["folders", "updated_at"],
  ["devices", "updated_at"],
  ["sends", "revision_date"],
  ["emergency_access", "updated_at"],
  ["event", "event_date"],
];

/** Diesel's `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC) → Date; null when it is not that. */
export function parseDieselTime(value: unknown): Date | null {
  if (typeof value !== "string") return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:?00)?$/.exec(
    value.trim(),
  );
  if (!m) return null;
  const ms = m[3] ? m[3].slice(0, 4).padEnd(4, "0") : "";
  const d = new Date(`${m[1]}T${m[2]}${ms}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

function summaryCheck(ctx: Ctx, app: AppReport): Check {
  for (const t of COUNTED_TABLES) {
    if (ctx.schema.has(t)) app.rowCounts[t] = count(ctx, `SELECT count(*) FROM ${quoteIdent(t)}`);
  }
  let newest: Date | null = null;
  for (const [t, c] of ACTIVITY_COLUMNS) {
    if (!has(ctx, t, c)) continue;
    const row = ctx.db.prepare(`SELECT max(${quoteIdent(c)}) AS v FROM ${quoteIdent(t)}`).get();
    const d = parseDieselTime(row?.v);
    if (d && (newest === null || d > newest)) newest = d;
  }
  app.lastActivity = newest ? formatTime(newest) : null;

  const rc = app.rowCounts;
  const parts: string[] = [];
  if (rc.users !== undefined) {
    const extra: string[] = [];
    if (has(ctx, "users", "password_hash")) {
      const invited = count(ctx, "SELECT count(*) FROM users WHERE length(password_hash) = 0");
      if (invited > 0) extra.push(`${invited} invited`);
    }
    if (has(ctx, "users", "enabled")) {
      const disabled = count(ctx, "SELECT count(*) FROM users WHERE enabled = 0");
      if (disabled > 0) extra.push(`${disabled} disabled`);
    }
    parts.push(`${plural(rc.users, "user")}${extra.length ? ` (${extra.join(", ")})` : ""}`);
  }
  if (rc.organizations !== undefined) parts.push(plural(rc.organizations, "organization"));
  if (rc.ciphers !== undefined) {
    const trashed = has(ctx, "ciphers", "deleted_at")
      ? count(ctx, "SELECT count(*) FROM ciphers WHERE deleted_at IS NOT NULL")
      : 0;
    parts.push(`${plural(rc.ciphers, "item")}${trashed > 0 ? ` (${trashed} in the trash)` : ""}`);
  }
  for (
    const [t, one] of [["attachments", "attachment"], ["sends", "send"], ["devices", "device"]]
  ) {
    if (rc[t] !== undefined) parts.push(plural(rc[t], one));
  }
  const last = app.lastActivity ? `; last activity ${app.lastActivity}` : "";
  if (rc.users === 0) {
    return warn(
      "app.summary",
      `no user accounts: an empty vault (a fresh install, or the wrong database restored?)${last}`,
    );
  }
  return pass("app.summary", `${parts.join(", ")}${last}`);
}

/** Whether the SQLite file at `path` holds a Vaultwarden database (opened read-only). */
export function isVaultwardenFile(path: string): boolean {
  const db = openDatabaseReadOnly(path);
  try {
    return detectVaultwarden(db, readPhysicalSchema(db)).kind === "vaultwarden";
  } finally {
    db.close();
  }
}
