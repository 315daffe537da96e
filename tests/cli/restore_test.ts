/**
 * `litewarden restore` CLI behaviour on real Litestream v0.3.13 replicas: safe writes (refusal,
 * --force, --if-db-not-exists), missing backups, damaged replicas (exit 5 naming the object),
 * Litestream's single-dash flags, the --json summary, temp files and SIGINT.
 */
import { fileURLToPath } from "node:url";
import { run } from "../../src/cli/program.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import {
  type FileReplicaObject,
  fileReplicaObjects,
  fileReplicaUrl,
  litestreamRestore,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import { startS3Server } from "../support/s3_server.ts";
import {
  createWalDatabase,
  readUserTables,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import { resealWal, walCommitFieldOffset } from "../support/wal_craft.ts";
import { storedFrame } from "../formats/ltx_writer.ts";
import { lz4DecodeFrames } from "../../src/formats/lz4.ts";
import { concat } from "../formats/helpers.ts";

// The progress line is drawn only on a terminal; keep test output silent either way.
Deno.env.set("NO_PROGRESS", "1");

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TEMP_FILE = /\.litewarden-.*\.tmp$/;

// ---------------------------------------------------------------------------------------------
// Helpers

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the litewarden CLI in-process, capturing what it prints. */
async function litewarden(...args: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    isTTY: false,
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

function expectExit(res: Captured, code: number, what: string): void {
  assertEquals(
    res.code,
    code,
    `${what}: expected exit ${code}, got ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`,
  );
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function entries(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** No litewarden temp file is left in `dir`. */
async function assertNoTempFiles(dir: string): Promise<void> {
  const left = (await entries(dir)).filter((n) => TEMP_FILE.test(n));
  assertEquals(left, [], `temp files left in ${dir}`);
}

/** Copies a replica directory, keeping mtimes (they are v0.3 object times). */
async function copyReplica(from: string, to: string): Promise<void> {
  const res = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  assert(res.success, new TextDecoder().decode(res.stderr));
}

function iso(t: Date): string {
  return t.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The whole WAL of an index: its segments decompressed and concatenated. */
async function indexWal(dir: string, segments: FileReplicaObject[]): Promise<Uint8Array> {
  return concat(
    await Promise.all(
      segments.map(async (s) => lz4DecodeFrames(await Deno.readFile(`${dir}/${s.key}`))),
    ),
  );
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * Sets every object's mtime to whole seconds, 10 s apart from `base`, in write order (snapshot,
 * then WAL segments by index and offset); returns the objects with their new times.
 */
async function retime(dir: string, base: Date): Promise<FileReplicaObject[]> {
  const objects = await fileReplicaObjects(dir);
  const ordered = [...objects].sort((a, b) =>
    (a.kind === b.kind ? 0 : a.kind === "snapshot" ? -1 : 1) || a.index - b.index ||
    (a.offset ?? 0) - (b.offset ?? 0)
  );
  for (const [i, o] of ordered.entries()) {
    o.mtime = new Date(base.getTime() + i * 10_000);
    await Deno.utime(`${dir}/${o.key}`, o.mtime, o.mtime);
  }
  return ordered;
}

// ---------------------------------------------------------------------------------------------
// A small real replica shared by the cases: one generation, WAL indexes 0–2, several segments each

interface Fixture {
  dir: string;
  dbPath: string;
  replica: string;
  url: string;
  config: string;
  generation: string;
  /** Snapshot first, then segments in (index, offset) order, with their (re-set) times. */
  objects: FileReplicaObject[];
}

async function buildFixture(dir: string): Promise<Fixture> {
  const dbPath = `${dir}/app.db`;
  const replica = `${dir}/replica`;
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  const config = await writeLitestreamConfig(dir, [{
    path: dbPath,
    minCheckpointPageCount: 100,
    replicas: [{ path: replica }],
  }]);
  try {
    const rep = await startReplicate(config);
    try {
      for (let round = 0; round < 3; round++) {
        writeSmallTransactions(db, 10, { label: `a${round}` });
        await rep.waitForSync();
      }
      writeBigTransaction(db, { minPages: 150, label: "big1" }); // → index 1
      await rep.waitForSync();
      for (let round = 0; round < 2; round++) {
        writeSmallTransactions(db, 10, { label: `b${round}` });
        await rep.waitForSync();
      }
      writeBigTransaction(db, { minPages: 150, label: "big2" }); // → index 2
      await rep.waitForSync();
      writeSmallTransactions(db, 5, { label: "c" });
      await rep.waitForSync();
    } finally {
      await rep.stop();
    }
  } finally {
    db.close();
  }
  const objects = await retime(replica, new Date(Date.UTC(2026, 0, 1)));
  const generation = objects[0].generation;
  assertEquals(new Set(objects.map((o) => o.generation)).size, 1);
  assertEquals(objects[0].kind, "snapshot");
  assertEquals([...new Set(objects.filter((o) => o.kind === "wal").map((o) => o.index))], [
    0,
    1,
    2,
  ]);
  return { dir, dbPath, replica, url: fileReplicaUrl(replica), config, generation, objects };
}

// ---------------------------------------------------------------------------------------------

Deno.test("restore CLI on a file replica", async (t) => {
  await using tmp = await makeTempDir();
  const fx = await buildFixture(tmp.path);
  let caseNo = 0;
  /** A fresh, empty directory for one case. */
  const caseDir = async (): Promise<string> => {
    const d = tmp.join(`case-${++caseNo}`);
    await Deno.mkdir(d);
    return d;
  };
  /** A copy of the fixture replica that a case may damage. */
  const replicaCopy = async (): Promise<{ dir: string; url: string; out: string }> => {
    const d = await caseDir();
    await copyReplica(fx.replica, `${d}/replica`);
    return { dir: `${d}/replica`, url: fileReplicaUrl(`${d}/replica`), out: `${d}/out` };
  };
  const segmentsOf = (index: number) =>
    fx.objects.filter((o) => o.kind === "wal" && o.index === index);
  const last = fx.objects[fx.objects.length - 1];

  await t.step("latest restore: exit 0, equals the source, --json summary", async () => {
    const d = await caseDir();
    const res = await litewarden("restore", fx.url, "-o", `${d}/db.sqlite`, "--json");
    expectExit(res, 0, "restore");
    assertEquals(await entries(d), ["db.sqlite"]);
    assertEquals(readUserTables(`${d}/db.sqlite`), readUserTables(fx.dbPath));
    const summary = JSON.parse(res.stdout);
    assertEquals(summary.ok, true);
    assertEquals(summary.output, `${d}/db.sqlite`);
    assertEquals(summary.format, "v0.3");
    assertEquals(summary.restorePoint.format, "v0.3");
    assertEquals(summary.restorePoint.generation, fx.generation);
    assertEquals(summary.restorePoint.index, 2);
    assertEquals(summary.restorePoint.time, last.mtime.toISOString());
    // One snapshot and every WAL segment; downloaded = their stored (compressed) sizes.
    assertEquals(summary.files, fx.objects.length);
    assertEquals(summary.bytesDownloaded, fx.objects.reduce((n, o) => n + o.size, 0));
    assertEquals(summary.bytesWritten, (await Deno.stat(`${d}/db.sqlite`)).size);
    assertEquals(summary.pageSize, 4096);
    assertEquals(typeof summary.seconds, "number");
    assert(summary.seconds >= 0 && summary.seconds < 60, `seconds: ${summary.seconds}`);
  });

  await t.step("--json with --index: point, files and bytes of that index only", async () => {
    const d = await caseDir();
    const res = await litewarden("restore", fx.url, "-o", `${d}/db`, "--index", "1", "--json");
    expectExit(res, 0, "restore --index 1");
    const used = fx.objects.filter((o) => o.kind === "snapshot" || o.index <= 1);
    const summary = JSON.parse(res.stdout);
    assertEquals(summary.restorePoint.index, 1);
    assertEquals(summary.restorePoint.time, segmentsOf(1).at(-1)!.mtime.toISOString());
    assertEquals(summary.files, used.length);
    assertEquals(summary.bytesDownloaded, used.reduce((n, o) => n + o.size, 0));
    assertEquals(summary.bytesWritten, (await Deno.stat(`${d}/db`)).size);
  });

  await t.step("existing output without --force: exit 9, file untouched", async () => {
    const d = await caseDir();
    await Deno.writeTextFile(`${d}/db`, "precious");
    const res = await litewarden("restore", fx.url, "-o", `${d}/db`);
    expectExit(res, 9, "restore over an existing file");
    assertStringIncludes(res.stderr, `${d}/db already exists`);
    assertStringIncludes(res.stderr, "--force");
    assertEquals(await Deno.readTextFile(`${d}/db`), "precious");
    assertEquals(await entries(d), ["db"]);
  });

  await t.step("--if-db-not-exists with an existing output: exit 0, untouched", async () => {
    const d = await caseDir();
    await Deno.writeTextFile(`${d}/db`, "precious");
    for (const flag of ["--if-db-not-exists", "-if-db-not-exists"]) {
      const res = await litewarden("restore", flag, fx.url, "-o", `${d}/db`);
      expectExit(res, 0, flag);
      assertStringIncludes(res.stderr, "already exists");
      assertEquals(await Deno.readTextFile(`${d}/db`), "precious");
    }
    assertEquals(await entries(d), ["db"]);
    // And without an existing output it restores.
    const res = await litewarden("restore", "-if-db-not-exists", fx.url, "-o", `${d}/new`);
    expectExit(res, 0, "-if-db-not-exists, no output yet");
    assertEquals(readUserTables(`${d}/new`), readUserTables(fx.dbPath));
  });

  await t.step("--force replaces the output and removes stale -wal/-shm", async () => {
    const d = await caseDir();
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.writeTextFile(`${d}/db${suffix}`, `stale${suffix}`);
    }
    const res = await litewarden("restore", fx.url, "-o", `${d}/db`, "--force");
    expectExit(res, 0, "restore --force");
    assertEquals(await entries(d), ["db"]);
    assertEquals(readUserTables(`${d}/db`), readUserTables(fx.dbPath));
  });

  await t.step("a stale -wal beside a missing output: exit 9, nothing written", async () => {
    const d = await caseDir();
    await Deno.writeTextFile(`${d}/db-wal`, "stale wal");
    const res = await litewarden("restore", fx.url, "-o", `${d}/db`);
    expectExit(res, 9, "restore beside a stale -wal");
    assertStringIncludes(res.stderr, "-wal");
    assertEquals(await entries(d), ["db-wal"]);
    assertEquals(await Deno.readTextFile(`${d}/db-wal`), "stale wal");
  });

  await t.step("replica URL without -o: exit 2", async () => {
    const res = await litewarden("restore", fx.url);
    expectExit(res, 2, "URL without -o");
    assertStringIncludes(res.stderr, "-o");
  });

  await t.step("--index with --timestamp: exit 2", async () => {
    const d = await caseDir();
    const res = await litewarden(
      "restore",
      fx.url,
      "-o",
      `${d}/db`,
      "--index",
      "1",
      "--timestamp",
      iso(last.mtime),
    );
    expectExit(res, 2, "--index with --timestamp");
    assertEquals(await entries(d), []);
  });

  await t.step(
    "--index past the last index: exit 3 giving the window, nothing written",
    async () => {
      const d = await caseDir();
      const res = await litewarden("restore", fx.url, "-o", `${d}/db`, "--index", "9");
      expectExit(res, 3, "--index 9 of a generation ending at index 2");
      assertStringIncludes(res.stderr, "no restore point for index 9");
      assertStringIncludes(res.stderr, `generation ${fx.generation} ends at index 00000002`);
      assertStringIncludes(res.stderr, `--generation ${fx.generation} --index 00000002`);
      assertStringIncludes(res.stderr, "restorable window: ");
      assertEquals(res.stderr.trim().split("\n").length, 1);
      assertEquals(await entries(d), []);
    },
  );

  await t.step("an unknown --generation: exit 3 listing the generations there", async () => {
    const d = await caseDir();
    const res = await litewarden(
      "restore",
      fx.url,
      "-o",
      `${d}/db`,
      "--generation",
      "ffffffffffffffff",
    );
    expectExit(res, 3, "unknown generation");
    assertStringIncludes(res.stderr, "generation ffffffffffffffff not found");
    assertStringIncludes(
      res.stderr,
      `the generations there: ${fx.generation} (restorable ${iso(fx.objects[0].mtime)} … ${
        iso(last.mtime)
      })`,
    );
    assertEquals(await entries(d), []);
  });

  await t.step("empty replica: exit 3; with --if-replica-exists exit 0 naming it", async () => {
    const d = await caseDir();
    await Deno.mkdir(`${d}/empty`);
    const url = fileReplicaUrl(`${d}/empty`);
    const plain = await litewarden("restore", url, "-o", `${d}/db`);
    expectExit(plain, 3, "empty replica");
    assertStringIncludes(plain.stderr, `${d}/empty`);
    for (const flag of ["--if-replica-exists", "-if-replica-exists"]) {
      const res = await litewarden("restore", flag, url, "-o", `${d}/db`);
      expectExit(res, 0, `empty replica ${flag}`);
      assertMatch(res.stderr, new RegExp(`no backup found at \\S*${d}/empty`));
    }
    assertEquals(await entries(d), ["empty"]);
  });

  await t.step("--timestamp outside the window: exit 3 naming the window", async () => {
    const d = await caseDir();
    const window = `${iso(fx.objects[0].mtime)} … ${iso(last.mtime)}`;
    for (const at of ["2025-06-01T00:00:00Z", iso(new Date(last.mtime.getTime() + 1000))]) {
      const res = await litewarden("restore", fx.url, "-o", `${d}/db`, "--timestamp", at);
      expectExit(res, 3, `--timestamp ${at}`);
      assertStringIncludes(res.stderr, window);
    }
    assertEquals(await entries(d), []);
  });

  await t.step("Litestream's single-dash flags; byte-identical to litestream", async () => {
    const d = await caseDir();
    const lw = await litewarden(
      "restore",
      "-config",
      fx.config,
      "-index",
      "1",
      "-o",
      `${d}/lw.db`,
      fx.dbPath,
    );
    expectExit(lw, 0, "-config -index -o");
    const ls = await litestreamRestore([
      "-config",
      fx.config,
      "-index",
      "1",
      "-o",
      `${d}/ls.db`,
      fx.dbPath,
    ]);
    assertEquals(ls.code, 0, ls.stderr);
    assertEquals(await sha256(`${d}/lw.db`), await sha256(`${d}/ls.db`));
    // Index 1 is not the newest: the restored database lacks index 2's rows.
    const rows = readUserTables(`${d}/lw.db`).items.length;
    assert(rows < readUserTables(fx.dbPath).items.length, `index 1 restored ${rows} rows`);

    // Config form: the output defaults to the database path, which exists.
    const skip = await litewarden("restore", "-config", fx.config, "-if-db-not-exists", fx.dbPath);
    expectExit(skip, 0, "-config -if-db-not-exists on the live path");
    const refuse = await litewarden("restore", "-config", fx.config, fx.dbPath);
    expectExit(refuse, 9, "-config onto the live path");
  });

  await t.step("a WAL segment missing from the middle of an index: exit 5", async () => {
    const r = await replicaCopy();
    const segs = segmentsOf(0);
    assert(segs.length >= 3, `index 0 has ${segs.length} segments`);
    const gone = segs[1];
    await Deno.remove(`${r.dir}/${gone.key}`);
    const res = await litewarden("restore", r.url, "-o", r.out);
    expectExit(res, 5, "missing middle segment");
    // Names the index and the offset where the missing segment starts.
    assertStringIncludes(res.stderr, `WAL index ${hex8(0)}`);
    assertStringIncludes(res.stderr, `offset ${gone.offset}`);
    assertStringIncludes(res.stderr, "missing");
    assert(!(await exists(r.out)));
    await assertNoTempFiles(`${r.dir}/..`);
  });

  await t.step(
    "a whole WAL index deleted: exit 5 naming it and the newest good point",
    async () => {
      const r = await replicaCopy();
      for (const s of segmentsOf(1)) await Deno.remove(`${r.dir}/${s.key}`);
      const res = await litewarden("restore", r.url, "-o", r.out);
      expectExit(res, 5, "missing index");
      assertStringIncludes(res.stderr, `${fx.generation}/${hex8(1)}`);
      // The newest point still restorable is the end of index 0.
      assertStringIncludes(res.stderr, iso(segmentsOf(0).at(-1)!.mtime));
      assertStringIncludes(res.stderr, `--index 0`);
      assert(!(await exists(r.out)));
      await assertNoTempFiles(`${r.dir}/..`);
      // …and that point does restore.
      const ok = await litewarden("restore", r.url, "-o", r.out, "--index", "0");
      expectExit(ok, 0, "restore of the newest good point");
    },
  );

  await t.step("a byte flipped inside the compressed snapshot: exit 5 naming it", async () => {
    const r = await replicaCopy();
    const snap = fx.objects[0];
    const path = `${r.dir}/${snap.key}`;
    const bytes = await Deno.readFile(path);
    const at = Math.floor(bytes.length / 2);
    bytes[at] ^= 0x5a;
    await Deno.writeFile(path, bytes);
    await Deno.utime(path, snap.mtime, snap.mtime);
    const res = await litewarden("restore", r.url, "-o", r.out);
    expectExit(res, 5, "flipped snapshot byte");
    assertStringIncludes(res.stderr, snap.key);
    assert(!(await exists(r.out)));
    await assertNoTempFiles(`${r.dir}/..`);
  });

  await t.step("a truncated WAL segment: exit 5 naming it", async () => {
    const r = await replicaCopy();
    const seg = segmentsOf(1).at(-1)!;
    const path = `${r.dir}/${seg.key}`;
    const bytes = await Deno.readFile(path);
    const kept = Math.floor(bytes.length / 2);
    await Deno.writeFile(path, bytes.subarray(0, kept));
    await Deno.utime(path, seg.mtime, seg.mtime);
    const res = await litewarden("restore", r.url, "-o", r.out);
    expectExit(res, 5, "truncated segment");
    assertStringIncludes(res.stderr, seg.key);
    // Where the object ends: after the `kept` bytes that are left of it.
    assertStringIncludes(res.stderr, `ends at byte ${kept} `);
    assert(!(await exists(r.out)));
    await assertNoTempFiles(`${r.dir}/..`);
  });

  await t.step(
    "a corrupt segment names the newest intact point and its flags; --accept-loss restores it",
    async () => {
      const r = await replicaCopy();
      const seg = segmentsOf(2).at(-1)!;
      const path = `${r.dir}/${seg.key}`;
      const bytes = await Deno.readFile(path);
      await Deno.writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
      await Deno.utime(path, seg.mtime, seg.mtime);
      const intact = segmentsOf(1).at(-1)!.mtime; // index 1 ends with its last segment
      const newest = fx.objects.at(-1)!.mtime;
      const res = await litewarden("restore", r.url, "-o", r.out);
      expectExit(res, 5, "corrupt segment");
      assertStringIncludes(
        res.stderr,
        `the newest point that does not need it is ${
          iso(intact)
        } (generation ${fx.generation} index 00000001), --generation ${fx.generation} --index 00000001: restore it with those flags, losing `,
      );
      assertStringIncludes(res.stderr, `(${iso(intact)} to ${iso(newest)}), or pass --accept-loss`);
      assert(res.stderr.endsWith("--accept-loss"), res.stderr);
      assert(!(await exists(r.out)));

      // The flags it names restore that point; --accept-loss goes there by itself.
      const named = await litewarden(
        "restore",
        r.url,
        "-o",
        `${r.out}-named`,
        "--generation",
        fx.generation,
        "--index",
        "1",
      );
      expectExit(named, 0, "the named flags");
      const accepted = await litewarden("restore", r.url, "-o", r.out, "--accept-loss", "--json");
      expectExit(accepted, 0, "--accept-loss");
      assertMatch(
        accepted.stderr,
        new RegExp(
          `^litewarden: WARNING: .*${seg.key}.*restoring the newest point that does not need it instead.*giving up .* of changes.*loss accepted$`,
        ),
      );
      assertEquals(JSON.parse(accepted.stdout).restorePoint.index, 1);
      // Byte for byte what Litestream restores for index 1 of the intact replica.
      const ls = await litestreamRestore([
        "-config",
        fx.config,
        "-index",
        "1",
        "-o",
        `${r.out}-litestream`,
        fx.dbPath,
      ]);
      assertEquals(ls.code, 0, ls.stderr);
      assertEquals(await sha256(r.out), await sha256(`${r.out}-litestream`));
      assertEquals(await sha256(`${r.out}-named`), await sha256(`${r.out}-litestream`));
      await assertNoTempFiles(`${r.dir}/..`);
    },
  );

  await t.step("a corrupt snapshot of the only generation: no point avoids it", async () => {
    const r = await replicaCopy();
    const snap = fx.objects[0];
    const path = `${r.dir}/${snap.key}`;
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 3)));
    await Deno.utime(path, snap.mtime, snap.mtime);
    const res = await litewarden("restore", r.url, "-o", r.out, "--accept-loss");
    expectExit(res, 5, "corrupt snapshot");
    assertStringIncludes(res.stderr, "no point of this replica can be restored without it");
    assert(!(await exists(r.out)));
  });

  await t.step(
    "a flipped page byte in a well-formed LZ4 segment: exit 5 with the reader's reason",
    async () => {
      const r = await replicaCopy();
      const seg = segmentsOf(0)[1];
      assert(seg.offset! > 0, "a segment after the first");
      const path = `${r.dir}/${seg.key}`;
      const frames = lz4DecodeFrames(await Deno.readFile(path));
      frames[24 + 1000] ^= 0x20; // inside the page of the segment's first frame
      await Deno.writeFile(path, storedFrame(frames));
      await Deno.utime(path, seg.mtime, seg.mtime);
      const res = await litewarden("restore", r.url, "-o", r.out);
      expectExit(res, 5, "flipped page byte");
      assertStringIncludes(res.stderr, seg.key);
      assertMatch(res.stderr, /frame \d+ \(page \d+\): checksum mismatch: stored 0x[0-9a-f]{8}/);
      assertStringIncludes(res.stderr, `(WAL offset ${seg.offset})`);
      assert(!(await exists(r.out)));
      await assertNoTempFiles(`${r.dir}/..`);
    },
  );

  await t.step(
    "a checksum-valid commit frame claiming 4294967295 pages: exit 5, as litestream",
    async () => {
      const r = await replicaCopy();
      const segs = segmentsOf(2);
      const wal = await indexWal(r.dir, segs);
      const pageSize = new DataView(wal.buffer).getUint32(8);
      const frames = (wal.length - 32) / (24 + pageSize);
      // The last frame of an index is a commit frame (every segment ends on one).
      new DataView(wal.buffer).setUint32(walCommitFieldOffset(frames - 1, pageSize), 0xffffffff);
      resealWal(wal);
      const seg = segs.at(-1)!;
      await Deno.writeFile(`${r.dir}/${seg.key}`, storedFrame(wal.subarray(seg.offset!)));
      await Deno.utime(`${r.dir}/${seg.key}`, seg.mtime, seg.mtime);
      // The oracle refuses it too: SQLite's checkpoint calls it corruption.
      const oracle = await litestreamRestore(["-o", `${r.out}-litestream`, r.url]);
      assert(oracle.code !== 0, "litestream restored the crafted WAL");
      assertStringIncludes(oracle.stderr + oracle.stdout, "malformed");
      const res = await litewarden("restore", r.url, "-o", r.out);
      expectExit(res, 5, "commit frame claiming 4294967295 pages");
      assertStringIncludes(res.stderr, seg.key);
      assertStringIncludes(res.stderr, "4294967295 pages");
      assert(!(await exists(r.out)));
      await assertNoTempFiles(`${r.dir}/..`);
    },
  );

  await t.step(
    "a checksum-valid frame naming page 2147483647: skipped like SQLite does",
    async () => {
      const r = await replicaCopy();
      const segs = segmentsOf(2);
      const seg = segs.at(-1)!;
      const wal = await indexWal(r.dir, segs);
      const pageSize = new DataView(wal.buffer).getUint32(8);
      const frames = (wal.length - 32) / (24 + pageSize);
      // The commit frame keeps its database size; its page lies far past it, so a checkpoint
      // skips it (LITESTREAM-FORMATS §1.2 step 3), and writing it first would make an 8 TiB file.
      new DataView(wal.buffer).setUint32(
        walCommitFieldOffset(frames - 1, pageSize) - 4,
        0x7fffffff,
      );
      await Deno.writeFile(
        `${r.dir}/${seg.key}`,
        storedFrame(resealWal(wal).subarray(seg.offset!)),
      );
      await Deno.utime(`${r.dir}/${seg.key}`, seg.mtime, seg.mtime);
      const oracle = await litestreamRestore(["-o", `${r.out}-litestream`, r.url]);
      assertEquals(oracle.code, 0, oracle.stderr);
      // Under a 1 GiB file-size limit: a write at the claimed page's offset would be refused.
      const res = await new Deno.Command("bash", {
        args: [
          "-c",
          `trap '' XFSZ; ulimit -f 1048576 && exec "$0" run -A main.ts restore "$1" -o "$2"`,
          Deno.execPath(),
          r.url,
          r.out,
        ],
        cwd: REPO_ROOT,
        env: { NO_PROGRESS: "1" },
        stdin: "null",
      }).output();
      assertEquals(res.code, 0, new TextDecoder().decode(res.stderr));
      assertEquals(await sha256(r.out), await sha256(`${r.out}-litestream`));
    },
  );

  await t.step("an older index's first segment copied in as the next index: exit 5", async () => {
    // Index 1's first segment (older salts) and index 2's (the same salts) as a new index 3.
    for (const from of [1, 2]) {
      const r = await replicaCopy();
      const src = segmentsOf(from)[0];
      assertEquals(src.offset, 0);
      const key = src.key.replace(
        /[0-9a-f]{8}_[0-9a-f]{8}\.wal\.lz4$/,
        `${hex8(3)}_${hex8(0)}.wal.lz4`,
      );
      await Deno.copyFile(`${r.dir}/${src.key}`, `${r.dir}/${key}`);
      const at = new Date(last.mtime.getTime() + 10_000);
      await Deno.utime(`${r.dir}/${key}`, at, at);
      const res = await litewarden("restore", r.url, "-o", r.out);
      expectExit(res, 5, `index ${from}'s first segment as index 3`);
      assertStringIncludes(res.stderr, key);
      assertStringIncludes(res.stderr, "does not continue the previous index");
      assert(!(await exists(r.out)));
      await assertNoTempFiles(`${r.dir}/..`);
    }
  });
});

Deno.test("restore CLI: empty S3 prefix → exit 3, or 0 with --if-replica-exists", async () => {
  await using tmp = await makeTempDir();
  const server = await startS3Server();
  const saved = {
    id: Deno.env.get("AWS_ACCESS_KEY_ID"),
    secret: Deno.env.get("AWS_SECRET_ACCESS_KEY"),
  };
  try {
    await server.createBucket("empty-bucket");
    Deno.env.set("AWS_ACCESS_KEY_ID", server.credentials.accessKeyId);
    Deno.env.set("AWS_SECRET_ACCESS_KEY", server.credentials.secretAccessKey);
    const url = `s3://empty-bucket/no/backup?endpoint=${server.endpoint}&force-path-style=true`;
    const plain = await litewarden("restore", url, "-o", tmp.join("db"));
    expectExit(plain, 3, "empty S3 prefix");
    assertStringIncludes(plain.stderr, "s3://empty-bucket/no/backup");
    const res = await litewarden("restore", "--if-replica-exists", url, "-o", tmp.join("db"));
    expectExit(res, 0, "empty S3 prefix --if-replica-exists");
    assertStringIncludes(res.stderr, "no backup found at s3://empty-bucket/no/backup");
    assertEquals(await entries(tmp.path), []);
  } finally {
    for (
      const [k, v] of [["AWS_ACCESS_KEY_ID", saved.id], ["AWS_SECRET_ACCESS_KEY", saved.secret]]
    ) {
      if (v === undefined) Deno.env.delete(k!);
      else Deno.env.set(k!, v);
    }
    await server.stop();
  }
});

Deno.test("restore CLI: SIGINT during a restore → exit 130, no temp file", async () => {
  await using tmp = await makeTempDir();
  // A replica that takes a while to restore: ~50 MB of WAL in eight indexes.
  const dbPath = tmp.join("big.db");
  const replica = tmp.join("replica");
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  try {
    const config = await writeLitestreamConfig(tmp.path, [{
      path: dbPath,
      minCheckpointPageCount: 1000,
      replicas: [{ path: replica }],
    }]);
    const rep = await startReplicate(config);
    try {
      for (let i = 0; i < 8; i++) {
        writeBigTransaction(db, { minPages: 1500, label: `b${i}` });
        await rep.waitForSync({ timeoutMs: 30_000 });
      }
    } finally {
      await rep.stop();
    }
  } finally {
    db.close();
  }

  const outDir = tmp.join("out");
  await Deno.mkdir(outDir);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "restore",
      fileReplicaUrl(replica),
      "-o",
      `${outDir}/db`,
      "--parallelism",
      "1",
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    // Wait until the restore is under way (its temp file exists), then interrupt it.
    const deadline = Date.now() + 30_000;
    while (!(await entries(outDir)).some((n) => TEMP_FILE.test(n))) {
      assert(Date.now() < deadline, "the restore never created its temp file");
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGINT");
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await output;
    throw err;
  }
  const res = await output;
  const stderr = new TextDecoder().decode(res.stderr);
  assertEquals(res.signal, null, "litewarden should handle SIGINT itself");
  assertEquals(res.code, 130, stderr);
  assertEquals(await entries(outDir), [], "nothing may be left in the output directory");
});
