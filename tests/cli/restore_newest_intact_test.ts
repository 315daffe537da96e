/**
 * A damaged object's error names the newest point that does not need it (v0.3 and v0.5), and
 * --accept-loss restores it. v0.5: a damaged LTX file's error names the newest TXID the levels still reach without it, with
 * the flag that restores it; --accept-loss restores that point (byte-identical to the database
 * state the reference encoder wrote the chain from).
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { fileReplicaUrl, litestreamRestore } from "../support/litestream.ts";
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

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const GENERATION = "2d96069e349f9e96";

Deno.test("v0.3: a corrupt segment of index 3 names index 2 in restore and verify; --accept-loss restores it byte for byte like litestream", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica, [".litewarden"]);
  const intact = dir.join("intact");
  await copyTree(SAMPLE, intact, [".litewarden"]);
  const victim = `${replica}/generations/${GENERATION}/wal/00000003_00001038.wal.lz4`;
  const bytes = await Deno.readFile(victim);
  await Deno.writeFile(victim, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const flags = `--generation ${GENERATION} --index 00000002`;

  const verified = await runCli(["verify", `file://${replica}`, "--app", "none", "--json"]);
  assertEquals(verified.code, 5, verified.stdout);
  const apply = (JSON.parse(verified.stdout).checks as { id: string; message: string }[])
    .find((c) => c.id === "restore.apply");
  assert(apply, verified.stdout);
  assertStringIncludes(apply.message, "00000003_00001038.wal.lz4");
  assertStringIncludes(apply.message, `the newest point that does not need it is `);
  assertStringIncludes(apply.message, `index 00000002), ${flags}`);

  const out = dir.join("out.db");
  const refused = await runCli(["restore", `file://${replica}`, "-o", out]);
  assertEquals(refused.code, 5, refused.stderr);
  assertStringIncludes(refused.stderr, ` (generation ${GENERATION} index 00000002), `);
  assertStringIncludes(refused.stderr, `, ${flags}: restore it with those flags`);

  const accepted = await runCli(["restore", `file://${replica}`, "-o", out, "--accept-loss"]);
  assertEquals(accepted.code, 0, accepted.stderr);
  assertStringIncludes(accepted.stderr, "loss accepted");
  const oracle = dir.join("litestream.db");
  const ls = await litestreamRestore(["-index", "2", "-o", oracle, fileReplicaUrl(intact)]);
  assertEquals(ls.code, 0, ls.stderr);
  assertEquals(await sha256(out), await sha256(oracle));
});
