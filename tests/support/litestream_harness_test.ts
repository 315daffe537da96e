/**
 * Proves the Litestream v0.3.13 harness: real replication into a file replica, WAL indexes,
 * generations, SIGTERM flush, and `litestream restore` as the oracle.
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertMatch, assertRejects } from "./assert.ts";
import {
  type FileReplicaObject,
  fileReplicaObjects,
  fileReplicaUrl,
  listFiles,
  litestreamConfigYaml,
  litestreamPath,
  litestreamRestore,
  parseLitestreamLog,
  runLitestream,
  startReplicate,
  writeLitestreamConfig,
} from "./litestream.ts";
import {
  checkpoint,
  createWalDatabase,
  pageCountOf,
  readUserTables,
  shrinkWithVacuum,
  writeBigTransaction,
  writeSmallTransactions,
} from "./sqlite_writer.ts";
import { makeTempDir, withTempDir } from "./tmp.ts";

const SNAPSHOT_KEY = /^generations\/[0-9a-f]{16}\/snapshots\/[0-9a-f]{8}\.snapshot\.lz4$/;
const WAL_KEY = /^generations\/[0-9a-f]{16}\/wal\/[0-9a-f]{8}_[0-9a-f]{8}\.wal\.lz4$/;

function generations(objects: FileReplicaObject[]): string[] {
  return [...new Set(objects.map((o) => o.generation))];
}

function walIndexes(objects: FileReplicaObject[], generation: string): number[] {
  return [
    ...new Set(
      objects.filter((o) => o.kind === "wal" && o.generation === generation).map((o) => o.index),
    ),
  ];
}

/** Restores `replicaDir` (optionally one generation) with the real binary; returns the db path. */
async function restore(replicaDir: string, out: string, generation?: string): Promise<string> {
  const args = generation ? ["-generation", generation] : [];
  const res = await litestreamRestore([...args, "-o", out, fileReplicaUrl(replicaDir)]);
  assertEquals(res.code, 0, `litestream restore failed:\n${res.stdout}${res.stderr}`);
  return out;
}

Deno.test("litestream binary is v0.3.13", async () => {
  assertMatch(litestreamPath(), /litestream$/);
  const res = await runLitestream(["version"]);
  assertEquals(res.code, 0);
  assertEquals(res.stdout.trim(), "v0.3.13");
});

Deno.test("file replica: WAL indexes, second generation, restore equals source", async () => {
  await using tmp = await makeTempDir();
  const dbPath = tmp.join("app.db");
  const replicaDir = tmp.join("replica");
  const db = createWalDatabase(dbPath, { pageSize: 1024 });
  try {
    const config = await writeLitestreamConfig(tmp.path, [{
      path: dbPath,
      minCheckpointPageCount: 100,
      replicas: [{ path: replicaDir }],
    }]);

    // Generation 1: many small transactions, then one big one that triggers a checkpoint.
    const rep = await startReplicate(config);
    try {
      writeSmallTransactions(db, 40, { label: "small" });
      await rep.waitForSync();
      writeBigTransaction(db, { minPages: 120 });
      writeSmallTransactions(db, 5, { label: "after-checkpoint" });
      await rep.waitForSync();
    } finally {
      await rep.stop();
    }
    const gen1Rows = readUserTables(dbPath);
    assertEquals(gen1Rows.items.length, 165);

    const objects1 = await fileReplicaObjects(replicaDir);
    assertEquals(generations(objects1).length, 1);
    const [gen1] = generations(objects1);
    assertEquals(
      objects1.filter((o) => o.kind === "snapshot").map((o) => o.key),
      [`generations/${gen1}/snapshots/00000000.snapshot.lz4`],
    );
    const indexes = walIndexes(objects1, gen1);
    assert(indexes.length >= 2, `expected ≥ 2 WAL indexes, got ${indexes}`);
    assertEquals(indexes, indexes.map((_, i) => i)); // contiguous from 0
    for (const index of indexes) {
      const first = objects1.find((o) => o.kind === "wal" && o.index === index);
      assertEquals(first?.offset, 0, `index ${index} must start at offset 0`);
    }
    for (const key of await listFiles(replicaDir)) {
      assert(SNAPSHOT_KEY.test(key) || WAL_KEY.test(key), `unexpected replica file ${key}`);
    }
    assertEquals(readUserTables(await restore(replicaDir, tmp.join("out1.db"))), gen1Rows);

    // Generation 2: the application truncates the WAL while Litestream is stopped.
    assertEquals(checkpoint(db, "TRUNCATE").busy, 0);
    const rep2 = await startReplicate(config);
    try {
      writeSmallTransactions(db, 10, { label: "gen2" });
      await rep2.waitForSync();
    } finally {
      await rep2.stop();
    }
    assert(
      parseLitestreamLog(rep2.log()).some((r) => r.msg === "sync: new generation"),
      rep2.log(),
    );
    const objects2 = await fileReplicaObjects(replicaDir);
    assertEquals(generations(objects2).length, 2);
    const gen2 = generations(objects2).find((g) => g !== gen1) ?? "";
    assert(objects2.some((o) => o.generation === gen2 && o.kind === "snapshot"));
    assert(objects2.some((o) => o.generation === gen2 && o.kind === "wal" && o.offset === 0));

    const sourceRows = readUserTables(dbPath);
    assertEquals(sourceRows.items.length, 175);
    assertEquals(readUserTables(await restore(replicaDir, tmp.join("out2.db"))), sourceRows);
    assertEquals(readUserTables(await restore(replicaDir, tmp.join("old.db"), gen1)), gen1Rows);
    const restored = new DatabaseSync(tmp.join("out2.db"), { readOnly: true });
    try {
      assertEquals(restored.prepare("PRAGMA page_size").get()?.page_size, 1024);
    } finally {
      restored.close();
    }
  } finally {
    db.close();
  }
});

Deno.test("VACUUM shrink replicates and restores to the smaller database", async () => {
  await withTempDir(async (dir) => {
    const dbPath = `${dir}/app.db`;
    const replicaDir = `${dir}/replica`;
    const db = createWalDatabase(dbPath);
    try {
      const config = await writeLitestreamConfig(dir, [{
        path: dbPath,
        minCheckpointPageCount: 50,
        replicas: [{ path: replicaDir }],
      }]);
      await using rep = await startReplicate(config);
      writeBigTransaction(db, { minPages: 30 });
      await rep.waitForSync();
      shrinkWithVacuum(db, { keepRows: 3 });
      await rep.waitForSync();
      const out = await restore(replicaDir, `${dir}/out.db`);
      assertEquals(readUserTables(out), readUserTables(dbPath));
      assertEquals(readUserTables(out).items.length, 3);
      const restored = new DatabaseSync(out, { readOnly: true });
      try {
        assertEquals(pageCountOf(restored), pageCountOf(db));
      } finally {
        restored.close();
      }
    } finally {
      db.close();
    }
  });
});

Deno.test("stop() flushes pending WAL; waitForSync works after a restart without writes", async () => {
  await withTempDir(async (dir) => {
    const dbPath = `${dir}/app.db`;
    const replicaDir = `${dir}/replica`;
    const db = createWalDatabase(dbPath);
    try {
      const config = await writeLitestreamConfig(dir, [{
        path: dbPath,
        replicas: [{ name: "local", path: replicaDir }],
      }]);
      const rep = await startReplicate(config);
      try {
        await rep.waitForSync();
        writeSmallTransactions(db, 3, { label: "unsynced" });
      } finally {
        await rep.stop(); // SIGTERM right after the writes, no waitForSync
      }
      const out = await restore(replicaDir, `${dir}/out.db`);
      assertEquals(readUserTables(out), readUserTables(dbPath));

      await using again = await startReplicate(config);
      await again.waitForSync({ timeoutMs: 5000 });
      assertEquals(generations(await fileReplicaObjects(replicaDir)).length, 1);
    } finally {
      db.close();
    }
  });
});

Deno.test("startReplicate rejects a config Litestream refuses, leaving no process", async () => {
  await withTempDir(async (dir) => {
    const config = await writeLitestreamConfig(dir, [{
      path: `${dir}/app.db`,
      replicas: [{ path: `${dir}/a` }, { path: `${dir}/b` }], // both named "file"
    }]);
    await assertRejects(() => startReplicate(config), Error, "duplicate replica name");
  });
});

Deno.test("litestreamConfigYaml writes the v0.3 keys", () => {
  const yaml = litestreamConfigYaml([{
    path: "/data/app.db",
    checkpointInterval: "1m",
    minCheckpointPageCount: 10,
    replicas: [
      { path: "/backups/app", retention: "1h", retentionCheckInterval: 500 },
      {
        type: "s3",
        name: "s3a",
        bucket: "bkt",
        path: "app",
        endpoint: "http://127.0.0.1:9000",
        forcePathStyle: true,
        accessKeyId: "test",
        secretAccessKey: "secret",
        snapshotInterval: "10s",
      },
    ],
  }]);
  for (
    const line of [
      "  - path: /data/app.db",
      "    monitor-interval: 100ms",
      "    checkpoint-interval: 1m",
      "    min-checkpoint-page-count: 10",
      "      - path: /backups/app",
      "        sync-interval: 100ms",
      "        retention: 1h",
      "        retention-check-interval: 500ms",
      "        endpoint: http://127.0.0.1:9000",
      "        force-path-style: true",
      "        access-key-id: test",
      "        secret-access-key: secret",
      "        snapshot-interval: 10s",
    ]
  ) {
    assert(yaml.split("\n").includes(line), `missing ${JSON.stringify(line)} in\n${yaml}`);
  }
  const plain = litestreamConfigYaml([{ path: "db", replicas: [{ path: "r" }] }], {
    testDefaults: false,
  });
  assertEquals(plain, "dbs:\n  - path: db\n    replicas:\n      - path: r\n");
});

Deno.test("parseLitestreamLog reads text and JSON records", () => {
  const recs = parseLitestreamLog(
    'time=2026-01-01T00:00:00Z level=INFO msg="wal segment written" db=/a/b.db replica=file ' +
      "position=0123456789abcdef/00000001:4152 sz=1080\n" +
      '{"time":"t","level":"INFO","msg":"snapshot written","sz":12}\nnot a record\n',
  );
  assertEquals(recs.length, 2);
  assertEquals(recs[0].msg, "wal segment written");
  assertEquals(recs[0].position, "0123456789abcdef/00000001:4152");
  assertEquals(recs[1].sz, "12");
});
