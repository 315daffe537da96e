/**
 * Layer 5 of `verify` for Vaultwarden (src/apps/): every fixture reports what its README lists,
 * damaged copies built here report the matching finding, the embedded schema data matches real
 * databases, and no message ever carries an e-mail address or encrypted data.
 */
import { DatabaseSync } from "node:sqlite";
import { exitCodeFor } from "../../src/checks/check.ts";
import type { Check } from "../../src/checks/check.ts";
import { checkDatabaseFile } from "../../src/checks/database.ts";
import { checkApplication } from "../../src/apps/check_application.ts";
import type { AppMode } from "../../src/apps/check_application.ts";
import { parseDieselTime } from "../../src/apps/vaultwarden/check.ts";
import { MIGRATIONS, RELEASES } from "../../src/apps/vaultwarden/migrations.ts";
import { expectedSchema, objectsCreatedBy } from "../../src/apps/vaultwarden/schema.ts";
import { analyzeVersions, RELEASE_GROUPS } from "../../src/apps/vaultwarden/versions.ts";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";
import type { TempDir } from "../support/tmp.ts";

const FIXTURES = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;
const POPULATED = "vw-1.37.2-populated.sqlite3";

/** Every message any test produced, checked for leaks at the end. */
const allMessages: string[] = [];

async function copyFixture(dir: TempDir, name: string, as = name): Promise<string> {
  const dest = dir.join(as);
  await Deno.copyFile(FIXTURES + name, dest);
  return dest;
}

/** A writable copy of the populated fixture, changed by `sql` (journal_mode DELETE: no sidecars). */
async function damaged(dir: TempDir, name: string, sql: string, from = POPULATED): Promise<string> {
  const path = await copyFixture(dir, from, name);
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = OFF;");
    db.exec(sql);
  } finally {
    db.close();
  }
  return path;
}

async function app(path: string, mode: AppMode = "auto") {
  const r = await checkApplication(path, mode);
  allMessages.push(...r.checks.map((c) => c.message));
  return r;
}

/** Both layers, as `verify --file` runs them. */
async function verifyFile(path: string) {
  const checks = await checkDatabaseFile(path, { quick: false, restored: false });
  const r = await app(path);
  allMessages.push(...checks.map((c) => c.message));
  return { checks: [...checks, ...r.checks], app: r.app };
}

function get(checks: Check[], id: string): Check {
  const c = checks.find((x) => x.id === id);
  assert(c, `no check ${id} in ${checks.map((x) => x.id).join(", ")}`);
  return c;
}

const nonPassing = (checks: Check[]) =>
  Object.fromEntries(checks.filter((c) => c.status !== "pass").map((c) => [c.id, c.status]));

// ---------------------------------------------------------------------------------------------
// The fixtures, as their README says

Deno.test("empty fixtures: release range, migrations, table count, bookkeeping style", async () => {
  await using dir = await makeTempDir();
  const cases: [string, number, string, string, string, number, RegExp][] = [
    ["vw-1.20.0.sqlite3", 22, "20210315163412", "1.20.0", "1.21.0", 17, /diesel-1 bookkeeping/],
    ["vw-1.30.0.sqlite3", 41, "20231021221242", "1.30.0", "1.30.1", 25, /diesel-2 bookkeeping/],
    ["vw-1.37.2.sqlite3", 56, "20260505120000", "1.37.0", "1.37.2", 29, /diesel-2 bookkeeping/],
  ];
  for (const [name, applied, highest, min, max, tables, ddl] of cases) {
    const { checks, app: report } = await verifyFile(await copyFixture(dir, name));
    assert(report);
    assertEquals(report.name, "vaultwarden");
    assertEquals(report.releases, { min, max }, name);
    assertEquals(report.migrations, { applied, highest, unknown: [], missing: [] }, name);
    assertEquals(report.lastActivity, null);
    assertEquals(report.rowCounts.users, 0);
    const detect = get(checks, "app.detect").message;
    assert(detect.startsWith(`Vaultwarden database: ${tables} tables`), detect);
    assertMatch(detect, ddl);
    assertEquals(
      get(checks, "app.release").message,
      `release ${min} – ${max} (its ${applied} migrations exactly)`,
    );
    assertEquals(get(checks, "app.schema").status, "pass");
    // healthy (exit 0); an empty vault is worth a warning, nothing more
    assertEquals(nonPassing(checks), {
      "app.summary": "warn",
      ...(name === "vw-1.20.0.sqlite3" ? { "app.content.groups": "skip" } : {}),
    }, name);
    assertEquals(exitCodeFor(checks), 0);
  }
});

Deno.test("populated fixture: healthy, row counts, last activity, every content check passes", async () => {
  await using dir = await makeTempDir();
  const { checks, app: report } = await verifyFile(await copyFixture(dir, POPULATED));
  assert(report);
  assertEquals(report.releases, { min: "1.37.0", max: "1.37.2" });
  const expected: Record<string, number> = {
    users: 6,
    organizations: 1,
    users_organizations: 6,
    ciphers: 200,
    folders: 9,
    folders_ciphers: 88,
    collections: 3,
    attachments: 5,
    devices: 8,
    sends: 2,
    twofactor: 2,
  };
  for (const [t, n] of Object.entries(expected)) assertEquals(report.rowCounts[t], n, t);
  assertEquals(report.lastActivity, "2026-08-19T22:00:00Z");
  assertEquals(nonPassing(checks), {});
  assertEquals(exitCodeFor(checks), 0);
  assertEquals(
    get(checks, "app.summary").message,
    "6 users (1 invited, 1 disabled), 1 organization, 200 items (5 in the trash), 5 attachments, 2 sends, 8 devices; last activity 2026-08-19T22:00:00Z",
  );
  for (
    const id of [
      "app.content.owners",
      "app.content.orphans",
      "app.content.collections",
      "app.content.groups",
      "app.content.org-owners",
      "app.content.member-keys",
      "app.content.user-keys",
      "app.content.emails",
      "app.content.json",
    ]
  ) assertEquals(get(checks, id).status, "pass", id);
  // twofactor type 0 holds a base32 secret, not JSON: not flagged
  assertEquals(get(checks, "app.content.json").message, "9 JSON columns parse in every row");
});

Deno.test("corrupt-page fixture: database unhealthy (6) although count(*) says 200", async () => {
  await using dir = await makeTempDir();
  const { checks, app: report } = await verifyFile(
    await copyFixture(dir, "vw-1.37.2-populated-corrupt-page.sqlite3"),
  );
  assertEquals(get(checks, "db.integrity").status, "fail");
  assertEquals(report?.rowCounts.ciphers, 200);
  // content checks that read ciphers say so, as a database failure
  const owners = get(checks, "app.content.owners");
  assertEquals([owners.status, owners.exitCode], ["fail", 6]);
  assertMatch(owners.message, /^could not read ciphers: database disk image is malformed$/);
  assertEquals(exitCodeFor(checks), 6);
});

Deno.test("missing-table fixture: app.schema fails (7) naming twofactor; database clean", async () => {
  await using dir = await makeTempDir();
  const { checks, app: report } = await verifyFile(
    await copyFixture(dir, "vw-1.37.2-populated-missing-table.sqlite3"),
  );
  assertEquals(report?.releases, { min: "1.37.0", max: "1.37.2" });
  assertEquals(nonPassing(checks), { "app.schema": "fail" });
  const schema = get(checks, "app.schema");
  assertEquals(schema.exitCode, 7);
  assertEquals(
    schema.message,
    "the schema lacks 1 object that release 1.37.0 – 1.37.2 has: table twofactor; Vaultwarden fails at the first query that touches it",
  );
  assertEquals(exitCodeFor(checks), 7);
});

Deno.test("orphan-cipher fixture: foreign_key_check (6) and the orphan's id (7)", async () => {
  await using dir = await makeTempDir();
  const { checks } = await verifyFile(
    await copyFixture(dir, "vw-1.37.2-populated-orphan-cipher.sqlite3"),
  );
  assertEquals(nonPassing(checks), { "db.foreign-keys": "fail", "app.content.orphans": "fail" });
  assertEquals(
    get(checks, "app.content.orphans").message,
    "1 row points at a missing owner or container: ciphers.user_uuid → missing users: 1 (77f487bf-75e0-4c25-b873-01239e35e57c)",
  );
  assertEquals(exitCodeFor(checks), 6);
});

// ---------------------------------------------------------------------------------------------
// Migration sets

Deno.test("bookkeeping gap: a missing migration row fails (7) and predicts the startup crash", async () => {
  await using dir = await makeTempDir();
  const path = await damaged(
    dir,
    "gap.sqlite3",
    "DELETE FROM __diesel_schema_migrations WHERE version = '20230106151600'",
  );
  const { checks, app: report } = await app(path);
  assertEquals(report?.releases, null);
  assertEquals(report?.migrations.missing, ["20230106151600"]);
  assertEquals(report?.migrations.applied, 55);
  const m = get(checks, "app.migrations");
  assertEquals([m.status, m.exitCode], ["fail", 7]);
  assertEquals(
    m.message,
    "bookkeeping gap: 1 migration of 1.37.0 – 1.37.2 is not recorded: 20230106151600 (add_reset_password_support, 1.28.0); Vaultwarden re-runs it at the next start and fails, because users_organizations.reset_password_key already exists",
  );
  assertEquals(get(checks, "app.release").status, "warn");
  assertMatch(
    get(checks, "app.schema").message,
    /users_organizations\.reset_password_key \(from migration 20230106151600, not recorded: a release that has it would run it again and fail\)/,
  );
  assertEquals(exitCodeFor(checks), 7);

  // A missing no-op migration is only a warning.
  const noop = await damaged(
    dir,
    "noop.sqlite3",
    "DELETE FROM __diesel_schema_migrations WHERE version = '20240112210182'",
  );
  const r = await app(noop);
  assertEquals(get(r.checks, "app.migrations").status, "warn");
  assertMatch(get(r.checks, "app.migrations").message, /no-op on SQLite/);
  assertEquals(exitCodeFor(r.checks), 0);
});

Deno.test("a build between two tags: warn, unless the missing migration's objects exist", async () => {
  await using dir = await makeTempDir();
  // 1.35.x plus 1.36.0's archives migration but not its sso_auth.binding_hash one.
  const path = await damaged(
    dir,
    "between.sqlite3",
    `DELETE FROM __diesel_schema_migrations WHERE version IN ('20260505120000', '20260425120000');
     ALTER TABLE sso_auth DROP COLUMN code_response_error;
     ALTER TABLE sso_auth DROP COLUMN binding_hash;`,
  );
  let r = await app(path);
  assertEquals(r.app?.releases, null);
  assertEquals(r.app?.migrations.missing, ["20260425120000"]);
  const m = get(r.checks, "app.migrations");
  assertEquals(m.status, "warn");
  assertEquals(
    m.message,
    "between releases: every migration of 1.35.0 – 1.35.8 and 1 of 1.36.0's are recorded, 1 migration of 1.36.0 not yet: 20260425120000 (sso_auth_binding, 1.36.0) (a testing or nightly build?); 1.36.0 applies it at its first start",
  );
  assertEquals(
    get(r.checks, "app.release").message,
    "no release has this migration set: it lies between 1.35.8 and 1.36.0",
  );
  assertEquals(get(r.checks, "app.schema").status, "pass");
  assertEquals(exitCodeFor(r.checks), 0);

  // The same set with the column already there: the next start would fail.
  const clash = await damaged(
    dir,
    "clash.sqlite3",
    `DELETE FROM __diesel_schema_migrations WHERE version IN ('20260505120000', '20260425120000');
     ALTER TABLE sso_auth DROP COLUMN code_response_error;`,
  );
  r = await app(clash);
  assertEquals(get(r.checks, "app.migrations").status, "fail");
  assertMatch(
    get(r.checks, "app.migrations").message,
    /fails, because sso_auth\.binding_hash already exists$/,
  );
  assertEquals(exitCodeFor(r.checks), 7);
});

Deno.test("an unknown future migration: warn 'update litewarden', exit 0", async () => {
  await using dir = await makeTempDir();
  const path = await damaged(
    dir,
    "future.sqlite3",
    "INSERT INTO __diesel_schema_migrations (version) VALUES ('20270101000000')",
  );
  const { checks, app: report } = await app(path);
  assertEquals(report?.releases, null);
  assertEquals(report?.migrations.unknown, ["20270101000000"]);
  assertEquals(report?.migrations.highest, "20270101000000");
  const rel = get(checks, "app.release");
  assertEquals(rel.status, "warn");
  assertEquals(
    rel.message,
    "1 migration newer than every release litewarden knows (newest 1.37.2): 20270101000000; the rest is exactly 1.37.0 – 1.37.2; update litewarden",
  );
  assertEquals(get(checks, "app.migrations").status, "pass");
  assertEquals(exitCodeFor(checks), 0);

  // A version of a feature branch (VAULTWARDEN-SCHEMA §10.9): a fork or PR build.
  const fork = await damaged(
    dir,
    "fork.sqlite3",
    "INSERT INTO __diesel_schema_migrations (version) VALUES ('20210210174254')",
  );
  assertMatch(
    get((await app(fork)).checks, "app.release").message,
    /no Vaultwarden release has: 20210210174254 \(a fork/,
  );
});

Deno.test("migration sets: the set, not the highest version, picks the release", () => {
  const setOf = (tag: string) => {
    const i = RELEASES.findIndex((r) => r.tag === tag);
    const index = new Map(RELEASES.map((r, j) => [r.tag, j]));
    return MIGRATIONS.filter((m) => index.get(m.release)! <= i).map((m) => m.version);
  };
  // 1.29.2 added a migration older than 1.29.0's newest: same highest version, other release.
  const a = analyzeVersions(setOf("1.29.0"));
  const b = analyzeVersions(setOf("1.29.2"));
  assertEquals(a.highest, b.highest);
  assertEquals([a.exact?.min, a.exact?.max], ["1.29.0", "1.29.1"]);
  assertEquals([b.exact?.min, b.exact?.max], ["1.29.2", "1.29.2"]);
  // 1.35.0 added six older-dated migrations, among them the 8-digit 20240313.
  const c = analyzeVersions(setOf("1.35.0"));
  assertEquals([c.exact?.min, c.exact?.max, c.applied.length], ["1.35.0", "1.35.8", 53]);
  assert(c.applied.includes("20240313"));
  // 1.34.3's set plus one 1.35.0 migration: nearest 1.35.x, the other six missing.
  const d = analyzeVersions([...setOf("1.34.3"), "20250820120000"]);
  assertEquals([d.exact, d.nearest?.min, d.missing.length], [null, "1.35.0", 6]);
  assertEquals(analyzeVersions([]).nearest, null);
});

Deno.test("embedded release data: sets, counts, highest versions and hashes agree", async () => {
  const index = new Map(RELEASES.map((r, i) => [r.tag, i]));
  for (const [i, r] of RELEASES.entries()) {
    const set = MIGRATIONS.filter((m) => index.get(m.release)! <= i).map((m) => m.version).sort();
    const digest = new Uint8Array(
      await crypto.subtle.digest(
        "SHA-256",
        new TextEncoder().encode(set.map((v) => `${v}\n`).join("")),
      ),
    );
    const sha = [...digest.subarray(0, 8)].map((x) => x.toString(16).padStart(2, "0")).join("");
    assertEquals([set.length, set.at(-1), sha], [r.count, r.maxVersion, r.setSha256], r.tag);
  }
  assertEquals(MIGRATIONS.length, 56);
  assertEquals(RELEASE_GROUPS.length, 23); // the rows of VAULTWARDEN-SCHEMA §3's table
});

Deno.test("embedded schema data equals the physical schema of real 1.20.0, 1.30.0, 1.37.2 databases", async () => {
  await using dir = await makeTempDir();
  for (const name of ["vw-1.20.0.sqlite3", "vw-1.30.0.sqlite3", "vw-1.37.2.sqlite3"]) {
    const db = new DatabaseSync(await copyFixture(dir, name), { readOnly: true });
    try {
      const versions = db.prepare("SELECT version FROM __diesel_schema_migrations").all().map((r) =>
        String(r.version)
      );
      const physical = Object.fromEntries(
        db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all().map((
          t,
        ) => [
          String(t.name),
          db.prepare("SELECT name FROM pragma_table_info(?)").all(String(t.name)).map((c) =>
            String(c.name)
          ).sort(),
        ]),
      );
      const expected = Object.fromEntries(
        [...expectedSchema(new Set(versions))].map(([t, cols]) => [t, [...(cols ?? [])].sort()])
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      );
      assertEquals(expected, physical, name);
    } finally {
      db.close();
    }
  }
  assertEquals(objectsCreatedBy("20230106151600"), ["users_organizations.reset_password_key"]);
  assertEquals(objectsCreatedBy("20240112210182"), []);
});

// ---------------------------------------------------------------------------------------------
// Schema and content damage

Deno.test("schema: a dropped column fails (7); extra objects warn; Litestream's tables are ignored", async () => {
  await using dir = await makeTempDir();
  const dropped = await damaged(
    dir,
    "dropped.sqlite3",
    "ALTER TABLE users_organizations DROP COLUMN invited_by_email",
  );
  const s = get((await app(dropped)).checks, "app.schema");
  assertEquals([s.status, s.exitCode], ["fail", 7]);
  assertMatch(
    s.message,
    /lacks 1 object that release 1\.37\.0 – 1\.37\.2 has: column users_organizations\.invited_by_email/,
  );

  const extra = await damaged(
    dir,
    "extra.sqlite3",
    `CREATE TABLE my_notes (id INTEGER PRIMARY KEY);
     ALTER TABLE ciphers ADD COLUMN favorite BOOLEAN;
     CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
     CREATE TABLE _litestream_lock (id INTEGER);`,
  );
  const r = await app(extra);
  const e = get(r.checks, "app.schema");
  assertEquals(e.status, "warn");
  assertEquals(
    e.message,
    "every table and column of release 1.37.0 – 1.37.2 is there, plus 2 extra objects: column ciphers.favorite (migration 20200802025025 removes it), table my_notes (not Vaultwarden's)",
  );
  assertEquals(exitCodeFor(r.checks), 0);
});

Deno.test("content: bad JSON in ciphers.data and twofactor.data fails (7) naming ids only", async () => {
  await using dir = await makeTempDir();
  const path = await damaged(
    dir,
    "json.sqlite3",
    `UPDATE ciphers SET data = '{"password":"2.x|y|z"' WHERE uuid = '012b7bf4-ff33-46bc-8864-01147581d25d';
     UPDATE twofactor SET data = 'not json' WHERE atype = 1;`,
  );
  const { checks } = await app(path);
  const j = get(checks, "app.content.json");
  assertEquals([j.status, j.exitCode], ["fail", 7]);
  assertMatch(
    j.message,
    /^2 values are not valid JSON: ciphers\.data: 1 \(012b7bf4-ff33-46bc-8864-01147581d25d\); twofactor\.data: 1 \([0-9a-f-]{36}\); the clients show such an item as empty$/,
  );
});

Deno.test("content: e-mails differing only in case fail (7) with counts, never addresses", async () => {
  await using dir = await makeTempDir();
  const path = await damaged(
    dir,
    "emails.sqlite3",
    "UPDATE users SET email = 'Alice@Example.com' WHERE email = 'bob@example.com'",
  );
  const { checks } = await app(path);
  const e = get(checks, "app.content.emails");
  assertEquals([e.status, e.exitCode], ["fail", 7]);
  assertEquals(
    e.message,
    "2 accounts have e-mail addresses equal but for case (1 address; the UNIQUE index does not catch it, and a login finds only one of them); 1 e-mail address is not lower-case (Vaultwarden looks accounts up by the lower-case form)",
  );
});

Deno.test("content: owners, collections, groups, org owners, member and user keys", async () => {
  await using dir = await makeTempDir();
  const org = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c01";
  const other = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c99";
  const cases: [string, string, string, string, RegExp][] = [
    [
      "neither",
      "UPDATE ciphers SET user_uuid = NULL, organization_uuid = NULL WHERE uuid = '012b7bf4-ff33-46bc-8864-01147581d25d'",
      "app.content.owners",
      "fail",
      /^1 item belongs to neither a user nor an organization, so nobody sees it: 012b7bf4-ff33-46bc-8864-01147581d25d$/,
    ],
    [
      "both",
      `UPDATE ciphers SET organization_uuid = '${org}' WHERE uuid = '012b7bf4-ff33-46bc-8864-01147581d25d' AND user_uuid IS NOT NULL`,
      "app.content.owners",
      "warn",
      /^1 item has both a user and an organization/,
    ],
    [
      "collections",
      `INSERT INTO organizations (uuid, name, billing_email) VALUES ('${other}', 'x', 'x');
       UPDATE collections SET org_uuid = '${other}' WHERE uuid = (SELECT collection_uuid FROM ciphers_collections LIMIT 1)`,
      "app.content.collections",
      "fail",
      /^\d+ items? sits? in a collection of another organization/,
    ],
    [
      "groups",
      `INSERT INTO organizations (uuid, name, billing_email) VALUES ('${other}', 'x', 'x');
       UPDATE groups SET organizations_uuid = '${other}'`,
      "app.content.groups",
      "fail",
      /group membership|group-collection link/,
    ],
    [
      "owners",
      "UPDATE users_organizations SET atype = 1 WHERE atype = 0",
      "app.content.org-owners",
      "fail",
      new RegExp(`^1 organization has no confirmed owner, so nobody can administer it: ${org}$`),
    ],
    [
      "memberkey",
      "UPDATE users_organizations SET akey = '' WHERE status = 2 AND atype = 2",
      "app.content.member-keys",
      "fail",
      /^1 confirmed membership lacks the organization key/,
    ],
    [
      "userkey",
      "UPDATE users SET akey = 'garbage' WHERE uuid = 'a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601'",
      "app.content.user-keys",
      "fail",
      /^1 registered user has no valid encrypted user key, so that vault cannot be decrypted: a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601$/,
    ],
    [
      "keypair",
      "UPDATE users SET private_key = NULL WHERE uuid = 'a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601'",
      "app.content.user-keys",
      "warn",
      /^1 registered user without a keypair/,
    ],
  ];
  for (const [name, sql, id, status, re] of cases) {
    const { checks } = await app(await damaged(dir, `${name}.sqlite3`, sql));
    const c = get(checks, id);
    assertEquals(c.status, status, name);
    if (status === "fail") assertEquals(c.exitCode, 7, name);
    assertMatch(c.message, re);
  }
});

// ---------------------------------------------------------------------------------------------
// Detection and modes

Deno.test("detection: another app's diesel database, a plain database, an empty one, --app none", async () => {
  await using dir = await makeTempDir();
  const other = dir.join("other.sqlite3");
  const db = new DatabaseSync(other);
  db.exec(
    `CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
    INSERT INTO __diesel_schema_migrations (version) VALUES ('20200101000000'), ('20200202000000');
    CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);`,
  );
  db.close();
  let r = await app(other);
  assertEquals(r.app, null);
  assertEquals(r.checks.map((c) => [c.id, c.status]), [["app.detect", "warn"]]);
  assertMatch(r.checks[0].message, /^diesel migrations of an unknown application/);
  r = await app(other, "vaultwarden");
  assertEquals(r.checks.map((c) => [c.id, c.status, c.exitCode]), [["app.detect", "fail", 7]]);
  assertMatch(
    r.checks[0].message,
    /^not a Vaultwarden database: diesel migrations of an unknown application/,
  );

  const plain = dir.join("plain.sqlite3");
  const p = new DatabaseSync(plain);
  p.exec("CREATE TABLE t (a)");
  p.close();
  r = await app(plain);
  assertEquals(r.checks.map((c) => [c.id, c.status]), [["app.detect", "skip"]]);
  assertEquals(exitCodeFor(r.checks), 0);
  r = await app(plain, "vaultwarden");
  assertEquals(r.checks.map((c) => [c.id, c.status, c.exitCode]), [["app.detect", "fail", 7]]);

  const empty = dir.join("empty.sqlite3");
  const e = new DatabaseSync(empty);
  e.exec("PRAGMA user_version = 1");
  e.close();
  r = await app(empty, "vaultwarden");
  assertMatch(r.checks[0].message, /no tables at all/);

  assertEquals(await app(await copyFixture(dir, POPULATED), "none"), { checks: [], app: null });
  // Not SQLite at all: skipped (auto), failed (vaultwarden); the database layer says why.
  await Deno.writeTextFile(dir.join("text.sqlite3"), "hello\n".repeat(100));
  assertEquals((await app(dir.join("text.sqlite3"))).checks[0].status, "skip");
  assertEquals((await app(dir.join("text.sqlite3"), "vaultwarden")).checks[0].exitCode, 7);
});

Deno.test("a Vaultwarden database whose bookkeeping lost every row is still recognised", async () => {
  await using dir = await makeTempDir();
  const path = await damaged(dir, "nobook.sqlite3", "DELETE FROM __diesel_schema_migrations");
  const { checks, app: report } = await app(path);
  assertEquals(report?.name, "vaultwarden");
  const m = get(checks, "app.migrations");
  assertEquals([m.status, m.exitCode], ["fail", 7]);
  assertMatch(m.message, /is empty: no migration is recorded/);
});

Deno.test("diesel timestamps", () => {
  assertEquals(
    parseDieselTime("2026-08-19 22:00:00.977885983")?.toISOString(),
    "2026-08-19T22:00:00.977Z",
  );
  assertEquals(parseDieselTime("2023-11-05 20:44:29")?.toISOString(), "2023-11-05T20:44:29.000Z");
  assertEquals(parseDieselTime("yesterday"), null);
  assertEquals(parseDieselTime(42), null);
});

// Runs last: every message produced above.
Deno.test("no message contains an e-mail address or encrypted data from the populated fixture", async () => {
  await using dir = await makeTempDir();
  const db = new DatabaseSync(await copyFixture(dir, POPULATED), { readOnly: true });
  const secrets = new Set<string>();
  try {
    const texts = db.prepare(
      `SELECT email AS v FROM users UNION ALL SELECT akey FROM users UNION ALL SELECT private_key FROM users
       UNION ALL SELECT name FROM ciphers UNION ALL SELECT data FROM ciphers UNION ALL SELECT notes FROM ciphers
       UNION ALL SELECT akey FROM users_organizations UNION ALL SELECT name FROM folders
       UNION ALL SELECT data FROM twofactor UNION ALL SELECT data FROM sends UNION ALL SELECT name FROM organizations`,
    ).all();
    for (const { v } of texts) {
      if (typeof v !== "string") continue;
      for (const m of v.matchAll(/[0-9]\.[A-Za-z0-9+/=]{8,}/g)) secrets.add(m[0].slice(0, 12));
      for (const m of v.matchAll(/[\w.+-]+@[\w-]+\.[\w.]+/g)) secrets.add(m[0]);
    }
  } finally {
    db.close();
  }
  assert(secrets.size > 100, `only ${secrets.size} secrets collected`);
  assert(allMessages.length > 100, `only ${allMessages.length} messages collected`);
  for (const msg of allMessages) {
    assert(!/@/.test(msg), `message has an @: ${msg}`);
    assert(!/\b[0-9]\.[A-Za-z0-9+/]{10,}/.test(msg), `message looks encrypted: ${msg}`);
    for (const s of secrets) assert(!msg.includes(s), `message leaks ${s}: ${msg}`);
  }
});
