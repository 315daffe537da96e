import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import {
  fileReplicaObjects,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import { startS3Server } from "../support/s3_server.ts";
import {
  checkpoint,
  createWalDatabase,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { s3TargetFor } from "../support/s3_server.ts";

const FIXTURES = new URL("../fixtures/ltx/", import.meta.url).pathname;
const TREES = [
  "ltx-v0.5.1-frame/checksummed",
  "ltx-v0.5.2-block/checksummed",
  "ltx-v0.5.2-block/nochecksum",
];

interface ListDoc {
  ok: boolean;
  replicas: {
    formats: string[];
    restoreFrom: string | null;
    objects: { total: number; ignored: number };
    generations: {
      id: string;
      current: boolean;
      snapshots: number;
      walSegments: number;
      firstIndex: number;
      lastIndex: number;
      problems: string[];
    }[];
    levels: { level: number; files: number; minTxid: string; maxTxid: string; bytes: number }[];
    newest: {
      format: string;
      generation: string | null;
      index: number | null;
      txid: string | null;
      time: string;
    } | null;
  }[];
  newest: { format: string; txid: string | null; index: number | null; time: string } | null;
}

for (const tree of TREES) {
  Deno.test(`list reads the LTX fixture tree ${tree} from headers alone`, async () => {
    const { code, json } = await runCliJson<ListDoc>([
      "list",
      `file://${FIXTURES}${tree}`,
      "--json",
    ]);
    assertEquals(code, 0);
    const r = json.replicas[0];
    assertEquals(r.formats, ["v0.5"]);
    assertEquals(
      r.levels.map((l) => [l.level, l.files, l.minTxid, l.maxTxid]),
      [
        [0, 4, "0000000000000001", "0000000000000004"],
        [1, 1, "0000000000000002", "0000000000000004"],
        [2, 1, "0000000000000001", "0000000000000004"],
        [9, 1, "0000000000000001", "0000000000000004"],
      ],
    );
    // Times come from the LTX headers (the fixture files' mtimes are checkout times):
    // the level-9 snapshot is stamped 1735689600000 + 5 min.
    assertEquals(json.newest?.txid, "0000000000000004");
    assertEquals(json.newest?.time, new Date(1735689600000 + 5 * 60_000).toISOString());
  });
}

Deno.test("list text ends with the newest restorable point and its age", async () => {
  const { code, stdout } = await runCli(["list", `file://${FIXTURES}ltx-v0.5.2-block/nochecksum`]);
  assertEquals(code, 0);
  const last = stdout.trim().split("\n").at(-1)!;
  assertStringIncludes(
    last,
    "Newest restorable point: 2025-01-01T00:05:00Z (TXID 0000000000000004)",
  );
  assert(/ old$/.test(last), last);
});

Deno.test("list on S3 reads v0.5 keys in the hex-level scheme (<prefix>/0009/…)", async () => {
  const server = await startS3Server();
  try {
    await server.createBucket("ltx");
    const storage = new S3Storage(s3TargetFor(server, "ltx", "app/db"));
    const root = `${FIXTURES}ltx-v0.5.2-block/nochecksum/ltx`;
    for (const level of Deno.readDirSync(root)) {
      for (const f of Deno.readDirSync(`${root}/${level.name}`)) {
        const hexLevel = Number(level.name).toString(16).padStart(4, "0");
        await storage.put(
          `${hexLevel}/${f.name}`,
          await Deno.readFile(`${root}/${level.name}/${f.name}`),
        );
      }
    }
    // An unrelated object under the prefix is ignored and counted.
    await storage.put("notes.txt", new TextEncoder().encode("hello"));
    Deno.env.set("AWS_ACCESS_KEY_ID", server.credentials.accessKeyId);
    Deno.env.set("AWS_SECRET_ACCESS_KEY", server.credentials.secretAccessKey);
    const url = `s3://ltx/app/db?endpoint=${server.endpoint}&force-path-style=true`;
    const { code, json } = await runCliJson<ListDoc>(["list", url, "--json"]);
    assertEquals(code, 0);
    assertEquals(json.replicas[0].levels.map((l) => l.level), [0, 1, 2, 9]);
    assertEquals(json.replicas[0].objects, { total: 8, ignored: 1 });
    assertEquals(json.newest?.txid, "0000000000000004");
    // An empty prefix names the bucket and prefix searched (exit 3).
    const empty = await runCli([
      "list",
      `s3://ltx/wrong/prefix?endpoint=${server.endpoint}&force-path-style=true`,
    ]);
    assertEquals(empty.code, 3);
    assertStringIncludes(empty.stderr, "s3://ltx/wrong/prefix");
    assertEquals(empty.stderr.trim().split("\n").length, 1);
  } finally {
    Deno.env.delete("AWS_ACCESS_KEY_ID");
    Deno.env.delete("AWS_SECRET_ACCESS_KEY");
    await server.stop();
  }
});

/** Two generations written by real Litestream v0.3.13 while the test writes. */
async function twoGenerations(dir: string, replica: Record<string, unknown>) {
  const dbPath = `${dir}/app.db`;
  const config = await writeLitestreamConfig(dir, [{
    path: dbPath,
    minCheckpointPageCount: 50,
    replicas: [replica],
  }]);
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  let rep = await startReplicate(config);
  try {
    writeSmallTransactions(db, 20);
    writeBigTransaction(db, { minPages: 60 }); // crosses min-checkpoint-page-count: new index
    await rep.waitForSync();
    writeSmallTransactions(db, 5);
    await rep.waitForSync();
    await rep.stop();
    // An application checkpoint while Litestream is stopped starts a new generation.
    checkpoint(db, "TRUNCATE");
    rep = await startReplicate(config);
    writeSmallTransactions(db, 10);
    await rep.waitForSync();
  } finally {
    await rep.stop();
    db.close();
  }
  return { dbPath, config };
}

Deno.test("list on a real Litestream v0.3.13 file replica with two generations", async () => {
  await using dir = await makeTempDir();
  const replicaDir = `${dir.path}/replica`;
  const { dbPath, config } = await twoGenerations(dir.path, { path: replicaDir });
  const objects = await fileReplicaObjects(replicaDir);
  const gens = [...new Set(objects.map((o) => o.generation))];
  assertEquals(gens.length, 2);
  const { code, json } = await runCliJson<ListDoc>(["list", dbPath, "--config", config, "--json"]);
  assertEquals(code, 0);
  const r = json.replicas[0];
  assertEquals(r.formats, ["v0.3"]);
  assertEquals(r.objects.ignored, 0);
  assertEquals(r.generations.map((g) => g.id), gens.sort());
  for (const g of r.generations) {
    const mine = objects.filter((o) => o.generation === g.id);
    assertEquals(g.snapshots, mine.filter((o) => o.kind === "snapshot").length);
    assertEquals(g.walSegments, mine.filter((o) => o.kind === "wal").length);
    assertEquals(g.lastIndex, Math.max(...mine.map((o) => o.index)));
    assertEquals(g.problems, []);
  }
  // The current generation is the one with the newest object; the newest point is its last index.
  const newestObj = objects.reduce((a, b) => (b.mtime > a.mtime ? b : a));
  const current = r.generations.find((g) => g.current)!;
  assertEquals(current.id, newestObj.generation);
  assertEquals(json.newest?.index, current.lastIndex);
  assertEquals(json.newest?.time, newestObj.mtime.toISOString());
  // The first generation spans more than one WAL index (the big transaction forced a checkpoint).
  const older = r.generations.find((g) => !g.current)!;
  assert(older.lastIndex >= 1, `expected several WAL indexes, got ${older.lastIndex}`);
});

Deno.test("list on a real Litestream v0.3.13 S3 replica with two generations", async () => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  try {
    await server.createBucket("backups");
    const { dbPath, config } = await twoGenerations(dir.path, {
      type: "s3",
      bucket: "backups",
      path: "vw/db",
      endpoint: server.endpoint,
      forcePathStyle: true,
      accessKeyId: server.credentials.accessKeyId,
      secretAccessKey: server.credentials.secretAccessKey,
    });
    const { code, json, stdout } = await runCliJson<ListDoc>([
      "list",
      dbPath,
      "--config",
      config,
      "--json",
    ]);
    assertEquals(code, 0, stdout);
    const r = json.replicas[0];
    assertEquals(r.generations.length, 2);
    assertEquals(r.generations.filter((g) => g.current).length, 1);
    assert(r.generations.every((g) => g.snapshots >= 1 && g.walSegments >= 1));
    assertEquals(json.newest?.format, "v0.3");
    // The secret from the config never reaches the output.
    assert(!stdout.includes(server.credentials.secretAccessKey));
  } finally {
    await server.stop();
  }
});

Deno.test("list: both formats under one prefix are listed and the newer one is named", async () => {
  await using dir = await makeTempDir();
  const sample = new URL("../../samples/vaultwarden-replica/", import.meta.url).pathname;
  await copyTree(sample, dir.path);
  await copyTree(`${FIXTURES}ltx-v0.5.2-block/nochecksum`, dir.path);
  const { code, json, stdout } = await runCliJson<ListDoc>([
    "list",
    `file://${dir.path}`,
    "--json",
  ]);
  assertEquals(code, 0, stdout);
  const r = json.replicas[0];
  assertEquals(r.formats, ["v0.3", "v0.5"]);
  // The v0.3 sample's objects are newer (checkout mtimes) than the LTX headers (2025).
  assertEquals(r.restoreFrom, "v0.3");
  const text = await runCli(["list", `file://${dir.path}`]);
  assertStringIncludes(text.stdout, "Litestream v0.5.7+ restores from v0.3");
});

Deno.test("list: bad input gives one line and the documented exit code", async () => {
  await using dir = await makeTempDir();
  const cases: [string[], number, string][] = [
    [["list", `file://${dir.path}/nothing-here`], 3, `${dir.path}/nothing-here`],
    [["list", "/data/db.sqlite3", "--config", `${dir.path}/missing.yml`], 2, "missing.yml"],
    [["list", "gcs://bucket/db"], 2, "s3://bucket/db?endpoint=https://storage.googleapis.com"],
    [["list", "--bogus-flag"], 2, "unknown option"],
  ];
  await Deno.writeTextFile(`${dir.path}/bad.yml`, "dbs:\n  - path: /a\n   replicas: [\n");
  cases.push([["list", "--config", `${dir.path}/bad.yml`], 2, "line"]);
  await Deno.writeTextFile(
    `${dir.path}/two.yml`,
    "dbs:\n  - path: /a.db\n    replicas: [{path: /r1}]\n  - path: /b.db\n    replicas: [{path: /r2}]\n",
  );
  cases.push([["list", "/c.db", "--config", `${dir.path}/two.yml`], 2, "/a.db, /b.db"]);
  await Deno.mkdir(`${dir.path}/junk`);
  await Deno.writeTextFile(`${dir.path}/junk/readme.txt`, "not a replica");
  cases.push([["list", `file://${dir.path}/junk`], 3, "none is a Litestream replica file"]);
  cases.push([
    ["list", "s3://bucket/db?endpoint=http://127.0.0.1:9&force-path-style=true"],
    4,
    "127.0.0.1:9",
  ]);
  Deno.env.set("AWS_ACCESS_KEY_ID", "test-key-id");
  Deno.env.set("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed");
  try {
    for (const [args, want, part] of cases) {
      const r = await runCli(args);
      assertEquals(r.code, want, `${args.join(" ")}: ${r.stderr}`);
      assertStringIncludes(r.stderr, part, args.join(" "));
      assert(!r.stderr.includes("    at "), `stack trace for ${args.join(" ")}`);
      assert(!r.stderr.includes("test-secret-never-printed"));
    }
  } finally {
    Deno.env.delete("AWS_ACCESS_KEY_ID");
    Deno.env.delete("AWS_SECRET_ACCESS_KEY");
  }
});

Deno.test("list: an LTX file with a damaged header is named and left out; the rest is listed", async () => {
  await using dir = await makeTempDir();
  await copyTree(`${FIXTURES}ltx-v0.5.2-block/nochecksum`, dir.path);
  const victim = `${dir.path}/ltx/0/0000000000000002-0000000000000002.ltx`;
  const bytes = await Deno.readFile(victim);
  bytes[7] |= 0x10; // an unknown header flag bit (flags are bytes 4–7)
  await Deno.writeFile(victim, bytes);
  const r = await runCli(["list", `file://${dir.path}`]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stdout,
    "! damaged, left out: LTX file ltx/0/0000000000000002-0000000000000002.ltx",
  );
  assertStringIncludes(r.stdout, "unknown bits");
  const j = await runCliJson<ListDoc & { replicas: { damaged: { key: string }[] }[] }>([
    "list",
    `file://${dir.path}`,
    "--json",
  ]);
  assertEquals(j.json.replicas[0].damaged.map((d) => d.key), [
    "ltx/0/0000000000000002-0000000000000002.ltx",
  ]);
  assertEquals(j.json.replicas[0].levels.find((l) => l.level === 0)?.files, 3);
  // Every file damaged: that is damage (exit 5), not "no backup".
  for (const level of Deno.readDirSync(`${dir.path}/ltx`)) {
    for (const f of Deno.readDirSync(`${dir.path}/ltx/${level.name}`)) {
      const p = `${dir.path}/ltx/${level.name}/${f.name}`;
      const b = await Deno.readFile(p);
      b[0] = 0x58; // not "LTX1"
      await Deno.writeFile(p, b);
    }
  }
  const all = await runCli(["list", `file://${dir.path}`]);
  assertEquals(all.code, 5, all.stderr);
  assertStringIncludes(all.stderr, "every LTX file");
});
