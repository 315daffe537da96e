/**
 * `recover` on real Litestream v0.3.13 replicas (file and S3) of the populated Vaultwarden fixture
 * after a scripted incident: a deleted item comes back with exactly its rows, the result passes
 * `verify --file --app vaultwarden`, and every refusal leaves the target byte-identical.
 */
import { DatabaseSync } from "node:sqlite";
import { openDatabaseReadOnly } from "../../src/lib/sqlite.ts";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { startS3Server } from "../support/s3_server.ts";
import { holdOpenInChild } from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import {
  ALICE,
  BOB,
  DAVE,
  encString,
  FIXTURE,
  GONE,
  ORG,
  replicateIncident,
  s3IncidentReplica,
  sha256File,
  TRASHED,
} from "../support/vaultwarden_incident.ts";

/** An organization login with an attachment, a folder link and a collection. */
const ORG_ITEM = "a61f48a9-a406-46d3-96d5-01262ff4f5be";
/** The tables recover copies, and the column naming the item in each. */
const ITEM_TABLES: [string, string][] = [
  ["ciphers", "uuid"],
  ["folders_ciphers", "cipher_uuid"],
  ["ciphers_collections", "cipher_uuid"],
  ["favorites", "cipher_uuid"],
  ["archives", "cipher_uuid"],
  ["attachments", "cipher_uuid"],
];

/** Every row hanging on `item`, every column, blobs as hex: what "byte-identical rows" means. */
function itemRows(path: string, item: string): Record<string, unknown[]> {
  const db = openDatabaseReadOnly(path);
  try {
    const out: Record<string, unknown[]> = {};
    for (const [table, col] of ITEM_TABLES) {
      out[table] = db.prepare(`SELECT * FROM ${table} WHERE ${col} = ? ORDER BY 1, 2`).all(item)
        .map((r) =>
          Object.fromEntries(
            Object.entries(r).map((
              [k, v],
            ) => [k, v instanceof Uint8Array ? [...v].map((b) => b.toString(16)).join(",") : v]),
          )
        );
    }
    return out;
  } finally {
    db.close();
  }
}

/** Runs `sql` on a database (the test playing Vaultwarden or an operator's hand edit). */
function edit(path: string, sql: string, ...args: string[]) {
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: false });
  try {
    db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}

/** Deletes an item for good the way Vaultwarden does (links first). */
function deleteItem(path: string, item: string) {
  for (const [table, col] of [...ITEM_TABLES].reverse()) {
    edit(path, `DELETE FROM ${table} WHERE ${col} = ?`, item);
  }
}

function firstPersonalItem(user: string): string {
  const db = openDatabaseReadOnly(FIXTURE);
  try {
    return String(
      (db.prepare(
        "SELECT uuid FROM ciphers WHERE user_uuid = ? AND organization_uuid IS NULL AND deleted_at IS NULL ORDER BY uuid LIMIT 1",
      ).get(user) as { uuid: string }).uuid,
    );
  } finally {
    db.close();
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

interface RecoverDoc {
  ok: boolean;
  dryRun: boolean;
  backup: string | null;
  items: {
    uuid: string;
    type: string;
    owner: Record<string, string>;
    rows: Record<string, number>;
    skipped: unknown[];
    attachments: { id: string; file: string; fileCopied: boolean }[];
  }[];
  revisedUsers: string[];
}

Deno.test("recover brings items back from a real replica; every refusal leaves the target byte-identical", async (t) => {
  await using dir = await makeTempDir();
  const s3 = await startS3Server();
  try {
    await s3.createBucket("vault");
    const r = await replicateIncident(dir.path, {
      minCheckpointPageCount: 4,
      extraReplicas: [s3IncidentReplica(s3, "vault")],
    });
    const indexes = new Set(r.steps.flatMap((s) => s.segments.map((x) => x.index)));
    assert(indexes.size >= 3, `the incident spans several WAL indexes: ${[...indexes]}`);
    let n = 0;
    /** A fresh copy of the database as the incident left it, in its own directory. */
    const target = async (mode = 0o640) => {
      const d = `${dir.path}/t${n++}`;
      await Deno.mkdir(d);
      await Deno.copyFile(r.live, `${d}/db.sqlite3`);
      await Deno.chmod(`${d}/db.sqlite3`, mode);
      return { dir: d, db: `${d}/db.sqlite3` };
    };
    const recover = (into: string, ...flags: string[]) =>
      runCli(["recover", r.url, "--at", r.before, "--into", into, ...flags]);

    await t.step("an item deleted for good comes back with exactly its rows", async () => {
      const tg = await target();
      const shaBefore = await sha256File(tg.db);
      const dry = await runCliJson<RecoverDoc>([
        "recover",
        r.url,
        "--at",
        r.before,
        "--item",
        GONE,
        "--into",
        tg.db,
        "--dry-run",
        "--json",
      ]);
      assertEquals(dry.code, 0, dry.stderr);
      assertEquals(dry.json.dryRun, true);
      assertEquals(dry.json.items.map((i) => [i.uuid, i.type, i.owner, i.rows]), [[
        GONE,
        "login",
        { user: ALICE, email: "alice@example.com" },
        { ciphers: 1, folders_ciphers: 1, favorites: 1 },
      ]]);
      assertEquals(await sha256File(tg.db), shaBefore, "--dry-run changes nothing");
      assertEquals(names(tg.dir), ["db.sqlite3"], "--dry-run writes no backup");

      const res = await recover(tg.db, "--item", GONE);
      assertEquals(res.code, 0, res.stderr);
      assertStringIncludes(res.stdout, `item ${GONE} (login) of alice@example.com (${ALICE})`);
      for (const s of r.secrets) assert(!res.stdout.includes(s), "no secret in the report");
      assertEquals(itemRows(tg.db, GONE), itemRows(FIXTURE, GONE), "rows byte-identical");
      assert(itemRows(FIXTURE, GONE).folders_ciphers.length === 1);
      const backups = names(tg.dir).filter((x) => x.startsWith("db.sqlite3.before-recover-"));
      assertEquals(backups.length, 1, names(tg.dir).join(" "));
      assertEquals(
        await sha256File(`${tg.dir}/${backups[0]}`),
        shaBefore,
        "the backup is the db before",
      );
      assertEquals(names(tg.dir), ["db.sqlite3", backups[0]], "no temp, -wal or -shm left");
      assertEquals(Deno.statSync(tg.db).mode! & 0o777, 0o640, "the mode is kept");
      const verify = await runCli(["verify", "--file", tg.db, "--app", "vaultwarden"]);
      assertEquals(verify.code, 0, verify.stdout);
      // Against the database before: exactly the item came back, Alice's clients are told to sync.
      const diff = await runCliJson<
        { tables: { table: string; added: number; changed: number }[]; vaultwarden: unknown }
      >([
        "snapshot-diff",
        "--from",
        `file:${tg.dir}/${backups[0]}`,
        "--to",
        `file:${tg.db}`,
        "--json",
      ]);
      assertEquals(diff.code, 0, diff.stderr);
      assertEquals(diff.json.tables.map((x) => [x.table, x.added, x.changed]), [
        ["ciphers", 1, 0],
        ["favorites", 1, 0],
        ["folders_ciphers", 1, 0],
        ["users", 0, 1],
      ]);
      assertEquals(diff.json.vaultwarden, {
        users: [{
          uuid: ALICE,
          email: "alice@example.com",
          changes: [{
            table: "ciphers",
            object: "item",
            action: "created",
            uuid: GONE,
            type: "login",
          }],
        }],
        organizations: [],
      });
      // Once back, it is there: a second recover refuses.
      const sha = await sha256File(tg.db);
      const again = await recover(tg.db, "--item", GONE);
      assertEquals(again.code, 9, again.stderr);
      assertStringIncludes(again.stderr, `item ${GONE} is already in the target`);
      assertEquals(await sha256File(tg.db), sha);
    });

    await t.step(
      "an organization item with its attachment row, from S3, into the config's database",
      async () => {
        const tg = await target();
        deleteItem(tg.db, ORG_ITEM);
        const cfg = `${tg.dir}/litestream.yml`;
        await Deno.writeTextFile(
          cfg,
          (await Deno.readTextFile(r.config)).replaceAll(r.live, tg.db),
        );
        const res = await runCliJson<RecoverDoc>([
          "recover",
          tg.db,
          "--config",
          cfg,
          "--replica",
          "s3",
          "--at",
          r.before,
          "--item",
          ORG_ITEM,
          "--backup",
          `${dir.path}/org-backup.sqlite3`,
          "--json",
        ]);
        assertEquals(res.code, 0, res.stderr);
        assertEquals(res.json.backup, `${dir.path}/org-backup.sqlite3`);
        const item = res.json.items[0];
        assertEquals(item.owner, { organization: ORG });
        assertEquals(item.rows, {
          ciphers: 1,
          folders_ciphers: 1,
          ciphers_collections: 1,
          attachments: 1,
        });
        assertEquals(item.attachments.map((a) => [a.file, a.fileCopied]), [
          [`attachments/${ORG_ITEM}/89341b877e3909f832bf`, false],
        ]);
        assert(res.json.revisedUsers.includes(ALICE) && res.json.revisedUsers.length >= 5);
        assertEquals(itemRows(tg.db, ORG_ITEM), itemRows(FIXTURE, ORG_ITEM));
        assertEquals(
          (await runCli(["verify", "--file", tg.db, "--app", "vaultwarden"])).code,
          0,
        );
        for (const s of [...r.secrets, s3.credentials.secretAccessKey]) {
          assert(!res.stdout.includes(s) && !res.stderr.includes(s), "no secret printed");
        }
      },
    );

    await t.step("a password change is no re-key: the item still decrypts", async () => {
      const tg = await target();
      edit(tg.db, "UPDATE users SET akey = ? WHERE uuid = ?", encString(), ALICE);
      const res = await recover(tg.db, "--item", GONE);
      assertEquals(res.code, 0, res.stderr);
    });

    /** Each refusal: its exit code and reason, the target byte-identical, nothing left beside it. */
    const refusals: {
      name: string;
      prepare: (db: string) => void | Promise<void>;
      item: string;
      code: number;
      says: string;
      flags?: string[];
      at?: string;
    }[] = [
      {
        name: "the uuid is in the target (trashed)",
        prepare: () => {},
        item: TRASHED,
        code: 9,
        says:
          `item ${TRASHED} is already in the target (in the trash: restore it from the trash in Vaultwarden)`,
      },
      {
        name: "the item is not at the point",
        prepare: () => {},
        item: "00000000-0000-4000-8000-000000000000",
        code: 3,
        says: "item 00000000-0000-4000-8000-000000000000 is not in the database at that point",
      },
      {
        name: "the owner re-keyed since (the incident re-keyed Bob)",
        prepare: (db) => deleteItem(db, firstPersonalItem(BOB)),
        item: firstPersonalItem(BOB),
        code: 7,
        says: "its owner bob@example.com (" + BOB + ") re-keyed their account since",
      },
      {
        name: "the owner is gone",
        prepare: (db) => {
          deleteItem(db, firstPersonalItem(DAVE));
          edit(db, "DELETE FROM users WHERE uuid = ?", DAVE);
        },
        item: firstPersonalItem(DAVE),
        code: 7,
        says: `its owner dave@example.org (${DAVE}) no longer exists`,
      },
      {
        name: "a collection is gone",
        prepare: (db) => {
          deleteItem(db, ORG_ITEM);
          edit(db, "DELETE FROM collections WHERE uuid = '2c3d4e5f-6071-4283-94a5-b6c7d8e9fa02'");
        },
        item: ORG_ITEM,
        code: 7,
        says: "its collection 2c3d4e5f-6071-4283-94a5-b6c7d8e9fa02 is gone",
      },
      {
        name: "the organization's key changed",
        prepare: (db) => {
          deleteItem(db, ORG_ITEM);
          edit(db, "UPDATE organizations SET private_key = 'rotated' WHERE uuid = ?", ORG);
        },
        item: ORG_ITEM,
        code: 7,
        says: `the key of its organization ${ORG} changed since`,
      },
      {
        name: "the organization is gone",
        prepare: (db) => {
          deleteItem(db, ORG_ITEM);
          edit(db, "DELETE FROM organizations WHERE uuid = ?", ORG);
        },
        item: ORG_ITEM,
        code: 7,
        says: `its organization ${ORG} no longer exists`,
      },
      {
        name: "the backup path exists",
        prepare: (db) => Deno.writeTextFile(`${db}.mine`, "keep me"),
        item: GONE,
        code: 9,
        says: "already exists; refusing to overwrite it",
        flags: ["--backup", "BACKUP"],
      },
      {
        name: "a -wal lies beside the target (not closed cleanly)",
        prepare: (db) => Deno.writeFile(`${db}-wal`, new Uint8Array(4096).fill(7)),
        item: GONE,
        code: 9,
        says: "it was not closed cleanly",
      },
      {
        name: "the recovered database would fail Vaultwarden's checks",
        prepare: async (db) => {
          // An older copy whose row is broken (a hand edit): copied, it fails app.content.json.
          const broken = `${db}.point`;
          await Deno.copyFile(FIXTURE, broken);
          edit(broken, "UPDATE ciphers SET data = 'not json' WHERE uuid = ?", GONE);
        },
        item: GONE,
        code: 7,
        says: "fails app.content.json",
        at: "file:POINT",
      },
    ];
    for (const c of refusals) {
      await t.step(`refused: ${c.name}`, async () => {
        const tg = await target();
        await c.prepare(tg.db);
        const before = names(tg.dir);
        const sha = await sha256File(tg.db);
        const flags = (c.flags ?? []).map((f) => (f === "BACKUP" ? `${tg.db}.mine` : f));
        const at = c.at?.replace("POINT", `${tg.db}.point`) ?? r.before;
        const res = await runCli([
          "recover",
          r.url,
          "--at",
          at,
          "--item",
          c.item,
          "--into",
          tg.db,
          ...flags,
        ]);
        assertEquals(res.code, c.code, res.stderr);
        assertStringIncludes(res.stderr, c.says);
        assertEquals(res.stderr.split("\n").length, 1, res.stderr);
        assertEquals(await sha256File(tg.db), sha, "the target is byte-identical");
        assertEquals(names(tg.dir), before, "no backup, temp or -wal/-shm left");
      });
    }

    await t.step("refused: the database is in use (exit 9)", async () => {
      const tg = await target();
      deleteItem(tg.db, GONE);
      await using holder = await holdOpenInChild(tg.db, "users");
      const sha = await sha256File(tg.db);
      const res = await recover(tg.db, "--item", GONE);
      assertEquals(res.code, 9, res.stderr);
      assertStringIncludes(res.stderr, `is in use by deno (pid ${holder.pid})`);
      assertStringIncludes(res.stderr, "stop Vaultwarden and Litestream first");
      assertEquals(await sha256File(tg.db), sha);
    });

    await t.step("bad flags are usage errors", async () => {
      const tg = await target();
      const bad = await recover(tg.db, "--item", "not-a-uuid");
      assertEquals(bad.code, 2, bad.stderr);
      assertStringIncludes(bad.stderr, "invalid --item not-a-uuid");
      const noInto = await runCli(["recover", r.url, "--at", r.before, "--item", GONE]);
      assertEquals(noInto.code, 2, noInto.stderr);
      assertStringIncludes(noInto.stderr, "pass --into PATH");
    });
  } finally {
    await s3.stop();
  }
});
