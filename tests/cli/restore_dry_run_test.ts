import { assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { makeTempDir } from "../support/tmp.ts";

const TREE = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;
const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;

Deno.test("restore --dry-run names the point and the objects, and writes nothing", async () => {
  await using dir = await makeTempDir();
  const out = dir.join("db.sqlite3");
  const r = await runCliJson<
    { dryRun: boolean; files: number; objects: string[]; restorePoint: { txid: string } }
  >([
    "restore",
    `file://${TREE}`,
    "-o",
    out,
    "-dry-run",
    "--json",
    "--txid",
    "0000000000000003",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json.dryRun, true);
  assertEquals(r.json.restorePoint.txid, "0000000000000003");
  assertEquals(r.json.objects, [
    "ltx/0/0000000000000001-0000000000000001.ltx",
    "ltx/0/0000000000000002-0000000000000002.ltx",
    "ltx/0/0000000000000003-0000000000000003.ltx",
  ]);
  assertEquals([...Deno.readDirSync(dir.path)], []);
  // An existing output is no obstacle to a dry run, and stays untouched.
  await Deno.writeTextFile(out, "keep me");
  const text = await runCli(["restore", `file://${SAMPLE}`, "-o", out, "--dry-run"]);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, "snapshots/00000000.snapshot.lz4");
  assertEquals(await Deno.readTextFile(out), "keep me");
});
