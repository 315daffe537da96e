/**
 * Oracle tests for `litewarden restore` on v0.3 replicas: real Litestream v0.3.13 replicates while
 * the test writes to WAL-mode databases, then `litestream restore` (the oracle) and `litewarden
 * restore` (in-process) restore the same point into separate files, which must be byte-identical.
 *
 * Object times of a v0.3 file replica are file mtimes (LITESTREAM-FORMATS §2.5); after replication
 * the tests set them with `Deno.utime` to whole seconds 10 s apart, in write order, so that
 * `-timestamp` targets hit each object exactly and fall between objects without sleeping.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { DatabaseSync } from "node:sqlite";
import { run } from "../../src/cli/program.ts";
import { assert, assertEquals } from "../support/assert.ts";
import {
  type DbConfig,
  fileReplicaObjects,
  fileReplicaUrl,
  litestreamRestore,
  type RunResult,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import { startS3Server } from "../support/s3_server.ts";
import {
  checkpoint,
  createWalDatabase,
  inTransaction,
  readUserTables,
  shrinkWithVacuum,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";

// The progress line is drawn only on a terminal; keep test output silent either way.
Deno.env.set("NO_PROGRESS", "1");

// ---------------------------------------------------------------------------------------------
// Helpers

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the litewarden CLI in-process, capturing what it prints. */
async function litewarden(args: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    isTTY: false,
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

function hex(n: number): string {
  return n.toString(16);
}

/** The outcome of restoring one point with both tools. */
interface Pair {
  label: string;
  oracle: RunResult;
  lw: Captured;
  oracleOut: string;
  lwOut: string;
}

let restoreSeq = 0;

/**
 * Restores `source` (a replica URL or, with `-config` in `args`, a database path) with
 * `litestream restore` and with `litewarden restore`, same flags, into two new files in `outDir`.
 */
async function restoreBoth(
  outDir: string,
  label: string,
  args: string[],
  source: string,
  lwSource = source,
  lwArgs = args,
): Promise<Pair> {
  const n = ++restoreSeq;
  const oracleOut = `${outDir}/${n}.litestream.db`;
  const lwOut = `${outDir}/${n}.litewarden.db`;
  const oracle = await litestreamRestore([...args, "-o", oracleOut, source]);
  const lw = await litewarden(["restore", ...lwArgs, "-o", lwOut, lwSource]);
  return { label, oracle, lw, oracleOut, lwOut };
}

/** Both tools succeeded and wrote the same bytes; returns the restored file's size. */
async function assertIdentical(p: Pair): Promise<number> {
  assertEquals(
    p.oracle.code,
    0,
    `${p.label}: litestream restore failed:\n${p.oracle.stderr}${p.oracle.stdout}`,
  );
  assertEquals(p.lw.code, 0, `${p.label}: litewarden restore failed:\n${p.lw.stderr}`);
  const [a, b] = await Promise.all([sha256(p.oracleOut), sha256(p.lwOut)]);
  assertEquals(b, a, `${p.label}: litewarden's file differs from litestream's`);
  const size = (await Deno.stat(p.lwOut)).size;
  assert(size > 0, `${p.label}: empty restore`);
  return size;
}

/** Both tools refused; litewarden with exit 3 (no backup for that point) and no file. */
async function assertBothRefuse(p: Pair): Promise<void> {
  assert(p.oracle.code !== 0, `${p.label}: litestream restore unexpectedly succeeded`);
  assertEquals(p.lw.code, 3, `${p.label}: expected exit 3, got ${p.lw.code}:\n${p.lw.stderr}`);
  assert(!(await exists(p.lwOut)), `${p.label}: litewarden left ${p.lwOut}`);
}

/** One object of a file replica after {@link retimeReplica}. */
interface TimedObject {
  generation: string;
  kind: "snapshot" | "wal";
  index: number;
  time: Date;
}

/**
 * Sets the mtime of every v0.3 object of a file replica to whole seconds, 10 s apart, in the order
 * Litestream wrote them: generations by their first write, then each generation's snapshot
 * followed by its WAL segments in (index, offset) order. Returns the objects in that order.
 */
async function retimeReplica(dir: string, base: Date): Promise<TimedObject[]> {
  const objects = await fileReplicaObjects(dir);
  const firstWrite = new Map<string, number>();
  for (const o of objects) {
    const t = o.mtime.getTime();
    firstWrite.set(o.generation, Math.min(firstWrite.get(o.generation) ?? t, t));
  }
  const ordered = [...objects].sort((a, b) =>
    firstWrite.get(a.generation)! - firstWrite.get(b.generation)! ||
    (a.kind === b.kind ? 0 : a.kind === "snapshot" ? -1 : 1) ||
    a.index - b.index || (a.offset ?? 0) - (b.offset ?? 0)
  );
  const out: TimedObject[] = [];
  for (const [i, o] of ordered.entries()) {
    const time = new Date(base.getTime() + i * 10_000);
    await Deno.utime(`${dir}/${o.key}`, time, time);
    out.push({ generation: o.generation, kind: o.kind, index: o.index, time });
  }
  return out;
}

function iso(t: Date): string {
  return t.toISOString().replace(".000Z", "Z");
}

/** Generations in write order, each with its WAL indexes in ascending order. */
function generationsOf(objects: TimedObject[]): { id: string; indexes: number[] }[] {
  const out: { id: string; indexes: number[] }[] = [];
  for (const o of objects) {
    let g = out.find((x) => x.id === o.generation);
    if (!g) out.push(g = { id: o.generation, indexes: [] });
    if (o.kind === "wal" && !g.indexes.includes(o.index)) g.indexes.push(o.index);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// File replicas: page sizes 1024, 4096, 65536 in one replication run

interface Source {
  pageSize: number;
  path: string;
  replica: string;
  db: DatabaseSync;
  /** Frames per WAL index before Litestream checkpoints, and pages of the "big" transaction. */
  minCheckpoint: number;
  bigPages: number;
}

Deno.test("v0.3 file replicas: litewarden restore is byte-identical to litestream restore", async (t) => {
  await using tmp = await makeTempDir();
  const outDir = tmp.join("out");
  await Deno.mkdir(outDir);
  const sources: Source[] = [
    { pageSize: 1024, minCheckpoint: 200, bigPages: 400 },
    { pageSize: 4096, minCheckpoint: 100, bigPages: 200 },
    { pageSize: 65536, minCheckpoint: 40, bigPages: 60 },
  ].map((s) => {
    const path = tmp.join(`app-${s.pageSize}.db`);
    return {
      ...s,
      path,
      replica: tmp.join(`replica-${s.pageSize}`),
      db: createWalDatabase(path, { pageSize: s.pageSize }),
    };
  });
  try {
    const config = await writeLitestreamConfig(
      tmp.path,
      sources.map((s): DbConfig => ({
        path: s.path,
        minCheckpointPageCount: s.minCheckpoint,
        replicas: [{ path: s.replica }],
      })),
    );
    const each = (fn: (s: Source) => void) => sources.forEach(fn);

    // Generation 1.
    const rep = await startReplicate(config);
    try {
      // Many small transactions, synced in three rounds: index 0 gets several segments.
      for (let round = 0; round < 3; round++) {
        each((s) => writeSmallTransactions(s.db, 10, { label: `small${round}` }));
        await rep.waitForSync();
      }
      // One transaction larger than a segment and than the checkpoint threshold: Litestream
      // uploads it, then checkpoints, so index 1 begins.
      each((s) => writeBigTransaction(s.db, { minPages: s.bigPages, label: "big1" }));
      await rep.waitForSync();
      each((s) => writeSmallTransactions(s.db, 10, { label: "idx1" }));
      await rep.waitForSync();
      // Another checkpoint: index 2.
      each((s) => writeBigTransaction(s.db, { minPages: s.bigPages, label: "big2" }));
      await rep.waitForSync();
      // VACUUM shrinks the database within index 2: the restore must truncate the file.
      each((s) => shrinkWithVacuum(s.db, { keepRows: 15 }));
      await rep.waitForSync();
      each((s) => writeSmallTransactions(s.db, 5, { label: "idx2" }));
      each((s) =>
        inTransaction(s.db, () => {
          s.db.exec("UPDATE items SET label = label || '-u' WHERE id % 3 = 0");
          s.db.exec("DELETE FROM items WHERE id % 7 = 0");
        })
      );
      await rep.waitForSync();
    } finally {
      await rep.stop();
    }

    // Generation 2: the application truncates the WAL while Litestream is stopped.
    each((s) => assertEquals(checkpoint(s.db, "TRUNCATE").busy, 0));
    const rep2 = await startReplicate(config);
    try {
      each((s) => writeSmallTransactions(s.db, 8, { label: "gen2a" }));
      await rep2.waitForSync();
      each((s) => writeBigTransaction(s.db, { minPages: s.bigPages, label: "gen2big" }));
      await rep2.waitForSync();
      each((s) => writeSmallTransactions(s.db, 4, { label: "gen2b" }));
      await rep2.waitForSync();
    } finally {
      await rep2.stop();
    }

    for (const s of sources) {
      await t.step(`page size ${s.pageSize}`, async () => {
        const objects = await retimeReplica(s.replica, new Date(Date.UTC(2026, 0, 1)));
        const gens = generationsOf(objects);
        assertEquals(gens.length, 2, `expected two generations, got ${JSON.stringify(gens)}`);
        const [g1, g2] = gens;
        assert(g1.indexes.length >= 3, `gen1 indexes: ${g1.indexes}`);
        assert(g2.indexes.length >= 2, `gen2 indexes: ${g2.indexes}`);
        const segmentsOfIndex0 = objects.filter((o) =>
          o.generation === g1.id && o.kind === "wal" && o.index === 0
        );
        assert(segmentsOfIndex0.length >= 3, "index 0 should hold several segments");
        const url = fileReplicaUrl(s.replica);

        // Latest: identical, and equal to the live database.
        const latest = await restoreBoth(outDir, "latest", [], url);
        await assertIdentical(latest);
        assertEquals(readUserTables(latest.lwOut), readUserTables(s.path));
        const page = new Uint8Array(await Deno.readFile(latest.lwOut)).slice(16, 18);
        assertEquals(page[0] * 256 + page[1], s.pageSize === 65536 ? 1 : s.pageSize);

        // Each index of each generation in turn.
        const sizes: number[] = [];
        for (const index of g1.indexes) {
          const p = await restoreBoth(
            outDir,
            `gen1 -index ${hex(index)}`,
            ["-generation", g1.id, "-index", hex(index)],
            url,
          );
          sizes.push(await assertIdentical(p));
        }
        // The VACUUM in index 2 made the database smaller than it was after index 1.
        assert(sizes[2] < sizes[1], `VACUUM did not shrink: ${sizes}`);
        await assertIdentical(await restoreBoth(outDir, "gen1", ["-generation", g1.id], url));
        for (const index of g2.indexes) {
          await assertIdentical(
            await restoreBoth(outDir, `-index ${hex(index)}`, ["-index", hex(index)], url),
          );
        }

        // Every object time exactly (≤ T includes it), and 5 s after it (between writes).
        const windows = gens.map((g) => {
          const times = objects.filter((o) => o.generation === g.id).map((o) => o.time.getTime());
          return { start: Math.min(...times), end: Math.max(...times) };
        });
        const restoredRows = new Set<string>();
        let refused = 0;
        for (const o of objects) {
          for (const offset of [0, 5000]) {
            const at = new Date(o.time.getTime() + offset);
            const label = `-timestamp ${iso(at)} (${o.kind} ${o.generation}/${hex(o.index)})`;
            const p = await restoreBoth(outDir, label, ["-timestamp", iso(at)], url);
            const inside = windows.some((w) => at.getTime() >= w.start && at.getTime() <= w.end);
            if (inside) {
              await assertIdentical(p);
              restoredRows.add(JSON.stringify(readUserTables(p.lwOut)));
            } else {
              // After a generation's last object and before the next one starts: no backup.
              await assertBothRefuse(p);
              assertStringMatches(p.lw.stderr, /restorable window/);
              refused++;
            }
          }
        }
        assertEquals(refused, 2); // after gen1's last object, after gen2's last object
        assert(restoredRows.size >= 10, `timestamps reached only ${restoredRows.size} states`);
      });
    }
  } finally {
    for (const s of sources) s.db.close();
  }
});

function assertStringMatches(text: string, re: RegExp): void {
  assert(re.test(text), `expected ${re} in:\n${text}`);
}

// ---------------------------------------------------------------------------------------------
// S3 replicas (embedded S3 server), including a multipart snapshot

Deno.test("v0.3 S3 replicas: litewarden restore is byte-identical to litestream restore", async (t) => {
  await using tmp = await makeTempDir();
  const outDir = tmp.join("out");
  await Deno.mkdir(outDir);
  const server = await startS3Server();
  const bucket = "lw-oracle";
  const creds = server.credentials;
  const savedEnv = {
    id: Deno.env.get("AWS_ACCESS_KEY_ID"),
    secret: Deno.env.get("AWS_SECRET_ACCESS_KEY"),
  };
  const smallPath = tmp.join("small.db");
  const bigPath = tmp.join("big.db");
  const small = createWalDatabase(smallPath, { pageSize: 4096 });
  const big = createWalDatabase(bigPath, { pageSize: 4096 });
  const client = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds,
  });
  try {
    await server.createBucket(bucket);
    // ~7 MiB of random (incompressible) blobs, checkpointed into the database file before
    // Litestream starts, so its first snapshot is one LZ4 object over 5 MiB: a multipart upload.
    const insert = big.prepare("INSERT INTO items (label, body) VALUES (?, ?)");
    inTransaction(big, () => {
      for (let i = 0; i < 112; i++) {
        insert.run(`blob-${i}`, crypto.getRandomValues(new Uint8Array(65536)));
      }
    });
    assertEquals(checkpoint(big, "TRUNCATE").busy, 0);

    const s3Replica = (prefix: string) => ({
      type: "s3" as const,
      bucket,
      path: prefix,
      region: "us-east-1",
      endpoint: server.endpoint,
      forcePathStyle: true,
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
    });
    const config = await writeLitestreamConfig(tmp.path, [
      { path: smallPath, minCheckpointPageCount: 100, replicas: [s3Replica("small")] },
      { path: bigPath, minCheckpointPageCount: 100, replicas: [s3Replica("nested/big")] },
    ]);
    const rep = await startReplicate(config);
    try {
      for (let round = 0; round < 2; round++) {
        writeSmallTransactions(small, 10, { label: `s${round}` });
        writeSmallTransactions(big, 3, { label: `s${round}` });
        await rep.waitForSync();
      }
      writeBigTransaction(small, { minPages: 150 });
      await rep.waitForSync();
      writeSmallTransactions(small, 10, { label: "after" });
      writeBigTransaction(small, { minPages: 150, label: "big2" });
      await rep.waitForSync();
      shrinkWithVacuum(small, { keepRows: 12 });
      writeSmallTransactions(big, 3, { label: "late" });
      await rep.waitForSync();
    } finally {
      await rep.stop();
    }

    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const objects = (listed.Contents ?? []).map((o) => ({
      key: o.Key ?? "",
      size: o.Size ?? 0,
      time: o.LastModified ?? new Date(0),
      etag: o.ETag ?? "",
    }));
    assert(!listed.IsTruncated);
    const bigSnapshot = objects.find((o) => /^nested\/big\/.*\.snapshot\.lz4$/.test(o.key));
    assert(bigSnapshot, `no snapshot for big.db in ${objects.map((o) => o.key)}`);
    assert(bigSnapshot.size > 5 * 1024 * 1024, `snapshot is only ${bigSnapshot.size} bytes`);
    // A multipart upload's ETag is "<md5 of part md5s>-<part count>".
    assert(/-\d+"?$/.test(bigSnapshot.etag), `snapshot ETag ${bigSnapshot.etag}: not multipart`);
    const smallIndexes = [
      ...new Set(
        objects.flatMap((o) => {
          const m = /^small\/generations\/[0-9a-f]{16}\/wal\/([0-9a-f]{8})_/.exec(o.key);
          return m ? [parseInt(m[1], 16)] : [];
        }),
      ),
    ].sort((a, b) => a - b);
    assert(smallIndexes.length >= 3, `small.db indexes: ${smallIndexes}`);

    Deno.env.set("AWS_ACCESS_KEY_ID", creds.accessKeyId);
    Deno.env.set("AWS_SECRET_ACCESS_KEY", creds.secretAccessKey);
    const urlFor = (prefix: string) =>
      `s3://${bucket}/${prefix}?endpoint=${server.endpoint}&force-path-style=true`;
    // Real Litestream v0.3 ignores ?endpoint= in URLs, so the oracle always reads the config.
    const cfg = ["-config", config];

    await t.step("multipart snapshot (over 5 MiB)", async () => {
      const viaUrl = await restoreBoth(
        outDir,
        "big via URL",
        cfg,
        bigPath,
        urlFor("nested/big"),
        [],
      );
      await assertIdentical(viaUrl);
      assertEquals(readUserTables(viaUrl.lwOut), readUserTables(bigPath));
      await assertIdentical(await restoreBoth(outDir, "big via config", cfg, bigPath));
    });

    await t.step("indexes, latest and timestamps", async () => {
      const url = urlFor("small");
      const latest = await restoreBoth(outDir, "latest", cfg, smallPath, url, []);
      await assertIdentical(latest);
      assertEquals(readUserTables(latest.lwOut), readUserTables(smallPath));
      await assertIdentical(await restoreBoth(outDir, "latest via config", cfg, smallPath));
      const sizes: number[] = [];
      for (const index of smallIndexes) {
        const args = ["-index", hex(index)];
        sizes.push(
          await assertIdentical(
            await restoreBoth(
              outDir,
              `-index ${hex(index)}`,
              [...cfg, ...args],
              smallPath,
              url,
              args,
            ),
          ),
        );
      }
      assert(sizes[2] < sizes[1], `VACUUM did not shrink: ${sizes}`);
      // Object times are LastModified values; restore at each one the listing reports.
      for (const o of objects.filter((x) => x.key.startsWith("small/"))) {
        const args = ["-timestamp", o.time.toISOString()];
        await assertIdentical(
          await restoreBoth(outDir, `-timestamp ${o.key}`, [...cfg, ...args], smallPath, url, args),
        );
      }
    });
  } finally {
    restoreEnv("AWS_ACCESS_KEY_ID", savedEnv.id);
    restoreEnv("AWS_SECRET_ACCESS_KEY", savedEnv.secret);
    client.destroy();
    small.close();
    big.close();
    await server.stop();
  }
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
}
