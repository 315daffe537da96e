/**
 * A point that only a damaged LTX file reaches is damage (exit 5, naming the file), not "no
 * restore point" (exit 3): found by the end-to-end fuzz test (tests/cli/fuzz_test.ts).
 */
import { assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";

const TREE = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;
const L0_2 = "ltx/0/0000000000000002-0000000000000002.ltx";

Deno.test("restore --txid that only a damaged LTX file reaches: exit 5 naming it", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(TREE, replica);
  const bytes = await Deno.readFile(`${replica}/${L0_2}`);
  bytes[1] ^= 0x10; // the header's magic: the listing leaves the file out
  await Deno.writeFile(`${replica}/${L0_2}`, bytes);
  for (const txid of ["0000000000000002", "0000000000000003"]) {
    const r = await runCli([
      "restore",
      `file://${replica}`,
      "--txid",
      txid,
      "-o",
      dir.join(`${txid}.db`),
    ]);
    assertEquals(r.code, 5, r.stderr);
    assertStringIncludes(r.stderr, `left out as damaged: ${L0_2}`);
  }
  // A TXID the replica never had stays exit 3; the latest point routes around the damage.
  const future = await runCli([
    "restore",
    `file://${replica}`,
    "--txid",
    "0000000000000009",
    "-o",
    dir.join("f.db"),
  ]);
  assertEquals(future.code, 3, future.stderr);
  const latest = await runCli(["restore", `file://${replica}`, "-o", dir.join("latest.db")]);
  assertEquals(latest.code, 0, latest.stderr);
});
