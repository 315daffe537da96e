import { DatabaseSync } from "node:sqlite";
import {
  dataFolderPaths,
  readReferencedFiles,
  referencedFiles,
} from "../../../src/apps/vaultwarden/data_folder.ts";
import { assertEquals } from "../../support/assert.ts";
import { withTempDir } from "../../support/tmp.ts";

const CIPHER = "0f8b5a3c-2d1e-4c6b-9a7f-1e2d3c4b5a69";
const SEND = "7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7";
const FILE_ID = "ab".repeat(32);

function vaultDb(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  db.exec(`
    CREATE TABLE ciphers (uuid TEXT PRIMARY KEY, updated_at DATETIME NOT NULL);
    CREATE TABLE attachments (id TEXT PRIMARY KEY, cipher_uuid TEXT NOT NULL, file_name TEXT NOT NULL,
      file_size INTEGER NOT NULL, akey TEXT);
    CREATE TABLE sends (uuid TEXT PRIMARY KEY, atype INTEGER NOT NULL, data TEXT NOT NULL,
      revision_date DATETIME NOT NULL);
  `);
  db.prepare("INSERT INTO ciphers VALUES (?, ?)").run(CIPHER, "2026-12-01 10:11:12.123456789");
  const att = db.prepare("INSERT INTO attachments VALUES (?, ?, '2.secret|name|mac', ?, NULL)");
  att.run("0123456789abcdef0123", CIPHER, 1234);
  att.run("fedcba9876543210fedc", CIPHER, 0);
  att.run("../../../etc/passwd", CIPHER, 10); // a crafted row: never a path
  const send = db.prepare("INSERT INTO sends VALUES (?, ?, ?, '2026-12-02 08:00:00')");
  send.run(SEND, 1, JSON.stringify({ id: FILE_ID, size: "5000", fileName: "2.x|y|z" }));
  send.run("11111111-2222-4333-8444-555555555555", 0, JSON.stringify({ text: "2.a|b|c" }));
  send.run("22222222-2222-4333-8444-555555555555", 1, "not json");
  return db;
}

Deno.test("referencedFiles: attachment rows and file sends, with sizes and row times; crafted rows are counted, never paths", () => {
  const db = vaultDb();
  const got = referencedFiles(db);
  db.close();
  assertEquals(got.invalid, 2);
  assertEquals(got.files, [
    {
      kind: "attachment",
      rel: `attachments/${CIPHER}/0123456789abcdef0123`,
      size: 1234,
      rowTime: new Date("2026-12-01T10:11:12.123Z"),
    },
    {
      kind: "attachment",
      rel: `attachments/${CIPHER}/fedcba9876543210fedc`,
      size: 0,
      rowTime: new Date("2026-12-01T10:11:12.123Z"),
    },
    {
      kind: "send",
      rel: `sends/${SEND}/${FILE_ID}`,
      size: 5000,
      rowTime: new Date("2026-12-02T08:00:00Z"),
    },
  ]);
});

Deno.test("referencedFiles: a database without the tables references nothing", () => {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE users (uuid TEXT)");
  assertEquals(referencedFiles(db), { files: [], invalid: 0 });
  db.close();
});

Deno.test("readReferencedFiles opens the file read-only (no -wal or -shm appears)", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite3`;
    const db = vaultDb();
    db.exec(`VACUUM INTO '${path}'`);
    db.close();
    assertEquals(readReferencedFiles(path).files.length, 3);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["db.sqlite3"]);
  });
});

Deno.test("dataFolderPaths: Vaultwarden's defaults and its settings; s3:// values are not local", () => {
  const none = () => undefined;
  assertEquals(dataFolderPaths("/data/", none), {
    dataDir: "/data",
    attachmentsDir: "/data/attachments",
    sendsDir: "/data/sends",
    secrets: { "rsa_key.pem": "/data/rsa_key.pem", "config.json": "/data/config.json" },
  });
  const env: Record<string, string> = {
    ATTACHMENTS_FOLDER: "/files/att",
    SENDS_FOLDER: "s3://bucket/sends",
    RSA_KEY_FILENAME: "/keys/signing",
    CONFIG_FILE: "/etc/vw.json",
  };
  assertEquals(dataFolderPaths("/data", (n) => env[n]), {
    dataDir: "/data",
    attachmentsDir: "/files/att",
    sendsDir: undefined,
    secrets: { "rsa_key.pem": "/keys/signing.pem", "config.json": "/etc/vw.json" },
  });
});
