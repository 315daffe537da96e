/**
 * snapshot-diff's Vaultwarden summary on a real Litestream v0.3.13 replica of the populated
 * fixture, with a scripted incident: an item deleted for good, an item trashed, a member removed, a
 * folder renamed, a member's role changed and an account re-keyed, each its own transaction.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { openWalDatabase } from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import {
  ALICE,
  BOB,
  CAROL,
  CAROL_FOLDER,
  ERIN,
  FIXTURE,
  GONE,
  ORG,
  replicateIncident,
  TRASHED,
} from "../support/vaultwarden_incident.ts";

const existsSync = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

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
