/**
 * Azure Blob Storage replicas written by real Litestream v0.3.13 into azurite (`type: abs` with
 * `endpoint: http://127.0.0.1:PORT/ACCOUNT`): `litewarden restore` must equal `litestream restore`
 * byte for byte, latest, at every `-index` of both generations and at every object's time; the
 * URL form with the key from `$LITESTREAM_AZURE_ACCOUNT_KEY` reads the same replica, and `verify`
 * passes on it and fails (exit 5) once a WAL segment is cut short.
 *
 * Litestream v0.3.13 takes an abs object's time from the blob's Creation-Time (whole seconds),
 * and so does litewarden; `-timestamp` targets are those listed times.
 */
import { AbsStorage } from "../../src/storage/abs.ts";
import { readAll } from "../../src/storage/storage.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { absTargetFor, startAzurite } from "../support/azurite_server.ts";
import { runCli } from "../support/cli.ts";
import { litestreamRestore, startReplicate, writeLitestreamConfig } from "../support/litestream.ts";
import {
  checkpoint,
  createWalDatabase,
  readUserTables,
  shrinkWithVacuum,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import { uploadTree } from "../support/s3_server.ts";

Deno.env.set("NO_PROGRESS", "1");

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Waits until the clock is in the next whole second: Creation-Time has whole seconds, so each
 * phase's objects get their own time and `-timestamp` can tell the phases apart.
 */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
}

Deno.test("v0.3 abs replica in azurite: litewarden restore is byte-identical to litestream restore", async (t) => {
  await using tmp = await makeTempDir();
  const server = await startAzurite();
  const container = "litestream";
  const prefix = "vw/db";
  const saved = Deno.env.get("LITESTREAM_AZURE_ACCOUNT_KEY");
  const dbPath = tmp.join("app.db");
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  try {
    await server.createContainer(container);
    const config = await writeLitestreamConfig(tmp.path, [{
      path: dbPath,
      minCheckpointPageCount: 60,
      replicas: [{
        type: "abs",
        bucket: container,
        path: prefix,
        endpoint: server.endpoint,
        extra: { "account-name": server.accountName, "account-key": server.accountKey },
      }],
    }]);

    // Generation 1: several WAL indexes (big transactions cross min-checkpoint-page-count),
    // and a VACUUM that shrinks the file.
    let rep = await startReplicate(config);
    try {
      writeSmallTransactions(db, 12, { label: "g1a" });
      await rep.waitForSync();
      await nextSecond();
      writeBigTransaction(db, { minPages: 80, label: "g1big" });
      await rep.waitForSync();
      await nextSecond();
      writeSmallTransactions(db, 6, { label: "g1b" });
      writeBigTransaction(db, { minPages: 80, label: "g1big2" });
      await rep.waitForSync();
      await nextSecond();
      shrinkWithVacuum(db, { keepRows: 10 });
      await rep.waitForSync();
      await nextSecond();
    } finally {
      await rep.stop();
    }
    // Generation 2: the application truncates the WAL while Litestream is stopped.
    assertEquals(checkpoint(db, "TRUNCATE").busy, 0);
    rep = await startReplicate(config);
    try {
      writeSmallTransactions(db, 8, { label: "g2a" });
      await rep.waitForSync();
      await nextSecond();
      writeBigTransaction(db, { minPages: 80, label: "g2big" });
      writeSmallTransactions(db, 3, { label: "g2b" });
      await rep.waitForSync();
      await nextSecond();
    } finally {
      await rep.stop();
    }

    const storage = new AbsStorage(absTargetFor(server, container, prefix));
    const objects = await Array.fromAsync(storage.list(""));
    const byGen = new Map<string, Set<number>>();
    for (const o of objects) {
      const m = /^generations\/([0-9a-f]{16})\/(?:wal|snapshots)\/([0-9a-f]{8})/.exec(o.key);
      assert(m, `unexpected object ${o.key}`);
      byGen.set(m[1], (byGen.get(m[1]) ?? new Set()).add(parseInt(m[2], 16)));
    }
    assertEquals(byGen.size, 2, `generations: ${[...byGen.keys()]}`);
    assert([...byGen.values()][0].size >= 3 || [...byGen.values()][1].size >= 3);

    const outDir = tmp.join("out");
    await Deno.mkdir(outDir);
    let n = 0;
    let refusals = 0;
    /**
     * Restores with both tools (litewarden from `lwSource`): both write the same bytes, or both
     * refuse (Litestream: "no matching backups found"; litewarden: exit 3, no file).
     */
    const same = async (label: string, flags: string[], lwSource = dbPath, lwFlags = flags) => {
      const ls = `${outDir}/${++n}.litestream.db`;
      const lw = `${outDir}/${n}.litewarden.db`;
      const oracle = await litestreamRestore(["-config", config, ...flags, "-o", ls, dbPath]);
      const lwArgs = lwSource === dbPath ? ["--config", config] : [];
      const mine = await runCli(["restore", lwSource, ...lwArgs, ...lwFlags, "-o", lw]);
      assert(!mine.stderr.includes(server.accountKey) && !mine.stdout.includes(server.accountKey));
      if (oracle.code !== 0 && /no matching backups found/.test(oracle.stderr + oracle.stdout)) {
        assertEquals(
          mine.code,
          3,
          `${label}: litestream found nothing; litewarden: ${mine.stderr}`,
        );
        assert(!(await Deno.lstat(lw).then(() => true, () => false)), `${label}: ${lw} written`);
        refusals++;
        return;
      }
      assertEquals(
        oracle.code,
        0,
        `${label}: litestream restore: ${oracle.stderr}${oracle.stdout}`,
      );
      assertEquals(mine.code, 0, `${label}: litewarden restore: ${mine.stderr}`);
      assertEquals(await sha256(lw), await sha256(ls), `${label}: litewarden ≠ litestream`);
    };

    await t.step("latest, by config and by URL with the key from the environment", async () => {
      await same("latest", []);
      Deno.env.set("LITESTREAM_AZURE_ACCOUNT_KEY", server.accountKey);
      const url = `abs://${server.accountName}@${container}/${prefix}?endpoint=${server.endpoint}`;
      await same("latest via URL", [], url, []);
      const out = `${outDir}/latest-check.db`;
      assertEquals((await runCli(["restore", url, "-o", out])).code, 0);
      assertEquals(readUserTables(out), readUserTables(dbPath));
    });

    await t.step("every index of both generations", async () => {
      for (const [gen, indexes] of byGen) {
        for (const index of [...indexes].sort((a, b) => a - b)) {
          const flags = ["-generation", gen, "-index", index.toString(16)];
          const lwFlags = ["--generation", gen, "--index", index.toString(16)];
          await same(`${gen} -index ${index}`, flags, dbPath, lwFlags);
        }
      }
    });

    await t.step("every object's time", async () => {
      const times = [...new Set(objects.map((o) => o.modified.toISOString()))].sort();
      assert(times.length >= 6, `object times: ${times}`);
      for (const time of times) {
        await same(`-timestamp ${time}`, ["-timestamp", time], dbPath, ["--timestamp", time]);
        // Half a second later: between this phase's objects and the next one's.
        const between = new Date(Date.parse(time) + 500).toISOString();
        await same(`-timestamp ${between}`, ["-timestamp", between], dbPath, [
          "--timestamp",
          between,
        ]);
      }
      // Between the generations (after gen 1's last object, before gen 2's first) both refuse.
      assert(refusals >= 1, "no -timestamp fell between the generations");
    });

    await t.step("verify: a clean replica is 0, a corrupt WAL segment is 5", async () => {
      const clean = await runCli(["verify", dbPath, "--config", config, "--json"]);
      assertEquals(clean.code, 0, clean.stdout + clean.stderr);
      assert(!clean.stdout.includes(server.accountKey));
      // The newest WAL segment, cut to half its size, as a failed upload could leave it.
      const last = objects.filter((o) => o.key.includes("/wal/"))
        .sort((a, b) => a.modified.getTime() - b.modified.getTime() || (a.key < b.key ? -1 : 1))
        .pop()!;
      const bytes = await readAll(await storage.get(last.key));
      await storage.put(last.key, bytes.subarray(0, Math.floor(bytes.length / 2)));
      const bad = await runCli(["verify", dbPath, "--config", config, "--json"]);
      assertEquals(bad.code, 5, bad.stdout + bad.stderr);
      assert(bad.stdout.includes(last.key.split("/").pop()!), bad.stdout);
      assert(!bad.stdout.includes(server.accountKey) && !bad.stderr.includes(server.accountKey));
      await storage.put(last.key, bytes);
      assertEquals((await runCli(["verify", dbPath, "--config", config])).code, 0);
    });
  } finally {
    if (saved === undefined) Deno.env.delete("LITESTREAM_AZURE_ACCOUNT_KEY");
    else Deno.env.set("LITESTREAM_AZURE_ACCOUNT_KEY", saved);
    db.close();
    await server.stop();
  }
});

const LTX_FIXTURES = new URL("../fixtures/ltx/", import.meta.url).pathname;

Deno.test("v0.5 LTX replica in azurite (ltx/<level>/ keys): every TXID restores to the state it was written from", async () => {
  await using tmp = await makeTempDir();
  const server = await startAzurite();
  const saved = Deno.env.get("LITESTREAM_AZURE_ACCOUNT_KEY");
  try {
    await server.createContainer("ltx");
    const keys = await uploadTree(
      new AbsStorage(absTargetFor(server, "ltx", "vw/db")),
      `${LTX_FIXTURES}ltx-v0.5.2-block/checksummed`,
    );
    assert(keys.some((k) => k.startsWith("ltx/9/")), `no snapshot level in ${keys}`);
    Deno.env.set("LITESTREAM_AZURE_ACCOUNT_KEY", server.accountKey);
    const url = `abs://${server.accountName}@ltx/vw/db?endpoint=${server.endpoint}`;
    for (let txid = 1; txid <= 4; txid++) {
      const out = tmp.join(`txid-${txid}.db`);
      const r = await runCli([
        "restore",
        url,
        "-o",
        out,
        "--txid",
        txid.toString(16).padStart(16, "0"),
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(
        await Deno.readFile(out),
        await Deno.readFile(`${LTX_FIXTURES}states/S${txid}.db`),
        `TXID ${txid}`,
      );
    }
    const latest = tmp.join("latest.db");
    assertEquals((await runCli(["restore", url, "-o", latest])).code, 0);
    assertEquals(await Deno.readFile(latest), await Deno.readFile(`${LTX_FIXTURES}states/S4.db`));
    const verified = await runCli(["verify", url]);
    assertEquals(verified.code, 0, verified.stdout + verified.stderr);
  } finally {
    if (saved === undefined) Deno.env.delete("LITESTREAM_AZURE_ACCOUNT_KEY");
    else Deno.env.set("LITESTREAM_AZURE_ACCOUNT_KEY", saved);
    await server.stop();
  }
});
