/**
 * `prune` and the vault's files stored beside the replica: a Vaultwarden database replicated by the
 * real Litestream v0.3.13 through four daily restore points while attachments come and go, its
 * bodies and key and settings versions under `.litewarden/files/` (object times set through file
 * mtimes, as in prune_test.ts). A body goes only when no kept point's database references it and
 * it was stored before the oldest kept point; key and settings versions older than the one in
 * effect at the oldest kept point go. The dry run shows them; --apply deletes exactly them.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { startReplicate, writeLitestreamConfig } from "../support/litestream.ts";
import {
  createItemsTable,
  openWalDatabase,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import { bytes } from "../support/bytes.ts";
import { readReferencedFiles } from "../../src/apps/vaultwarden/data_folder.ts";
import { FILES_BASE, parseStamp, versionKey } from "../../src/replica/vault_files.ts";
import type { SecretName } from "../../src/replica/vault_files.ts";
import { FileStorage } from "../../src/storage/file.ts";

const VW = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;
const DAY = 86_400_000;
const MINUTE = 60_000;
const hex8 = (n: number) => n.toString(16).padStart(8, "0");

interface PruneDoc {
  notes: string[];
  points: { key: string; kept: boolean; time: string }[];
  delete: {
    objects: number;
    groups: { kind: string; name?: string; objects: number; bytes: number }[];
    keys: string[];
  };
  protectedYoung: number;
  deleted: number;
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Every key under `dir` (relative, `/`-separated), sorted. */
async function keysUnder(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const key = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await keysUnder(`${dir}/${e.name}`, key));
    else out.push(key);
  }
  return out.sort();
}

Deno.test("prune keeps the vault files kept points need (also ones deleted later) and removes the rest", async (t) => {
  await using tmp = await makeTempDir();
  const dbPath = tmp.join("db.sqlite3");
  const replica = tmp.join("replica");
  const meta = tmp.join(".db.sqlite3-litestream");
  await Deno.copyFile(`${VW}vw-1.37.2-populated.sqlite3`, dbPath);
  const config = await writeLitestreamConfig(tmp.path, [{
    path: dbPath,
    minCheckpointPageCount: 16,
    replicas: [{ path: replica, snapshotInterval: 40 }],
  }]);

  // Four restore points (snapshots of WAL indexes 0–3); before each, attachments change the way
  // Vaultwarden changes them. X lives at point 0 only, Y at 1, Z at 2 (deleted before 3).
  const db = openWalDatabase(dbPath);
  createItemsTable(db);
  const cipher = String(db.prepare("SELECT uuid FROM ciphers LIMIT 1").get()!.uuid);
  const id = (name: string) => `${name.repeat(20)}`.slice(0, 20);
  const rel = (name: string) => `attachments/${cipher}/${id(name)}`;
  const add = (name: string) =>
    db.prepare(
      "INSERT INTO attachments (id, cipher_uuid, file_name, file_size, akey) VALUES (?, ?, ?, ?, ?)",
    ).run(id(name), cipher, `2.${name}|x|y`, 3000, "2.k");
  const remove = (name: string) => db.prepare("DELETE FROM attachments WHERE id = ?").run(id(name));
  const changes: (() => void)[] = [
    () => add("a"),
    () => (remove("a"), add("b")),
    () => (remove("b"), add("c")),
    () => remove("c"),
  ];
  let generation = "";
  const rep = await startReplicate(config);
  try {
    for (const [i, change] of changes.entries()) {
      change();
      // More pages than min-checkpoint-page-count: Litestream checkpoints, index i begins.
      if (i > 0) writeBigTransaction(db, { minPages: 20, label: `i${i}-big` });
      writeSmallTransactions(db, 1, { label: `i${i}` });
      await rep.waitForSync();
      generation = (await Deno.readTextFile(`${meta}/generation`)).trim();
      const snapshot = `${replica}/generations/${generation}/snapshots/${hex8(i)}.snapshot.lz4`;
      await waitFor(`snapshot ${i}`, () => exists(snapshot));
    }
  } finally {
    await rep.stop();
    db.close();
  }

  // Date the replica: point i (snapshot i) on day i, its index's segments a minute apart.
  const base = new Date(Math.floor((Date.now() - 10 * DAY) / 1000) * 1000);
  const pointTime = (i: number) => new Date(base.getTime() + i * DAY);
  const gen = `${replica}/generations/${generation}`;
  for (const s of await keysUnder(`${gen}/snapshots`)) {
    const t = pointTime(parseInt(s.slice(0, 8), 16));
    await Deno.utime(`${gen}/snapshots/${s}`, t, t);
  }
  const segments = await keysUnder(`${gen}/wal`);
  for (const [k, s] of segments.entries()) {
    const t = new Date(pointTime(parseInt(s.slice(0, 8), 16)).getTime() + (k + 1) * MINUTE);
    await Deno.utime(`${gen}/wal/${s}`, t, t);
  }

  // The stored files, dated as the companion would have stored them.
  const storage = new FileStorage(replica);
  const at = async (key: string, data: Uint8Array, t: Date) => {
    await storage.put(key, data);
    await Deno.utime(`${replica}/${key}`, t, t);
  };
  const fixtureFiles = readReferencedFiles(`${VW}vw-1.37.2-populated.sqlite3`).files;
  for (const [i, f] of fixtureFiles.entries()) {
    await at(`${FILES_BASE}${f.rel}`, bytes(f.size!, i + 1), new Date(base.getTime() - 3600_000));
  }
  const body = (seed: number) => bytes(3000, seed);
  const orphan = `attachments/${cipher}/${"0".repeat(20)}`; // referenced by no point ever
  const between = `attachments/${cipher}/${"1".repeat(20)}`; // row lived between points 1 and 2
  const afterOldestKept = `attachments/${cipher}/${"2".repeat(20)}`; // between points 2 and 3
  const young = `attachments/${cipher}/${"3".repeat(20)}`; // just uploaded (its row is newer too)
  const stored: [string, Date][] = [
    [rel("a"), new Date(pointTime(0).getTime() - MINUTE)],
    [rel("b"), new Date(pointTime(1).getTime() - MINUTE)],
    [rel("c"), new Date(pointTime(2).getTime() - MINUTE)],
    [orphan, new Date(base.getTime() - 7200_000)],
    [between, new Date(pointTime(1).getTime() + 3600_000)],
    [afterOldestKept, new Date(pointTime(2).getTime() + 3600_000)],
    [young, new Date()],
  ];
  for (const [i, [r, time]] of stored.entries()) await at(`${FILES_BASE}${r}`, body(i + 10), time);
  const version = (name: SecretName, time: Date) =>
    `${FILES_BASE}${versionKey(name, time, "0123456789abcdef", false)}`;
  const key1 = version("rsa_key.pem", new Date(base.getTime() - DAY));
  const key2 = version("rsa_key.pem", pointTime(1));
  const key3 = version("rsa_key.pem", new Date(pointTime(2).getTime() + 3600_000));
  const config1 = version("config.json", new Date(base.getTime() - DAY));
  for (const k of [key1, key2, key3, config1]) {
    const t = /(\d{8}T\d{6}\.\d{3}Z)/.exec(k)![1];
    await at(k, new TextEncoder().encode("-----BEGIN RSA PRIVATE KEY-----\n"), parseStamp(t)!);
  }

  const before = await keysUnder(replica);
  const args = ["prune", dbPath, "--config", config, "--keep-last", "2"];
  const goes = [rel("a"), rel("b"), orphan, between].map((r) => `${FILES_BASE}${r}`);
  const stays = [
    ...fixtureFiles.map((f) => f.rel),
    rel("c"),
    afterOldestKept,
    young,
  ].map((r) => `${FILES_BASE}${r}`);

  await t.step("dry run: the plan shows the vault's files and bytes, deletes nothing", async () => {
    const r = await runCliJson<PruneDoc>([...args, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.json.points.filter((p) => p.kept).length, 2);
    const files = r.json.delete.groups.find((g) => g.kind === "vault-files");
    assertEquals(files?.objects, 4);
    assertEquals(files?.bytes, 4 * 3000);
    const keys = r.json.delete.groups.find((g) => g.kind === "vault-versions");
    assertEquals(keys, {
      ...keys!,
      name: "rsa_key.pem",
      objects: 1,
    });
    const planned = r.json.delete.keys.filter((k) => k.startsWith(FILES_BASE)).sort();
    assertEquals(planned, [...goes, key1].sort());
    for (const k of stays) assert(!r.json.delete.keys.includes(k), `${k} planned`);
    const note = r.json.notes.find((n) => n.startsWith("vault files:"));
    assertStringIncludes(note ?? "", "the 2 kept point(s) reference 7 bodies");
    assertEquals(await keysUnder(replica), before);

    const text = await runCli(args);
    assertEquals(text.code, 0, text.stderr);
    assertStringIncludes(
      text.stdout,
      "4 objects, 12 KiB: vault files: attachment and send bodies no kept point's database references",
    );
    assertStringIncludes(text.stdout, "1 objects, 32 B: vault files: rsa_key.pem versions older");
  });

  await t.step("--apply deletes exactly those; a second run deletes none of them", async () => {
    const r = await runCliJson<PruneDoc>([...args, "--apply", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const after = await keysUnder(replica);
    for (const k of [...goes, key1]) assert(!after.includes(k), `${k} still there`);
    for (const k of [...stays, key2, key3, config1]) assert(after.includes(k), `${k} deleted`);
    const again = await runCliJson<PruneDoc>([...args, "--apply", "--json"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.json.delete.keys.filter((k) => k.startsWith(FILES_BASE)), []);
  });

  await t.step("every kept point restores with every body its database references", async () => {
    for (const i of [2, 3]) {
      const out = tmp.join(`point-${i}.sqlite3`);
      const r = await runCli([
        "restore",
        dbPath,
        "--config",
        config,
        "-o",
        out,
        "--timestamp",
        pointTime(i).toISOString(),
      ]);
      assertEquals(r.code, 0, r.stderr);
      const referenced = readReferencedFiles(out).files.map((f) => `${FILES_BASE}${f.rel}`);
      assertEquals(referenced.includes(`${FILES_BASE}${rel("c")}`), i === 2);
      const present = await keysUnder(replica);
      for (const k of referenced) assert(present.includes(k), `point ${i} lacks ${k}`);
    }
  });
});
