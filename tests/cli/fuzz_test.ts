/**
 * End-to-end fuzzing of `restore` and `verify`, in-process through `run(args, output)`: one object
 * of a real replica (the sample Litestream v0.3.13 wrote; the LTX trees of Litestream v0.5) is
 * replaced by a seeded mutation — raw bytes, or for v0.3 WAL segments the decompressed WAL
 * mutated and re-wrapped in a valid LZ4 frame so the damage reaches the WAL checks. Asserts:
 * only documented exit codes, no "unexpected error" or stack trace, no hang, and never exit 0
 * with bytes that differ from the clean replica's restore.
 */
import { ExitCode } from "../../src/errors.ts";
import { ageEncrypt, generateAgeIdentity, recipientOf } from "../../src/formats/age.ts";
import { lz4DecodeFrames } from "../../src/formats/lz4.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import type { CliResult } from "../support/cli.ts";
import { storedFrame } from "../formats/ltx_writer.ts";
import { mutate, Rng } from "../support/mutate.ts";
import type { Region } from "../support/mutate.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const LTX_TREES = ["ltx-v0.5.2-block/checksummed", "ltx-v0.5.2-block/nochecksum"].map((t) =>
  new URL(`../fixtures/ltx/${t}`, import.meta.url).pathname
);
/** Every code in the README table except 1 (a bug). */
const DOCUMENTED = new Set<number>(
  Object.values(ExitCode).filter((c) => c !== ExitCode.unexpected),
);
const HANG_MS = 30_000;
const HEAP_LIMIT = 768 * 1024 * 1024;
const regions: Region[] = ["anywhere", "head", "tail"];

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out.sort();
}

async function within(p: Promise<CliResult>, what: string): Promise<CliResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: hang`)), HANG_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `oneLine`: a failure is a `litewarden: …` line (restore); verify reports in its document. */
function checkOutcome(r: CliResult, what: string, oneLine: boolean): void {
  assert(DOCUMENTED.has(r.code), `${what}: undocumented exit ${r.code}: ${r.stderr}`);
  const all = r.stdout + r.stderr;
  assert(!/unexpected error|^\s+at \S+ \(/m.test(all), `${what}: ${all}`);
  if (oneLine && r.code !== 0) {
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("litewarden: "));
    assert(lines.length >= 1, `${what}: no litewarden: line in ${r.stderr}`);
  }
}

const equal = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Fuzzes one replica tree: `cases` restores (and every `verifyEvery`-th case a verify too), each
 * with one object replaced by `mutateObject`'s result.
 */
async function fuzzReplica(
  source: string,
  cases: number,
  seedBase: number,
  mutateObject: (path: string, bytes: Uint8Array, rng: Rng) => { bytes: Uint8Array; what: string },
  points: string[][] = [[]],
  verifyEvery = 4,
): Promise<Record<number, number>> {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(source, replica);
  const objects = filesUnder(replica);
  const url = `file://${replica}`;
  // The clean restore of each point the cases aim at (`[]` = latest).
  const want: Uint8Array[] = [];
  for (const [i, point] of points.entries()) {
    const clean = await runCli(["restore", url, ...point, "-o", dir.join(`clean${i}.db`)]);
    assertEquals(clean.code, 0, clean.stderr);
    want.push(await Deno.readFile(dir.join(`clean${i}.db`)));
  }
  const codes: Record<number, number> = {};
  for (let i = 0; i < cases; i++) {
    const seed = seedBase + i;
    const rng = new Rng(seed);
    const p = rng.int(points.length);
    const path = rng.pick(objects);
    const original = await Deno.readFile(path);
    const m = mutateObject(path, original, rng);
    const what = `seed ${seed}: ${path.slice(replica.length)}: ${m.what} (point ${
      points[p].join(" ") || "latest"
    })`;
    await Deno.writeFile(path, m.bytes);
    try {
      const out = dir.join("out.db");
      const r = await within(runCli(["restore", url, ...points[p], "-o", out, "--force"]), what);
      checkOutcome(r, `restore ${what}`, true);
      codes[r.code] = (codes[r.code] ?? 0) + 1;
      if (r.code === 0) {
        assert(
          equal(await Deno.readFile(out), want[p]),
          `restore ${what}: exit 0 with other bytes`,
        );
      }
      if (i % verifyEvery === 0) {
        const v = await within(runCli(["verify", url, ...points[p], "--quick"]), what);
        checkOutcome(v, `verify ${what}`, false);
        // verify passes only what restore restores, and restore only the clean bytes.
        if (v.code === 0) assertEquals(r.code, 0, `verify passed but restore failed: ${what}`);
      }
      await Deno.remove(out).catch(() => {});
      if (i % 50 === 0) {
        const heap = Deno.memoryUsage().heapUsed;
        assert(heap < HEAP_LIMIT, `${what}: heap ${heap} bytes`);
      }
    } finally {
      await Deno.writeFile(path, original);
    }
  }
  return codes;
}

Deno.test("fuzz restore and verify: a real v0.3 replica, one mutated object per case", async () => {
  const codes = await fuzzReplica(SAMPLE, 600, 1000, (path, bytes, rng) => {
    // Half the WAL cases mutate the WAL itself, re-wrapped so the LZ4 checksum still matches.
    if (path.includes("/wal/") && rng.int(2) === 0) {
      const m = mutate(lz4DecodeFrames(bytes), rng, rng.pick(regions));
      return { bytes: storedFrame(m.bytes), what: `WAL content: ${m.what}` };
    }
    return mutate(bytes, rng, rng.pick(regions));
  });
  assert((codes[5] ?? 0) > 400, `exit codes ${JSON.stringify(codes)}`);
});

Deno.test("fuzz restore and verify: Litestream v0.5 LTX trees, one mutated file per case", async () => {
  for (const [t, tree] of LTX_TREES.entries()) {
    // Every TXID as the target, so the plans use L0, L1, L2 and the L9 snapshot in turn.
    const txids = [1, 2, 3, 4].map((n) => ["--txid", n.toString(16).padStart(16, "0")]);
    const codes = await fuzzReplica(
      tree,
      250,
      5000 + t * 1000,
      (_path, bytes, rng) => mutate(bytes, rng, rng.pick(regions)),
      [[], ...txids],
    );
    assert((codes[5] ?? 0) + (codes[0] ?? 0) === 250, `exit codes ${JSON.stringify(codes)}`);
  }
});

Deno.test("fuzz restore and verify: an age-encrypted v0.3 replica, one mutated object per case", async () => {
  await using dir = await makeTempDir();
  // The sample replica as Litestream's `age:` writes it: every object encrypted whole.
  const identity = await generateAgeIdentity();
  const recipient = await recipientOf(identity, "fuzz");
  const idFile = dir.join("identity.txt");
  await Deno.writeTextFile(idFile, `${identity}\n`);
  const sealed = dir.join("sealed");
  await copyTree(SAMPLE, sealed);
  for (const p of filesUnder(sealed)) {
    await Deno.writeFile(p, await ageEncrypt(await Deno.readFile(p), [recipient]));
  }
  const codes = await fuzzReplica(
    sealed,
    150,
    9000,
    (_path, bytes, rng) => mutate(bytes, rng, rng.pick(regions)),
    [["--age-identity", idFile]],
  );
  // A mutated recipient stanza reads as "encrypted for another key": exit 2, never exit 0.
  assert((codes[5] ?? 0) + (codes[2] ?? 0) === 150, `exit codes ${JSON.stringify(codes)}`);
});
