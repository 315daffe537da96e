import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";
import { writeLtx } from "../formats/ltx_writer.ts";

const FIXTURES = new URL("../fixtures/ltx/", import.meta.url).pathname;
const TREES = [
  "ltx-v0.5.1-frame/checksummed",
  "ltx-v0.5.2-block/checksummed",
  "ltx-v0.5.2-block/nochecksum",
];
const STATE = (n: number) => Deno.readFileSync(`${FIXTURES}states/S${n}.db`);
/** Header timestamp of L0 TXID i (fixture README). */
const TXID_TIME = (i: number) => 1735689600000 + i * 60_000;

for (const tree of TREES) {
  Deno.test(`restore ${tree}: every TXID gives the state it was written from, byte for byte`, async () => {
    await using dir = await makeTempDir();
    const url = `file://${FIXTURES}${tree}`;
    for (let txid = 1; txid <= 4; txid++) {
      const out = dir.join(`txid-${txid}.db`);
      const r = await runCliJson<{ restorePoint: { txid: string }; checksumVerified: boolean }>([
        "restore",
        url,
        "-o",
        out,
        "--txid",
        txid.toString(16).padStart(16, "0"),
        "--json",
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(await Deno.readFile(out), STATE(txid), `TXID ${txid}`);
      assertEquals(r.json.restorePoint.txid, txid.toString(16).padStart(16, "0"));
      assertEquals(r.json.checksumVerified, tree.endsWith("/checksummed"));
    }
    // Latest goes through the level-9 snapshot.
    const latest = dir.join("latest.db");
    assertEquals((await runCli(["restore", url, "-o", latest])).code, 0);
    assertEquals(await Deno.readFile(latest), STATE(4));
    // Timestamps select files strictly before T (v0.5 semantics).
    for (let i = 1; i <= 3; i++) {
      const out = dir.join(`time-${i}.db`);
      const t = new Date(TXID_TIME(i) + 1).toISOString();
      const r = await runCli(["restore", url, "-o", out, "--timestamp", t]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(await Deno.readFile(out), STATE(i), `timestamp ${t}`);
    }
    const early = await runCli([
      "restore",
      url,
      "-o",
      dir.join("early.db"),
      "--timestamp",
      "2020-01-01T00:00:00Z",
    ]);
    assertEquals(early.code, 3);
    assertStringIncludes(early.stderr, "2025-01-01T00:01:00Z");
  });
}

Deno.test("restore v0.5: a flipped byte in an LTX file is exit 5 naming the file", async () => {
  await using dir = await makeTempDir();
  const root = dir.join("replica");
  await copyTree(`${FIXTURES}ltx-v0.5.2-block/nochecksum`, root);
  const victim = `${root}/ltx/9/0000000000000001-0000000000000004.ltx`;
  const bytes = await Deno.readFile(victim);
  bytes[150] ^= 0x40; // inside the first page frame
  await Deno.writeFile(victim, bytes);
  const out = dir.join("out.db");
  const r = await runCli(["restore", `file://${root}`, "-o", out]);
  assertEquals(r.code, 5, r.stderr);
  assertStringIncludes(r.stderr, "ltx/9/0000000000000001-0000000000000004.ltx");
  assertEquals(await exists(out), false);
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), ["replica"]);
});

Deno.test("restore v0.5: a missing LTX file is exit 5 naming the gap and the newest restorable point", async () => {
  await using dir = await makeTempDir();
  const root = dir.join("replica");
  await copyTree(`${FIXTURES}ltx-v0.5.2-block/nochecksum`, root);
  // Only L0 remains, and TXID 3 is gone: the chain stops at 2.
  for (const level of ["1", "2", "9"]) {
    await Deno.remove(`${root}/ltx/${level}`, { recursive: true });
  }
  await Deno.remove(`${root}/ltx/0/0000000000000003-0000000000000003.ltx`);
  const r = await runCli(["restore", `file://${root}`, "-o", dir.join("out.db")]);
  assertEquals(r.code, 5, r.stderr);
  assertStringIncludes(r.stderr, "0000000000000004");
  assertStringIncludes(r.stderr, "have up to TXID 0000000000000002");
  assertEquals(r.stderr.trim().split("\n").length, 1);
  // The point before the gap still restores.
  const ok = await runCli([
    "restore",
    `file://${root}`,
    "-o",
    dir.join("two.db"),
    "--txid",
    "0000000000000002",
  ]);
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(await Deno.readFile(dir.join("two.db")), STATE(2));
});

Deno.test("restore v0.5: a broken pre/post-apply checksum link is exit 5", async () => {
  await using dir = await makeTempDir();
  const root = dir.join("replica");
  await copyTree(`${FIXTURES}ltx-v0.5.2-block/checksummed`, root);
  // Apply L0 2 onto L0 1 after swapping in the nochecksum tree's L0 1 (post-apply 0, CRC valid).
  await Deno.copyFile(
    `${FIXTURES}ltx-v0.5.2-block/nochecksum/ltx/0/0000000000000001-0000000000000001.ltx`,
    `${root}/ltx/0/0000000000000001-0000000000000001.ltx`,
  );
  const r = await runCli([
    "restore",
    `file://${root}`,
    "-o",
    dir.join("out.db"),
    "--txid",
    "0000000000000002",
  ]);
  // The first file carries no checksums, so the chain cannot be checksum-verified, but the
  // restore is still right by TXID and CRC: it must succeed and equal S2.
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await Deno.readFile(dir.join("out.db")), STATE(2));
  // Corrupting a checksummed file's post-apply checksum (and fixing nothing else) breaks its CRC.
  const victim = `${root}/ltx/0/0000000000000002-0000000000000002.ltx`;
  const bytes = await Deno.readFile(victim);
  bytes[bytes.length - 16] ^= 0x01;
  await Deno.writeFile(victim, bytes);
  const bad = await runCli([
    "restore",
    `file://${root}`,
    "-o",
    dir.join("bad.db"),
    "--txid",
    "0000000000000002",
  ]);
  assertEquals(bad.code, 5, bad.stderr);
  assert(bad.stderr.includes("0000000000000002-0000000000000002.ltx"), bad.stderr);
});

Deno.test("restore v0.5: a CRC-valid LTX file whose commit claims 4294967295 pages is exit 5", async () => {
  await using dir = await makeTempDir();
  const root = dir.join("replica");
  await copyTree(`${FIXTURES}ltx-v0.5.2-block/nochecksum`, root);
  for (const level of ["1", "2", "9"]) {
    await Deno.remove(`${root}/ltx/${level}`, { recursive: true });
  }
  // TXID 2 rewritten: one real page, a valid file checksum, and a 16 TiB database size.
  const l0 = `${root}/ltx/0/0000000000000002-0000000000000002.ltx`;
  const pageSize = new DataView((await Deno.readFile(l0)).buffer).getUint32(8);
  await Deno.writeFile(
    l0,
    writeLtx({
      flags: 0x2, // NoChecksum, as Litestream writes
      pageSize,
      commit: 0xffffffff,
      minTxid: 2n,
      maxTxid: 2n,
      pages: [{ pgno: 1, data: STATE(2).subarray(0, pageSize) }],
    }),
  );
  const out = dir.join("out.db");
  const r = await runCli(["restore", `file://${root}`, "-o", out, "--txid", "0000000000000002"]);
  assertEquals(r.code, 5, r.stderr);
  assertStringIncludes(r.stderr, "0000000000000002-0000000000000002.ltx");
  assertStringIncludes(r.stderr, "sets the database to 4294967295 pages");
  assertEquals(await exists(out), false);
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), ["replica"]);
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
