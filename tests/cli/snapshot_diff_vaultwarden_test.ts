/**
 * snapshot-diff's Vaultwarden summary on a real Litestream v0.3.13 replica of the populated
 * fixture, with a scripted incident: an item deleted for good, an item trashed, a member removed, a
 * folder renamed, a member's role changed and an account re-keyed, each its own transaction.
 */
import { openDatabaseReadOnly } from "../../src/lib/sqlite.ts";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { startReplicate, writeLitestreamConfig } from "../support/litestream.ts";
import { openWalDatabase } from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";

const FIXTURE =
  new URL("../fixtures/vaultwarden/vw-1.37.2-populated.sqlite3", import.meta.url).pathname;

const ALICE = "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601";
const BOB = "b2e4d6f8-1a3c-4e5f-9071-c2d3e4f5a602";
const CAROL = "c3d5e7f9-2b4d-4f6a-8182-d3e4f5a6b703";
const ERIN = "e5f7a9b1-4d6f-4b8c-a3a4-f5a6b7c8d905";
const ORG = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c01";
/** Alice's login without attachments (deleted for good), an organization login (trashed). */
const GONE = "a6ead519-a516-46a3-9485-01013068d86e";
const TRASHED = "2d4161e5-2b2a-4c27-9de1-012528dbbc0a";
const CAROL_FOLDER = "4e5f6071-8293-44a5-b6c7-d8e9fa0b1c08";

/** Column values that must never be printed: encrypted fields, keys, hashes, tokens. */
const SECRET_COLUMNS: Record<string, string[]> = {
  users: [
    "password_hash",
    "salt",
    "akey",
    "private_key",
    "public_key",
    "totp_secret",
    "totp_recover",
    "security_stamp",
    "api_key",
    "password_hint",
  ],
  ciphers: ["name", "notes", "fields", "data", "password_history", "key"],
  folders: ["name"],
  collections: ["name"],
  users_organizations: ["akey", "reset_password_key"],
  organizations: ["private_key", "public_key"],
  devices: ["push_token", "refresh_token", "twofactor_remember"],
  twofactor: ["data"],
  sends: ["name", "notes", "data", "akey", "password_hash", "password_salt"],
  attachments: ["file_name", "akey"],
};

function secretValues(path: string): string[] {
  const db = openDatabaseReadOnly(path);
  const out: string[] = [];
  try {
    for (const [table, cols] of Object.entries(SECRET_COLUMNS)) {
      for (
        const row of db.prepare(`SELECT ${cols.map((c) => `"${c}"`).join(", ")} FROM ${table}`)
          .all()
      ) {
        for (const v of Object.values(row)) {
          const forms = v instanceof Uint8Array
            ? [
              [...v].map((b) => b.toString(16).padStart(2, "0")).join(""),
              btoa(String.fromCharCode(...v)),
            ]
            : typeof v === "string"
            ? [v]
            : [];
          // Short values (empty blobs, "[]") could match anywhere; real secrets are longer.
          out.push(...forms.filter((f) => f.length >= 8));
        }
      }
    }
  } finally {
    db.close();
  }
  return out;
}

const existsSync = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};
const diesel = (iso: string) => iso.replace("T", " ").replace("Z", "000");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  dir: string;
  url: string;
  live: string;
  /** A time after the replica's first state and before the incident. */
  before: string;
  secrets: string[];
}

async function replicateIncident(dir: string): Promise<Replica> {
  const live = `${dir}/db.sqlite3`;
  await Deno.copyFile(FIXTURE, live);
  await Deno.chmod(live, 0o644);
  const replica = `${dir}/replica`;
  const config = await writeLitestreamConfig(dir, [{
    path: live,
    replicas: [{ name: "file", path: replica }],
  }]);
  const db = openWalDatabase(live);
  let before = "";
  try {
    const rep = await startReplicate(config);
    try {
      await rep.waitForSync();
      await sleep(1100);
      before = new Date().toISOString();
      await sleep(1100);
      const now = diesel(new Date().toISOString());
      const steps: [string, unknown[]][][] = [
        // Deleted for good, as Vaultwarden does: its links first, then the row.
        [
          ["DELETE FROM folders_ciphers WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM ciphers_collections WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM favorites WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM archives WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM ciphers WHERE uuid = ?", [GONE]],
        ],
        [["UPDATE ciphers SET deleted_at = ?, updated_at = ? WHERE uuid = ?", [now, now, TRASHED]]],
        [
          [
            "DELETE FROM groups_users WHERE users_organizations_uuid IN (SELECT uuid FROM users_organizations WHERE user_uuid = ?)",
            [ERIN],
          ],
          ["DELETE FROM users_collections WHERE user_uuid = ?", [ERIN]],
          ["DELETE FROM users_organizations WHERE user_uuid = ? AND org_uuid = ?", [ERIN, ORG]],
        ],
        [[
          "UPDATE folders SET name = ?, updated_at = ? WHERE uuid = ?",
          [
            `2.${btoa(crypto.randomUUID())}|${btoa(crypto.randomUUID())}|renamed`,
            now,
            CAROL_FOLDER,
          ],
        ]],
        [[
          "UPDATE users_organizations SET atype = 1 WHERE user_uuid = ? AND org_uuid = ?",
          [CAROL, ORG],
        ]],
        [[
          "UPDATE users SET akey = ?, private_key = ?, security_stamp = ?, updated_at = ? WHERE uuid = ?",
          [
            `2.${btoa(crypto.randomUUID())}|rekeyed-akey`,
            `2.${btoa(crypto.randomUUID())}|rekeyed-private`,
            crypto.randomUUID(),
            now,
            BOB,
          ],
        ]],
      ];
      for (const step of steps) {
        db.exec("BEGIN");
        for (const [sql, args] of step) {
          db.prepare(sql).run(...(args as (string | number | null)[]));
        }
        db.exec("COMMIT");
        await rep.waitForSync();
      }
    } finally {
      await rep.stop();
    }
  } finally {
    db.close();
  }
  return {
    dir,
    url: `file://${replica}`,
    live,
    before,
    secrets: [...new Set([...secretValues(FIXTURE), ...secretValues(live)])],
  };
}

interface Summary {
  users: { uuid: string; email: string | null; changes: Record<string, string>[] }[];
  organizations: { uuid: string; changes: Record<string, string>[] }[];
}
interface DiffDoc {
  tables: { table: string }[];
  vaultwarden: Summary | null;
}

/** What the script did, in the summary's JSON shape. */
const EXPECTED: Summary = {
  users: [
    {
      uuid: ALICE,
      email: "alice@example.com",
      changes: [{ table: "ciphers", object: "item", action: "deleted", uuid: GONE, type: "login" }],
    },
    {
      uuid: BOB,
      email: "bob@example.com",
      changes: [{ table: "users", object: "account", action: "keys-changed", uuid: BOB }],
    },
    {
      uuid: CAROL,
      email: "carol@example.org",
      changes: [{ table: "folders", object: "folder", action: "renamed", uuid: CAROL_FOLDER }],
    },
  ],
  organizations: [{
    uuid: ORG,
    changes: [
      { table: "ciphers", object: "item", action: "trashed", uuid: TRASHED, type: "login" },
      {
        table: "users_organizations",
        object: "membership",
        action: "role-changed",
        uuid: CAROL,
        email: "carol@example.org",
        from: "user",
        to: "admin",
      },
      {
        table: "users_organizations",
        object: "membership",
        action: "removed",
        uuid: ERIN,
        email: "erin@example.net",
      },
    ],
  }],
};

function assertNoSecrets(text: string, secrets: string[], what: string) {
  for (const s of secrets) assert(!text.includes(s), `${what} holds a secret column value`);
}

Deno.test("snapshot-diff summarizes a scripted Vaultwarden incident per user and organization", async (t) => {
  await using dir = await makeTempDir();
  const r = await replicateIncident(dir.path);
  assert(r.secrets.length > 50, `secrets collected: ${r.secrets.length}`);

  await t.step(
    "replica point → latest: exactly the incident, right owners, no secrets",
    async () => {
      const json = await runCliJson<DiffDoc>([
        "snapshot-diff",
        r.url,
        "--from",
        r.before,
        "--json",
      ]);
      assertEquals(json.code, 0, json.stderr);
      assertEquals(json.json.vaultwarden, EXPECTED);
      assertNoSecrets(json.stdout, r.secrets, "--json");
      const text = await runCli(["snapshot-diff", r.url, "--from", r.before]);
      assertEquals(text.code, 0, text.stderr);
      for (
        const line of [
          `Vaultwarden user alice@example.com (${ALICE}):`,
          `  item ${GONE} (login) deleted for good`,
          "  account: the keys changed",
          `  folder ${CAROL_FOLDER} renamed`,
          `Vaultwarden organization ${ORG}:`,
          `  item ${TRASHED} (login) moved to trash`,
          `  member carol@example.org (${CAROL}) role changed from user to admin`,
          `  member erin@example.net (${ERIN}) removed`,
        ]
      ) assertStringIncludes(text.stdout, line);
      assertNoSecrets(text.stdout, r.secrets, "the text report");
    },
  );

  await t.step("a point with itself reports nothing", async () => {
    for (const point of [r.before, "latest"]) {
      const json = await runCliJson<DiffDoc>([
        "snapshot-diff",
        r.url,
        "--from",
        point,
        "--to",
        point,
        "--json",
      ]);
      assertEquals(json.code, 0, json.stderr);
      assertEquals(json.json.vaultwarden, { users: [], organizations: [] });
      assertEquals(json.json.tables, []);
      const text = await runCli(["snapshot-diff", r.url, "--from", point, "--to", point]);
      assertStringIncludes(text.stdout, "Vaultwarden: no changes.");
      assertStringIncludes(text.stdout, "No differences in schema or rows.");
    }
  });

  await t.step("file: points: the fixture and the live database, opened read-only", async () => {
    const liveBytes = await Deno.readFile(r.live);
    const fromFile = await runCliJson<DiffDoc>([
      "snapshot-diff",
      r.url,
      "--from",
      `file:${FIXTURE}`,
      "--json",
    ]);
    assertEquals(fromFile.code, 0, fromFile.stderr);
    assertEquals(fromFile.json.vaultwarden, EXPECTED);
    const toLive = await runCliJson<DiffDoc>([
      "snapshot-diff",
      r.url,
      "--from",
      r.before,
      "--to",
      `file:${r.live}`,
      "--json",
    ]);
    assertEquals(toLive.code, 0, toLive.stderr);
    assertEquals(toLive.json.vaultwarden, EXPECTED);
    // Two files need no replica at all.
    const files = await runCliJson<DiffDoc>([
      "snapshot-diff",
      "--from",
      `file:${FIXTURE}`,
      "--to",
      `file:${r.live}`,
      "--json",
    ]);
    assertEquals(files.code, 0, files.stderr);
    assertEquals(files.json.vaultwarden, EXPECTED);
    assertEquals(await Deno.readFile(r.live), liveBytes, "the live database is unchanged");
    for (const db of [FIXTURE, r.live]) {
      for (const suffix of ["-wal", "-shm"]) {
        assert(!existsSync(`${db}${suffix}`), `no ${suffix} was created beside ${db}`);
      }
    }
    // A live database: what its -wal holds is part of it (read, never checkpointed).
    const busy = `${r.dir}/busy.sqlite3`;
    await Deno.copyFile(r.live, busy);
    const writer = openWalDatabase(busy);
    try {
      writer.prepare("UPDATE folders SET name = 'renamed again' WHERE uuid = ?").run(CAROL_FOLDER);
      writer.prepare("UPDATE users SET client_kdf_iter = 700000 WHERE uuid = ?").run(ALICE);
      assert(Deno.statSync(`${busy}-wal`).size > 0, "the change is only in the -wal");
      const walBytes = await Deno.readFile(`${busy}-wal`);
      const withWal = await runCliJson<DiffDoc>([
        "snapshot-diff",
        "--from",
        `file:${r.live}`,
        "--to",
        `file:${busy}`,
        "--json",
      ]);
      assertEquals(withWal.code, 0, withWal.stderr);
      assertEquals(withWal.json.vaultwarden?.users.map((u) => u.changes), [
        [{
          table: "users",
          object: "account",
          action: "kdf-changed",
          uuid: ALICE,
          from: "PBKDF2-SHA256, 600000 iterations",
          to: "PBKDF2-SHA256, 700000 iterations",
        }],
        [{ table: "folders", object: "folder", action: "renamed", uuid: CAROL_FOLDER }],
      ]);
      assertEquals(await Deno.readFile(`${busy}-wal`), walBytes, "the -wal is untouched");
    } finally {
      writer.close();
    }
    const missing = await runCli(["snapshot-diff", r.url, "--from", `file:${r.dir}/nope.db`]);
    assertEquals(missing.code, 2);
    assertStringIncludes(missing.stderr, "is not a readable file");
    await Deno.writeTextFile(`${r.dir}/notes.txt`, "not a database at all. ".repeat(10));
    const notDb = await runCli([
      "snapshot-diff",
      "--from",
      `file:${r.dir}/notes.txt`,
      "--to",
      `file:${r.live}`,
    ]);
    assertEquals(notDb.code, 2, notDb.stderr);
    assertStringIncludes(notDb.stderr, "not a SQLite database");
  });

  await t.step("--user, --item and --table narrow the summary", async () => {
    const diff = async (...flags: string[]) => {
      const res = await runCliJson<DiffDoc>([
        "snapshot-diff",
        r.url,
        "--from",
        r.before,
        "--json",
        ...flags,
      ]);
      assertEquals(res.code, 0, res.stderr);
      return res.json;
    };
    assertEquals((await diff("--user", "BOB@example.com")).vaultwarden, {
      users: [EXPECTED.users[1]],
      organizations: [],
    });
    assertEquals((await diff("--user", CAROL)).vaultwarden, {
      users: [EXPECTED.users[2]],
      organizations: [{ uuid: ORG, changes: [EXPECTED.organizations[0].changes[1]] }],
    });
    assertEquals((await diff("--item", TRASHED)).vaultwarden, {
      users: [],
      organizations: [{ uuid: ORG, changes: [EXPECTED.organizations[0].changes[0]] }],
    });
    const folders = await diff("--table", "folders");
    assertEquals(folders.vaultwarden, { users: [EXPECTED.users[2]], organizations: [] });
    assertEquals(folders.tables.map((x) => x.table), ["folders"]);
    const unknown = await runCli([
      "snapshot-diff",
      r.url,
      "--from",
      r.before,
      "--user",
      "nobody@example.com",
    ]);
    assertEquals(unknown.code, 2, unknown.stderr);
    assertStringIncludes(unknown.stderr, "no user nobody@example.com at either point");
  });
});
