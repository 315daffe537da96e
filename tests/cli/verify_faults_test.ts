/**
 * `verify` end to end on replicas written by real Litestream v0.3.13 of real Vaultwarden
 * databases, clean and with one fault injected each, plus LTX trees; asserts the failing check and
 * the exit code an operator (or the container gate) acts on.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import {
  fileReplicaObjects,
  replicateRandomBlobs,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import { openWalDatabase } from "../support/sqlite_writer.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { readAll } from "../../src/storage/storage.ts";

const VW = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;
const LTX = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;

interface VerifyDoc {
  ok: boolean;
  exitCode: number;
  format: string | null;
  restorePoint: { index: number | null; generation: string | null } | null;
  checks: { id: string; status: string; message: string }[];
  app: {
    name: string;
    releases: { min: string; max: string } | null;
    rowCounts: Record<string, number>;
  } | null;
}

const check = (doc: VerifyDoc, id: string) => doc.checks.find((c) => c.id === id);
const failed = (doc: VerifyDoc) => doc.checks.filter((c) => c.status === "fail").map((c) => c.id);

/**
 * Replicates a copy of a Vaultwarden fixture with real Litestream while writing to it, so the
 * replica has a snapshot and several WAL indexes with several segments each.
 */
async function replicateFixture(dir: string, fixture: string): Promise<string> {
  const dbPath = `${dir}/db.sqlite3`;
  await Deno.copyFile(`${VW}${fixture}`, dbPath);
  await Deno.chmod(dbPath, 0o644);
  const replica = `${dir}/replica`;
  const config = await writeLitestreamConfig(dir, [{
    path: dbPath,
    minCheckpointPageCount: 20,
    replicas: [{ path: replica }],
  }]);
  const db = openWalDatabase(dbPath);
  const rep = await startReplicate(config);
  try {
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) {
        db.prepare(
          "UPDATE users SET updated_at = ? WHERE uuid = (SELECT uuid FROM users ORDER BY uuid LIMIT 1 OFFSET ?)",
        ).run(`2026-11-0${round + 1} 10:0${i}:00`, i);
        await rep.waitForSync();
      }
      // Touch every item: more frames than min-checkpoint-page-count, so a new WAL index starts.
      db.prepare("UPDATE ciphers SET updated_at = ?").run(`2026-11-0${round + 1} 11:00:00`);
      await rep.waitForSync();
    }
  } finally {
    await rep.stop();
    db.close();
  }
  return replica;
}

async function verify(url: string, ...extra: string[]) {
  return await runCliJson<VerifyDoc>(["verify", url, "--json", ...extra]);
}

Deno.test("verify: a real Vaultwarden replica, clean and with one fault injected each", async (t) => {
  await using dir = await makeTempDir();
  // verify's temp directories go here, so the test can see that none is left behind.
  const tmpdir = dir.join("tmp");
  await Deno.mkdir(tmpdir);
  const oldTmp = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmpdir);
  try {
    const replica = await replicateFixture(dir.path, "vw-1.37.2-populated.sqlite3");
    const objects = await fileReplicaObjects(replica);
    const wal = objects.filter((o) => o.kind === "wal");
    const indexes = [...new Set(wal.map((o) => o.index))];
    assert(indexes.length >= 3, `expected several WAL indexes, got ${indexes}`);

    await t.step("clean: exit 0, Vaultwarden 1.37.0 – 1.37.2, row counts", async () => {
      const r = await verify(`file://${replica}`);
      assertEquals(r.code, 0, r.stdout);
      assertEquals(r.json.ok, true);
      assertEquals(r.json.format, "v0.3");
      for (
        const id of [
          "listing.found",
          "chain.plan",
          "restore.apply",
          "db.integrity",
          "db.foreign-keys",
        ]
      ) {
        assertEquals(check(r.json, id)?.status, "pass", id);
      }
      assertEquals(r.json.app?.name, "vaultwarden");
      assertEquals(r.json.app?.releases, { min: "1.37.0", max: "1.37.2" });
      assertEquals(r.json.app?.rowCounts.users, 6);
      assertEquals(r.json.app?.rowCounts.ciphers, 200);
      assertEquals(r.json.restorePoint?.index, Math.max(...indexes));
      // Nothing secret reaches the report.
      assert(!/@example\.(com|org|net)/.test(r.stdout), "an e-mail address leaked");
      assert(!/"2\.[A-Za-z0-9+/=]{8,}\|/.test(r.stdout), "an encrypted string leaked");
    });

    const faulty = async (name: string, inject: (root: string) => Promise<string>) => {
      const root = dir.join(`fault-${name}`);
      await copyTree(replica, root);
      const what = await inject(root);
      return { root, what, r: await verify(`file://${root}`) };
    };

    await t.step("a WAL segment deleted from the middle of an index: exit 5", async () => {
      const index = indexes.find((i) => wal.filter((o) => o.index === i).length >= 3)!;
      assert(index !== undefined, "no index with 3 segments");
      const { r, what } = await faulty("middle-segment", async (root) => {
        const seg = wal.filter((o) => o.index === index)[1];
        await Deno.remove(`${root}/${seg.key}`);
        return seg.key;
      });
      assertEquals(r.code, 5, r.stdout);
      assertEquals(failed(r.json), ["restore.apply"]);
      assertStringIncludes(check(r.json, "restore.apply")!.message, "segment is missing");
      assert(what.length > 0);
    });

    await t.step(
      "a whole WAL index deleted: exit 5 naming the index and what still restores",
      async () => {
        const middle = indexes[1];
        const { r } = await faulty("whole-index", async (root) => {
          for (const o of wal.filter((o) => o.index === middle)) {
            await Deno.remove(`${root}/${o.key}`);
          }
          return String(middle);
        });
        assertEquals(r.code, 5, r.stdout);
        const plan = check(r.json, "chain.plan")!;
        assertEquals(plan.status, "fail");
        assertStringIncludes(plan.message, `missing WAL index`);
        assertStringIncludes(plan.message, middle.toString(16).padStart(8, "0"));
        assertStringIncludes(plan.message, "newest point still restorable");
      },
    );

    await t.step("a byte flipped inside the compressed snapshot: exit 5 naming it", async () => {
      const snap = objects.find((o) => o.kind === "snapshot")!;
      const { r } = await faulty("snapshot-byte", async (root) => {
        const bytes = await Deno.readFile(`${root}/${snap.key}`);
        bytes[Math.floor(bytes.length / 2)] ^= 0x5a;
        await Deno.writeFile(`${root}/${snap.key}`, bytes);
        return snap.key;
      });
      assertEquals(r.code, 5, r.stdout);
      assertStringIncludes(check(r.json, "restore.apply")!.message, snap.key);
    });

    await t.step("a truncated WAL segment: exit 5", async () => {
      const seg = wal.reduce((a, b) => (b.size > a.size ? b : a));
      const { r } = await faulty("truncated-segment", async (root) => {
        const bytes = await Deno.readFile(`${root}/${seg.key}`);
        await Deno.writeFile(`${root}/${seg.key}`, bytes.subarray(0, Math.floor(bytes.length / 2)));
        return seg.key;
      });
      assertEquals(r.code, 5, r.stdout);
      assertStringIncludes(check(r.json, "restore.apply")!.message, seg.key);
    });

    await t.step("the newest point older than --max-age: exit 8", async () => {
      const { root } = await faulty("stale", async (root) => {
        const old = new Date(Date.now() - 3 * 3_600_000);
        for (const o of objects) await Deno.utime(`${root}/${o.key}`, old, old);
        return "";
      });
      const r = await verify(`file://${root}`, "--max-age", "1h");
      assertEquals(r.code, 8, r.stdout);
      assertEquals(failed(r.json), ["freshness"]);
      const fresh = await verify(`file://${root}`, "--max-age", "4h");
      assertEquals(fresh.code, 0);
    });

    await t.step("an empty directory: exit 3", async () => {
      await Deno.mkdir(dir.join("empty"));
      const r = await verify(`file://${dir.join("empty")}`);
      assertEquals(r.code, 3);
      assertEquals(failed(r.json), ["listing.found"]);
    });

    await t.step("no verify temp directory is left behind", () => {
      assertEquals([...Deno.readDirSync(tmpdir)].map((e) => e.name), []);
    });
  } finally {
    if (oldTmp === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", oldTmp);
  }
});

Deno.test("verify: replicas of damaged Vaultwarden databases fail the database or app layer", async () => {
  const cases: [string, number, string][] = [
    ["vw-1.37.2-populated-corrupt-page.sqlite3", 6, "db.integrity"],
    ["vw-1.37.2-populated-orphan-cipher.sqlite3", 6, "db.foreign-keys"],
    ["vw-1.37.2-populated-missing-table.sqlite3", 7, "app.schema"],
  ];
  for (const [fixture, code, id] of cases) {
    await using dir = await makeTempDir();
    const dbPath = dir.join("db.sqlite3");
    await Deno.copyFile(`${VW}${fixture}`, dbPath);
    await Deno.chmod(dbPath, 0o644);
    const replica = dir.join("replica");
    const config = await writeLitestreamConfig(dir.path, [{
      path: dbPath,
      replicas: [{ path: replica }],
    }]);
    const rep = await startReplicate(config);
    await rep.waitForSync();
    await rep.stop();
    const r = await verify(`file://${replica}`);
    assertEquals(r.code, code, `${fixture}: ${r.stdout}`);
    assertEquals(check(r.json, id)?.status, "fail", `${fixture}: ${id}`);
    // The replica itself is intact.
    assertEquals(check(r.json, "restore.apply")?.status, "pass", fixture);
  }
});

Deno.test("verify: LTX trees — clean, a flipped byte, a file missing from a level", async () => {
  await using dir = await makeTempDir();
  const clean = await verify(`file://${LTX}`, "--app", "none");
  assertEquals(clean.code, 0, clean.stdout);
  assertEquals(clean.json.format, "v0.5");
  assertEquals(check(clean.json, "chain.checksums")?.status, "skip");

  const flipped = dir.join("flipped");
  await copyTree(LTX, flipped);
  const victim = `${flipped}/ltx/9/0000000000000001-0000000000000004.ltx`;
  const bytes = await Deno.readFile(victim);
  bytes[150] ^= 0x40;
  await Deno.writeFile(victim, bytes);
  const bad = await verify(`file://${flipped}`, "--app", "none");
  assertEquals(bad.code, 5, bad.stdout);
  assertStringIncludes(
    check(bad.json, "restore.apply")!.message,
    "ltx/9/0000000000000001-0000000000000004.ltx",
  );

  // A file missing from L0 while the snapshot still covers the latest point: the latest restore
  // works, so the verdict is ok, but the hole in the level is a warning (TXID 3 is gone).
  const holed = dir.join("holed");
  await copyTree(LTX, holed);
  await Deno.remove(`${holed}/ltx/0/0000000000000003-0000000000000003.ltx`);
  const warned = await verify(`file://${holed}`, "--app", "none");
  assertEquals(warned.code, 0, warned.stdout);
  assertEquals(check(warned.json, "chain.levels")?.status, "warn");

  // Without the snapshot levels the same hole breaks the latest restore: exit 5.
  for (const level of ["1", "2", "9"]) {
    await Deno.remove(`${holed}/ltx/${level}`, { recursive: true });
  }
  const broken = await verify(`file://${holed}`, "--app", "none");
  assertEquals(broken.code, 5, broken.stdout);
  assertEquals(check(broken.json, "chain.plan")?.status, "fail");
});

Deno.test("verify: text report leads with the verdict and one line per check", async () => {
  const r = await runCli(["verify", `file://${LTX}`, "--app", "none"]);
  assertEquals(r.code, 0);
  const lines = r.stdout.split("\n");
  assert(lines[0].startsWith("OK"), lines[0]);
  assertStringIncludes(lines[0], "TXID 0000000000000004");
  assert(lines.some((l) => /^\s+ok\s+restore\.apply\s+/.test(l)), r.stdout);
});

Deno.test("verify: SIGINT during the restore exits 130 and leaves no temp directory", async () => {
  await using dir = await makeTempDir();
  // ~48 MB of incompressible pages: the restore and integrity check take a moment.
  const replica = await replicateRandomBlobs(dir.path, 48);
  const tmpdir = dir.join("tmp");
  await Deno.mkdir(tmpdir);
  const main = new URL("../../main.ts", import.meta.url).pathname;
  let interrupted = false;
  for (let attempt = 0; attempt < 3 && !interrupted; attempt++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "verify", `file://${replica}`, "--app", "none"],
      env: { TMPDIR: tmpdir, NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Signal as soon as its temp directory exists.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if ([...Deno.readDirSync(tmpdir)].some((e) => e.name.startsWith("litewarden-verify-"))) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    try {
      child.kill("SIGINT");
    } catch {
      // Already finished: try again.
    }
    const status = await child.output();
    if (status.code === 130) interrupted = true;
    else assertEquals(status.code, 0, new TextDecoder().decode(status.stderr));
    assertEquals([...Deno.readDirSync(tmpdir)].map((e) => e.name), []);
  }
  assert(interrupted, "verify finished before it could be interrupted, three times");
});

Deno.test("verify: a real Vaultwarden replica on S3, clean and with a corrupted WAL segment", async () => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  const env = {
    AWS_ACCESS_KEY_ID: "verify-test-key",
    AWS_SECRET_ACCESS_KEY: "verify-test-secret-x",
  };
  try {
    await server.createBucket("vault");
    const dbPath = dir.join("db.sqlite3");
    await Deno.copyFile(`${VW}vw-1.37.2-populated.sqlite3`, dbPath);
    await Deno.chmod(dbPath, 0o644);
    const config = await writeLitestreamConfig(dir.path, [{
      path: dbPath,
      replicas: [{
        type: "s3",
        bucket: "vault",
        path: "vw",
        endpoint: server.endpoint,
        forcePathStyle: true,
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      }],
    }]);
    const db = openWalDatabase(dbPath);
    const rep = await startReplicate(config);
    try {
      for (let i = 0; i < 3; i++) {
        db.prepare("UPDATE ciphers SET updated_at = ?").run(`2026-11-0${i + 1} 11:00:00`);
        await rep.waitForSync();
      }
    } finally {
      await rep.stop();
      db.close();
    }
    // Config form: the credentials come from the config and never reach the report.
    const clean = await runCliJson<VerifyDoc>(["verify", dbPath, "--config", config, "--json"]);
    assertEquals(clean.code, 0, clean.stdout);
    assertEquals(clean.json.app?.releases, { min: "1.37.0", max: "1.37.2" });
    assert(!clean.stdout.includes(env.AWS_SECRET_ACCESS_KEY));

    const storage = new S3Storage(s3TargetFor(server, "vault", "vw"));
    let victim = "";
    for await (const o of storage.list("generations/")) if (o.key.includes("/wal/")) victim = o.key;
    const bytes = await readAll(await storage.get(victim));
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    await storage.put(victim, bytes);
    storage.close?.();
    const bad = await runCliJson<VerifyDoc>(["verify", dbPath, "--config", config, "--json"]);
    assertEquals(bad.code, 5, bad.stdout);
    assertStringIncludes(check(bad.json, "restore.apply")!.message, victim);
    assert(!bad.stdout.includes(env.AWS_SECRET_ACCESS_KEY));
  } finally {
    await server.stop();
  }
});

Deno.test("verify --txid / --index / --timestamp prove an older point restores", async () => {
  for (let txid = 1; txid <= 4; txid++) {
    const hex = txid.toString(16).padStart(16, "0");
    const r = await runCliJson<VerifyDoc & { restorePoint: { txid: string } }>([
      "verify",
      `file://${LTX}`,
      "--app",
      "none",
      "--txid",
      hex,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stdout);
    assertEquals(r.json.restorePoint.txid, hex);
  }
  const sample = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
  const byIndex = await verify(`file://${sample}`, "--index", "2");
  assertEquals(byIndex.code, 0, byIndex.stdout);
  assertEquals(byIndex.json.restorePoint?.index, 2);
  const outside = await verify(
    `file://${LTX}`,
    "--app",
    "none",
    "--timestamp",
    "2020-01-01T00:00:00Z",
  );
  assertEquals(outside.code, 3, outside.stdout);
  assertEquals(check(outside.json, "chain.plan")?.status, "fail");
  const misuse = await runCli(["verify", "--file", "x.db", "--txid", "0000000000000001"]);
  assertEquals(misuse.code, 2);
});

Deno.test("verify: the last segment of an index that another index follows is caught by the size check", async () => {
  // Names and offsets cannot show this hole (the next index starts afresh at offset 0); the
  // restored database does: its size disagrees with the page count its header records.
  await using dir = await makeTempDir();
  const sample = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
  const root = dir.join("replica");
  await copyTree(sample, root);
  const segs = (await fileReplicaObjects(root)).filter((o) => o.kind === "wal");
  const last = Math.max(...segs.map((o) => o.index));
  const victim = segs.filter((o) => o.index === last - 1).at(-1)!;
  await Deno.remove(`${root}/${victim.key}`);
  const r = await verify(`file://${root}`);
  assertEquals(r.code, 5, r.stdout);
  assertEquals(failed(r.json), ["file.size"]);
  assertStringIncludes(check(r.json, "file.size")!.message, "missed committed transactions");
  // The intact sample passes the same check.
  assertEquals(check((await verify(`file://${sample}`)).json, "file.size")?.status, "pass");
});
