/**
 * Builds the README demo replica:
 * `deno run --config test_deps/deno.jsonc -A scripts/make_sample_replica.ts` (after
 * `deno install --config test_deps/deno.jsonc`; the Litestream binary is a test-only package).
 *
 * Copies the empty Vaultwarden 1.37.2 schema (tests/fixtures/vaultwarden/vw-1.37.2.sqlite3) to a
 * temporary directory, writes a few fake, non-secret users/folders/ciphers in separate
 * transactions while the real Litestream v0.3.13 replicates it into a file replica (with a small
 * `min-checkpoint-page-count`, so the replica holds several WAL indexes), stops Litestream,
 * checks the replica with `litestream restore`, and then replaces
 *
 *   samples/vaultwarden-replica/   the file replica (one generation, snapshot + WAL segments)
 *   samples/litestream.yml         a v0.3 config naming samples/db.sqlite3 and that replica
 *
 * The data is deterministic; generation names and object mtimes are not (git does not keep
 * mtimes, so a checkout shows checkout times as v0.3 object times).
 */
import type { DatabaseSync } from "node:sqlite";
import {
  fileReplicaObjects,
  fileReplicaUrl,
  litestreamRestore,
  startReplicate,
  writeLitestreamConfig,
} from "../tests/support/litestream.ts";
import { inTransaction, openWalDatabase, readUserTables } from "../tests/support/sqlite_writer.ts";
import { makeTempDir } from "../tests/support/tmp.ts";

const repo = new URL("../", import.meta.url).pathname;
const fixture = `${repo}tests/fixtures/vaultwarden/vw-1.37.2.sqlite3`;
const samplesDir = `${repo}samples`;
const sampleReplica = `${samplesDir}/vaultwarden-replica`;

const SAMPLE_CONFIG = `# Litestream v0.3 (v0.3.13) configuration for the README demo.
# Written by scripts/make_sample_replica.ts. Paths are relative: Litestream v0.3 resolves them
# against its working directory, so run commands from the repository root, e.g.
#   litestream restore -config samples/litestream.yml samples/db.sqlite3
# (samples/db.sqlite3 is not shipped; restoring creates it).
dbs:
  - path: samples/db.sqlite3
    replicas:
      - type: file
        path: samples/vaultwarden-replica
`;

// ---------------------------------------------------------------------------------------------
// Deterministic fake data

let seed = 0x5eed1e55;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function bytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

function b64(n: number): string {
  return btoa(String.fromCharCode(...bytes(n)));
}

function uuid(): string {
  const h = Array.from(bytes(16), (b) => b.toString(16).padStart(2, "0"));
  h[6] = `4${h[6][1]}`;
  h[8] = ((parseInt(h[8], 16) & 0x3f) | 0x80).toString(16);
  const s = h.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** A Bitwarden "type 2" encrypted string `2.<iv>|<ciphertext>|<mac>` of random bytes. */
function enc(plainLength = 16): string {
  return `2.${b64(16)}|${b64(16 * Math.ceil((plainLength + 1) / 16))}|${b64(32)}`;
}

function time(day: number, second: number): string {
  const d = new Date(Date.UTC(2026, 0, day, 9, 0, second));
  return `${d.toISOString().slice(0, 19).replace("T", " ")}.${
    String(second * 7919).padStart(9, "0")
  }`;
}

interface User {
  uuid: string;
  email: string;
}

function addUser(db: DatabaseSync, email: string, name: string, day: number): User {
  const user = { uuid: uuid(), email };
  db.prepare(
    `INSERT INTO users (uuid, created_at, updated_at, email, name, password_hash, salt,
       password_iterations, akey, private_key, public_key, security_stamp, equivalent_domains,
       excluded_globals, client_kdf_type, client_kdf_iter, verified_at, enabled, avatar_color)
     VALUES (?, ?, ?, ?, ?, ?, ?, 600000, ?, ?, ?, ?, '[]', '[]', 0, 600000, ?, 1, ?)`,
  ).run(
    user.uuid,
    time(day, 1),
    time(day, 2),
    email,
    name,
    bytes(32),
    bytes(64),
    enc(64),
    enc(1200),
    `MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA${b64(180)}`,
    uuid(),
    time(day, 3),
    `#${Array.from(bytes(3), (b) => b.toString(16).padStart(2, "0")).join("")}`,
  );
  return user;
}

function addFolder(db: DatabaseSync, user: User, day: number): string {
  const id = uuid();
  db.prepare(
    "INSERT INTO folders (uuid, created_at, updated_at, user_uuid, name) VALUES (?, ?, ?, ?, ?)",
  ).run(id, time(day, 10), time(day, 10), user.uuid, enc(12));
  return id;
}

function cipherData(atype: number): string {
  switch (atype) {
    case 1:
      return JSON.stringify({
        autofillOnPageLoad: null,
        fido2Credentials: [],
        password: enc(20),
        passwordRevisionDate: null,
        totp: null,
        uris: [{ match: null, uri: enc(30), uriChecksum: enc(44) }],
        username: enc(18),
      });
    case 2:
      return JSON.stringify({ type: 0 });
    case 3:
      return JSON.stringify({
        brand: enc(4),
        cardholderName: enc(14),
        code: enc(3),
        expMonth: enc(2),
        expYear: enc(4),
        number: enc(16),
      });
    default:
      return JSON.stringify({
        address1: enc(20),
        city: enc(10),
        email: enc(20),
        firstName: enc(8),
        lastName: enc(8),
        phone: null,
        title: null,
        username: enc(10),
      });
  }
}

function addCipher(
  db: DatabaseSync,
  user: User,
  atype: number,
  day: number,
  folder?: string,
): string {
  const id = uuid();
  db.prepare(
    `INSERT INTO ciphers (uuid, created_at, updated_at, user_uuid, organization_uuid, atype, name,
       notes, fields, data, password_history, deleted_at, reprompt, "key")
     VALUES (?, ?, ?, ?, NULL, ?, ?, ?, NULL, ?, NULL, NULL, NULL, NULL)`,
  ).run(
    id,
    time(day, 20),
    time(day, 21),
    user.uuid,
    atype,
    enc(24),
    atype === 2 ? enc(200) : null,
    cipherData(atype),
  );
  if (folder) {
    db.prepare("INSERT INTO folders_ciphers (cipher_uuid, folder_uuid) VALUES (?, ?)").run(
      id,
      folder,
    );
  }
  return id;
}

// ---------------------------------------------------------------------------------------------

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const src = `${from}/${entry.name}`;
    const dst = `${to}/${entry.name}`;
    if (entry.isDirectory) {
      await copyTree(src, dst);
    } else {
      await Deno.copyFile(src, dst);
      const info = await Deno.stat(src);
      if (info.mtime) await Deno.utime(dst, info.atime ?? info.mtime, info.mtime);
    }
  }
}

async function main(): Promise<void> {
  await using tmp = await makeTempDir("litewarden-sample-");
  const dbPath = tmp.join("db.sqlite3");
  const replicaDir = tmp.join("replica");
  await Deno.copyFile(fixture, dbPath);
  await Deno.chmod(dbPath, 0o644);

  const db = openWalDatabase(dbPath);
  db.exec("PRAGMA foreign_keys = ON");
  const config = await writeLitestreamConfig(tmp.path, [{
    path: dbPath,
    minCheckpointPageCount: 16, // a checkpoint (new WAL index) every few transactions
    replicas: [{ path: replicaDir }],
  }]);
  const rep = await startReplicate(config);
  try {
    await rep.waitForSync();
    const alice = addUser(db, "alice@example.com", "Alice Example", 5);
    const bob = addUser(db, "bob@example.com", "Bob Example", 6);
    await rep.waitForSync();

    const aliceFolders = inTransaction(
      db,
      () => [addFolder(db, alice, 7), addFolder(db, alice, 7)],
    );
    const bobFolder = addFolder(db, bob, 8);
    await rep.waitForSync();

    for (let i = 0; i < 8; i++) {
      addCipher(db, alice, [1, 1, 2, 3, 1, 4, 1, 2][i], 10 + i, aliceFolders[i % 2]);
      if (i % 3 === 0) await rep.waitForSync();
    }
    inTransaction(db, () => {
      for (let i = 0; i < 4; i++) addCipher(db, bob, i === 3 ? 2 : 1, 20 + i, bobFolder);
    });
    await rep.waitForSync();

    const carol = addUser(db, "carol@example.org", "Carol Example", 25);
    const carolCipher = addCipher(db, carol, 1, 26);
    // An edit and a move to the trash, as Vaultwarden does them.
    db.prepare("UPDATE ciphers SET updated_at = ?, data = ? WHERE uuid = ?").run(
      time(27, 30),
      cipherData(1),
      carolCipher,
    );
    db.prepare("UPDATE ciphers SET deleted_at = ?, updated_at = ? WHERE uuid = ?").run(
      time(28, 40),
      time(28, 40),
      carolCipher,
    );
    await rep.waitForSync();
  } finally {
    await rep.stop();
  }

  const integrity = db.prepare("PRAGMA integrity_check").get()?.integrity_check;
  const fkProblems = db.prepare("PRAGMA foreign_key_check").all().length;
  db.close();
  if (integrity !== "ok" || fkProblems !== 0) {
    throw new Error(`sample database unhealthy: integrity=${integrity} fk=${fkProblems}`);
  }

  // The replica must be what we expect and restore to the same rows.
  const objects = await fileReplicaObjects(replicaDir);
  const generations = new Set(objects.map((o) => o.generation));
  const indexes = new Set(objects.filter((o) => o.kind === "wal").map((o) => o.index));
  if (generations.size !== 1 || indexes.size < 2) {
    throw new Error(`unexpected replica: ${generations.size} generations, ${indexes.size} indexes`);
  }
  const restored = tmp.join("restored.sqlite3");
  const res = await litestreamRestore(["-o", restored, fileReplicaUrl(replicaDir)]);
  if (res.code !== 0) throw new Error(`litestream restore failed:\n${res.stderr}`);
  const rows = readUserTables(dbPath);
  if (JSON.stringify(readUserTables(restored)) !== JSON.stringify(rows)) {
    throw new Error("restored sample differs from the source database");
  }

  await Deno.mkdir(samplesDir, { recursive: true });
  await Deno.remove(sampleReplica, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  await copyTree(replicaDir, sampleReplica);
  await Deno.writeTextFile(`${samplesDir}/litestream.yml`, SAMPLE_CONFIG);

  const total = objects.reduce((n, o) => n + o.size, 0);
  console.log(
    `wrote ${sampleReplica}: generation ${[...generations][0]}, ` +
      `${objects.filter((o) => o.kind === "snapshot").length} snapshot(s), ` +
      `${
        objects.filter((o) => o.kind === "wal").length
      } WAL segments in ${indexes.size} indexes, ` +
      `${total} bytes`,
  );
  console.log(
    `rows: users ${rows.users.length}, folders ${rows.folders.length}, ` +
      `ciphers ${rows.ciphers.length}, folders_ciphers ${rows.folders_ciphers.length}`,
  );
}

if (import.meta.main) await main();
