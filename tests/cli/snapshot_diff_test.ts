import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { withEnv } from "../support/env.ts";
import { makeTempDir } from "../support/tmp.ts";

const TREE = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;
const STATES = new URL("../fixtures/ltx/states/", import.meta.url).pathname;

interface DiffDoc {
  from: { txid: string };
  to: { txid: string };
  schema: unknown[];
  tables: {
    table: string;
    key: string[];
    rowsBefore: number;
    rowsAfter: number;
    added: number;
    removed: number;
    changed: number;
    removedKeys: string[];
  }[];
}

/** The truth, computed directly from the fixture states with SQL. */
function expected(before: string, after: string) {
  const db = new DatabaseSync(`${STATES}${before}`, { readOnly: true });
  db.exec(`ATTACH 'file:${STATES}${after}?mode=ro' AS b`);
  const n = (sql: string) => Number((db.prepare(sql).get() as { n: number }).n);
  const out = {
    before: n("SELECT count(*) n FROM main.t"),
    after: n("SELECT count(*) n FROM b.t"),
    added: n("SELECT count(*) n FROM b.t WHERE id NOT IN (SELECT id FROM main.t)"),
    removed: n("SELECT count(*) n FROM main.t WHERE id NOT IN (SELECT id FROM b.t)"),
    changed: n(
      "SELECT count(*) n FROM (SELECT * FROM b.t EXCEPT SELECT * FROM main.t) WHERE id IN (SELECT id FROM main.t)",
    ),
  };
  db.close();
  return out;
}

Deno.test("snapshot-diff counts added, removed and changed rows between two TXIDs", async () => {
  for (const [from, to] of [[1, 4], [1, 2], [2, 3]]) {
    const r = await runCliJson<DiffDoc>([
      "snapshot-diff",
      `file://${TREE}`,
      "--from",
      `txid:${from.toString(16).padStart(16, "0")}`,
      "--to",
      `txid:${to.toString(16).padStart(16, "0")}`,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const want = expected(`S${from}.db`, `S${to}.db`);
    const t = r.json.tables.find((x) => x.table === "t");
    if (want.added + want.removed + want.changed === 0) {
      assertEquals(t, undefined);
      continue;
    }
    assert(t, `table t in ${JSON.stringify(r.json.tables)}`);
    assertEquals(
      [t.rowsBefore, t.rowsAfter, t.added, t.removed, t.changed],
      [want.before, want.after, want.added, want.removed, want.changed],
      `S${from} → S${to}`,
    );
    assertEquals(t.key, ["id"]);
  }
});

Deno.test("snapshot-diff of a point with itself finds nothing, and prints no row content", async () => {
  const same = await runCli(["snapshot-diff", `file://${TREE}`, "--from", "latest"]);
  assertEquals(same.code, 0, same.stderr);
  assertStringIncludes(same.stdout, "No differences");
  const text = await runCli([
    "snapshot-diff",
    `file://${TREE}`,
    "--from",
    "txid:0000000000000001",
  ]);
  assertEquals(text.code, 0);
  // Column values of S1 (other than the integer key) never appear in the report.
  const db = new DatabaseSync(`${STATES}S1.db`, { readOnly: true });
  const cols = db.prepare("SELECT * FROM t LIMIT 5").all() as Record<string, unknown>[];
  db.close();
  for (const row of cols) {
    for (const [k, v] of Object.entries(row)) {
      if (k === "id" || typeof v !== "string" || v.length < 6) continue;
      assert(!text.stdout.includes(v), `row content ${k} leaked`);
    }
  }
  const bad = await runCli(["snapshot-diff", `file://${TREE}`, "--from", "yesterday"]);
  assertEquals(bad.code, 2);
});

Deno.test("snapshot-diff attaches its own temp copy even when TMPDIR holds ? and #", async () => {
  await using dir = await makeTempDir();
  // The decoy: a database the attach would open instead if the temp path were read as a URI.
  await Deno.copyFile(`${STATES}S1.db`, dir.join("decoy.db"));
  const tmp = dir.join("decoy.db?x=#y");
  await Deno.mkdir(tmp);
  await withEnv({ TMPDIR: tmp }, async () => {
    const r = await runCliJson<DiffDoc>([
      "snapshot-diff",
      `file://${TREE}`,
      "--from",
      "txid:0000000000000001",
      "--to",
      "txid:0000000000000004",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const want = expected("S1.db", "S4.db");
    const t = r.json.tables.find((x) => x.table === "t");
    assert(t, `table t in ${JSON.stringify(r.json.tables)}`);
    assertEquals([t.rowsAfter, t.added, t.removed], [want.after, want.added, want.removed]);
    assertEquals([...Deno.readDirSync(tmp)], [], "the temp directory was removed");
  });
});

Deno.test("snapshot-diff: numeric flags are validated (exit 2), never a SQLite type error", async () => {
  for (const keys of ["99999999999999999999", "-1", "1.5", "1e3", "0x10", ""]) {
    const r = await runCli(["snapshot-diff", `file://${TREE}`, "--from", "latest", "--keys", keys]);
    assertEquals(r.code, 2, `--keys ${keys}: ${r.stderr}`);
    assertStringIncludes(r.stderr, "invalid --keys");
  }
  const big = await runCli([
    "snapshot-diff",
    `file://${TREE}`,
    "--from",
    "latest",
    "--parallelism",
    "99999999999999999999",
  ]);
  assertEquals(big.code, 2, big.stderr);
  assertStringIncludes(big.stderr, "invalid --parallelism");
});
