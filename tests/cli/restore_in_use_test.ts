/**
 * `restore --force` never replaces a database another process has open: a real
 * `litestream replicate` on it, or another process holding it with SQLite. Exit 9, files untouched.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { startReplicate, writeLitestreamConfig } from "../support/litestream.ts";
import {
  createWalDatabase,
  holdOpenInChild,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";

async function snapshotFiles(paths: string[]): Promise<(string | null)[]> {
  return await Promise.all(paths.map(async (p) => {
    try {
      const bytes = await Deno.readFile(p);
      return `${bytes.length}:${bytes.reduce((h, b) => (h * 31 + b) >>> 0, 7)}`;
    } catch {
      return null;
    }
  }));
}

Deno.test("restore --force onto a database in use: exit 9, nothing replaced", async (t) => {
  await using dir = await makeTempDir();
  const db = dir.join("live.db");
  const conn = createWalDatabase(db);
  writeSmallTransactions(conn, 20);
  conn.close();
  const config = await writeLitestreamConfig(dir.path, [{
    path: db,
    replicas: [{ path: dir.join("replica") }],
  }]);
  const files = [db, `${db}-wal`, `${db}-shm`];

  await t.step("litestream replicate has it open", async () => {
    await using rep = await startReplicate(config);
    await rep.waitForSync();
    const before = await snapshotFiles(files);
    const r = await runCli(["restore", db, "--config", config, "--force"]);
    assertEquals(r.code, 9, r.stderr);
    assertMatch(
      r.stderr,
      new RegExp(`^litewarden: ${db} is in use by litestream \\(pid ${rep.pid}\\)`),
    );
    assertStringIncludes(r.stderr, "--force does not override this");
    assertEquals(await snapshotFiles(files), before, "the database and its -wal/-shm untouched");
    assert(!rep.log().includes("cannot verify wal state"), rep.log());
  });

  await t.step("another process holds it with SQLite", async () => {
    await using holder = await holdOpenInChild(db, "items");
    const r = await runCli(["restore", db, "--config", config, "--force"]);
    assertEquals(r.code, 9, r.stderr);
    assertStringIncludes(r.stderr, `(pid ${holder.pid})`);
  });

  await t.step("nobody has it open: --force replaces it", async () => {
    const r = await runCli(["restore", db, "--config", config, "--force"]);
    assertEquals(r.code, 0, r.stderr);
  });
});
