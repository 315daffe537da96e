/**
 * One replica, five commands, one spelling of a restore point: `list`, `verify`, `restore`,
 * `snapshot-diff` and `prune` print the same point the same way, and the printed text pasted
 * into `--generation/--index`, `--txid` or `--timestamp` restores that very point (issue 9: the
 * index used to print in decimal in some commands and in hex in others, while `--index` reads hex).
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const LTX = new URL("../fixtures/ltx/ltx-v0.5.2-block/checksummed", import.meta.url).pathname;

interface PointDoc {
  generation: string | null;
  index: number | null;
  txid: string | null;
  time: string;
}

const NEWEST = /^Newest restorable point: (\S+) \(([^)]+)\), /m;
const WINDOW = /restorable window: (\S+) … (\S+)/;

/** `generation G index I` / `TXID T` → the restore flags that text names. */
function flagsFromText(point: string): string[] {
  const v03 = /^generation ([0-9a-f]{16}) index ([0-9a-f]{8})$/.exec(point);
  if (v03) return ["--generation", v03[1], "--index", v03[2]];
  const v05 = /^TXID ([0-9a-f]{16})$/.exec(point);
  assert(v05, `not a point: ${point}`);
  return ["--txid", v05[1]];
}

Deno.test("v0.3: list, verify, restore, snapshot-diff and prune print the same point; pasted, it restores", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica, [".litewarden"]);
  const url = `file://${replica}`;

  const list = await runCli(["list", url]);
  assertEquals(list.code, 0, list.stderr);
  const newest = NEWEST.exec(list.stdout);
  assert(newest, list.stdout);
  const [, time, point] = newest;
  const at = `${time} (${point}`;
  assertEquals(point, "generation 2d96069e349f9e96 index 00000004");

  const verify = await runCli(["verify", url, "--app", "none"]);
  assertEquals(verify.code, 0, verify.stdout);
  assertStringIncludes(verify.stdout, `restore point ${at}, `);

  const out = dir.join("restored.db");
  const restore = await runCli(["restore", url, "-o", out]);
  assertEquals(restore.code, 0, restore.stderr);
  assertStringIncludes(restore.stderr, `: ${at}); `);

  const diff = await runCli(["snapshot-diff", url, "--from", "index:00000000", "--to", "latest"]);
  assertEquals(diff.code, 0, diff.stderr);
  assertStringIncludes(diff.stdout, `  to ${at})`);
  assertStringIncludes(diff.stdout, "From ");
  assertStringIncludes(diff.stdout, "(generation 2d96069e349f9e96 index 00000000)");

  // prune's points are the snapshots; the sample's one snapshot is at index 0.
  const prune = await runCli(["prune", url, "--keep-last", "1"]);
  assertEquals(prune.code, 0, prune.stderr);
  const row = /^\s+keep\s+\S+\s+(generation \S+ index \S+)\s+newest/m.exec(prune.stdout);
  assert(row, prune.stdout);
  assertEquals(row[1], "generation 2d96069e349f9e96 index 00000000");

  // Pasted into the flags, each printed point restores exactly that point.
  const json = JSON.parse((await runCli(["list", url, "--json"])).stdout) as { newest: PointDoc };
  for (const [text, index] of [[point, 4], [row[1], 0]] as const) {
    const flags = flagsFromText(text);
    const again = await runCli([
      "restore",
      url,
      "-o",
      dir.join(`i${index}.db`),
      ...flags,
      "--json",
    ]);
    assertEquals(again.code, 0, again.stderr);
    const p = JSON.parse(again.stdout).restorePoint as PointDoc;
    assertEquals([p.generation, p.index], ["2d96069e349f9e96", index], text);
    if (index === 4) assertEquals(p.time, json.newest.time);
    const verified = await runCli(["verify", url, "--app", "none", ...flags]);
    assertEquals(verified.code, 0, verified.stdout);
    assertStringIncludes(verified.stdout, `(${text}, `);
  }

  // A segment boundary inside an index: printed with its offset, restored by --offset.
  const seg = await runCli([
    "restore",
    url,
    "-o",
    dir.join("seg.db"),
    "--generation",
    "2d96069e349f9e96",
    "--index",
    "00000003",
    "--offset",
    "00001038",
  ]);
  assertEquals(seg.code, 0, seg.stderr);
  assertStringIncludes(seg.stderr, "(generation 2d96069e349f9e96 index 00000003 offset 00001038)");

  // The printed window: its start and its end restore by --timestamp.
  const window = WINDOW.exec(list.stdout);
  assert(window, list.stdout);
  for (const [end, t] of [window[1], window[2]].entries()) {
    const byTime = await runCli([
      "restore",
      url,
      "-o",
      dir.join(`t${end}.db`),
      "--timestamp",
      t,
      "--json",
    ]);
    assertEquals(byTime.code, 0, `--timestamp ${t}: ${byTime.stderr}`);
    // The end of the window is the newest point itself.
    const p = JSON.parse(byTime.stdout).restorePoint as PointDoc;
    if (end === 1) assertEquals(p.time, json.newest.time);
  }
});

Deno.test("v0.5: the TXID list prints pastes into --txid and restores that TXID", async () => {
  await using dir = await makeTempDir();
  const url = `file://${LTX}`;
  const list = await runCli(["list", url]);
  assertEquals(list.code, 0, list.stderr);
  const newest = NEWEST.exec(list.stdout);
  assert(newest, list.stdout);
  assertEquals(newest[2], "TXID 0000000000000004");
  const restore = await runCli(["restore", url, "-o", dir.join("r.db")]);
  assertStringIncludes(restore.stderr, `: ${newest[1]} (${newest[2]}); `);
  const pasted = await runCli([
    "restore",
    url,
    "-o",
    dir.join("p.db"),
    ...flagsFromText(newest[2]),
    "--json",
  ]);
  assertEquals(pasted.code, 0, pasted.stderr);
  assertEquals((JSON.parse(pasted.stdout).restorePoint as PointDoc).txid, "0000000000000004");
  const window = WINDOW.exec(list.stdout);
  assert(window, list.stdout);
  const start = await runCli(["restore", url, "-o", dir.join("s.db"), "--timestamp", window[1]]);
  assertEquals(start.code, 0, `--timestamp ${window[1]}: ${start.stderr}`);
});
