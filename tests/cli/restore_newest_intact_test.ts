/**
 * v0.5: a damaged LTX file's error names the newest TXID the levels still reach without it, with
 * the flag that restores it; --accept-loss restores that point (byte-identical to the database
 * state the reference encoder wrote the chain from).
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";

const TREE = new URL("../fixtures/ltx/ltx-v0.5.2-block/checksummed", import.meta.url).pathname;
const STATES = new URL("../fixtures/ltx/states", import.meta.url).pathname;

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("v0.5: a corrupt L0 file names the TXID below it; --accept-loss restores that state", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(TREE, replica);
  // Only level 0: TXID 4 is reachable through its L0 file alone.
  for (const level of ["1", "2", "9"]) {
    await Deno.remove(`${replica}/ltx/${level}`, { recursive: true });
  }
  const victim = `${replica}/ltx/0/0000000000000004-0000000000000004.ltx`;
  const bytes = await Deno.readFile(victim);
  bytes[bytes.length - 40] ^= 0xff; // inside the page data, before the trailer
  await Deno.writeFile(victim, bytes);

  const out = dir.join("out.db");
  const r = await runCli(["restore", `file://${replica}`, "-o", out]);
  assertEquals(r.code, 5, r.stderr);
  assertStringIncludes(r.stderr, "0000000000000004-0000000000000004.ltx");
  assertStringIncludes(r.stderr, "--txid 0000000000000003");
  assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing restored");

  const named = await runCli([
    "restore",
    `file://${replica}`,
    "-o",
    out,
    "--txid",
    "0000000000000003",
  ]);
  assertEquals(named.code, 0, named.stderr);
  assertEquals(await sha256(out), await sha256(`${STATES}/S3.db`));
  await Deno.remove(out);

  const accepted = await runCli([
    "restore",
    `file://${replica}`,
    "-o",
    out,
    "--accept-loss",
    "--json",
  ]);
  assertEquals(accepted.code, 0, accepted.stderr);
  assertStringIncludes(accepted.stderr, "litewarden: WARNING: ");
  assertStringIncludes(accepted.stderr, "loss accepted");
  assertEquals(JSON.parse(accepted.stdout).restorePoint.txid, "0000000000000003");
  assertEquals(await sha256(out), await sha256(`${STATES}/S3.db`));
});
