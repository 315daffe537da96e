/**
 * The restore-point type: what every command prints parses back into the request that restores
 * exactly that point (v0.3 index and segment boundary, v0.5 TXID), and the enumeration of every
 * point of a replica restores each one (v0.5 byte for byte against the reference states; v0.3
 * each segment boundary to a sound database whose index ends equal `--index`).
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";
import { UsageError } from "../../src/errors.ts";
import { listReplica } from "../../src/replica/listing.ts";
import { restorePointsOf } from "../../src/replica/points.ts";
import { chooseRestorePlan, planPoint, restorePoint } from "../../src/replica/restore.ts";
import {
  describePoint,
  describePointAt,
  parsePointFlags,
  parsePointSpec,
  pointJson,
  pointSpec,
  requestFor,
  restoreArgs,
  restoreFlags,
  samePoint,
  v03Point,
  v05Point,
} from "../../src/replica/restore_point.ts";
import type { PointFlags, RestorePoint } from "../../src/replica/restore_point.ts";
import { summarize } from "../../src/replica/summary.ts";
import { planV05 } from "../../src/replica/v05.ts";
import { FileStorage } from "../../src/storage/file.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const GENERATION = "2d96069e349f9e96";
const LTX = new URL("../fixtures/ltx/ltx-v0.5.2-block/checksummed", import.meta.url).pathname;
const STATES = new URL("../fixtures/ltx/states", import.meta.url).pathname;
const T = new Date("2026-11-20T09:00:00.250Z");

/** `--flag value` pairs as commander hands them over. */
function flagsOf(args: string[]): PointFlags {
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) flags[args[i].slice(2)] = args[i + 1];
  return flags;
}

Deno.test("describePoint / restoreFlags: one spelling, padded hex, parsed back to the same point", () => {
  const points: RestorePoint[] = [
    v03Point(GENERATION, 0x1f, T),
    v03Point(GENERATION, 3, T, 0x1038),
    v03Point(GENERATION, 0, T, 0),
    v05Point(42n, T),
  ];
  assertEquals(describePoint(points[0]), `generation ${GENERATION} index 0000001f`);
  assertEquals(describePoint(points[1]), `generation ${GENERATION} index 00000003 offset 00001038`);
  assertEquals(describePoint(points[3]), "TXID 000000000000002a");
  assertEquals(restoreFlags(points[0]), `--generation ${GENERATION} --index 0000001f`);
  assertEquals(
    restoreFlags(points[1]),
    `--generation ${GENERATION} --index 00000003 --offset 00001038`,
  );
  assertEquals(restoreFlags(points[3]), "--txid 000000000000002a");
  assertEquals(
    describePointAt(points[0]),
    `2026-11-20T09:00:00Z (generation ${GENERATION} index 0000001f)`,
  );
  for (const p of points) {
    // The flags it prints are the request that names it, and so is its snapshot-diff spelling.
    assertEquals(parsePointFlags(flagsOf(restoreArgs(p))), requestFor(p), restoreFlags(p));
    const generation = p.format === "v0.3" ? p.generation : undefined;
    assertEquals(
      parsePointSpec(pointSpec(p), generation, "--from"),
      requestFor(p),
      pointSpec(p),
    );
  }
  assertEquals(pointSpec(points[1]), "index:00000003_00001038");
  assert(samePoint(points[1], v03Point(GENERATION, 3, new Date(0), 0x1038)));
  assert(!samePoint(points[0], points[1]));
  assert(!samePoint(points[3], v05Point(41n, T)));
});

Deno.test("pointJson: the documented six keys; offset only for a segment boundary", () => {
  const now = new Date(T.getTime() + 10_000);
  assertEquals(pointJson(v03Point(GENERATION, 3, T), now), {
    format: "v0.3",
    generation: GENERATION,
    index: 3,
    txid: null,
    time: "2026-11-20T09:00:00.250Z",
    ageSeconds: 10,
  });
  assertEquals(pointJson(v03Point(GENERATION, 3, T, 0x1038), now)?.offset, 0x1038);
  assertEquals(pointJson(v05Point(4n, T), now)?.txid, "0000000000000004");
  assertEquals(pointJson(undefined, now), null);
});

Deno.test("parsePointFlags refuses what no point can be, naming the flag", () => {
  const bad: [PointFlags, string][] = [
    [{ index: "1", txid: "0000000000000001" }, "use only one of"],
    [{ offset: "1038" }, "--offset names a WAL segment"],
    [{ index: "zz" }, "invalid --index zz"],
    [{ index: "1", offset: "-1" }, "invalid --offset -1"],
    [{ txid: "2a" }, "invalid --txid 2a"],
    [{ generation: "ABC" }, "invalid --generation ABC"],
    [{ timestamp: "yesterday" }, "invalid --timestamp yesterday"],
  ];
  for (const [flags, message] of bad) {
    assertThrows(() => parsePointFlags(flags), UsageError, message);
  }
  assertThrows(() => parsePointSpec("index:1_zz", undefined, "--to"), UsageError, "--offset");
  assertThrows(() => parsePointSpec("soon", undefined, "--to"), UsageError, "invalid --to soon");
});

Deno.test("v0.3: every segment boundary is a point; each restores, the last of an index equals --index", async () => {
  await using dir = await makeTempDir();
  const storage = new FileStorage(SAMPLE);
  const listing = await listReplica(storage);
  const points = restorePointsOf(listing);
  const segments = listing.v03!.generations[0].segments;
  // One point per segment (the snapshot's index has segments): the sample has 13.
  assertEquals(points.length, segments.length);
  assertEquals(
    points.map((p) => p.format === "v0.3" ? [p.index, p.offset] : []),
    segments.map((s) => [s.index, s.offset]),
  );
  for (let i = 1; i < points.length; i++) assert(points[i].time >= points[i - 1].time);
  const restored = new Set<string>();
  for (const [n, p] of points.entries()) {
    assertEquals(planPoint(listing, p).point, p, describePoint(p));
    const path = dir.join(`p${n}.db`);
    await restorePoint(storage, listing, p, path, { parallelism: 4 });
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assertEquals(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
    } finally {
      db.close();
    }
    restored.add(await sha256(path));
    const next = points[n + 1];
    if (p.format === "v0.3" && (!next || next.format !== "v0.3" || next.index !== p.index)) {
      // The last segment of an index is the end of that index.
      const end = chooseRestorePlan(listing, { generation: GENERATION, index: p.index });
      assertEquals(end.point.time, p.time);
      const endPath = dir.join(`end${n}.db`);
      await restorePoint(storage, listing, end.point, endPath, { parallelism: 4 });
      assertEquals(await sha256(endPath), await sha256(path));
    }
  }
  // Segment boundaries are distinct states, not the same database again and again.
  assert(restored.size > new Set(segments.map((s) => s.index)).size, `${restored.size} states`);
  // A boundary that does not exist is refused with the window, not restored as something else.
  assertThrows(
    () => planPoint(listing, v03Point(GENERATION, 1, T, 0x1234)),
    Error,
    "no WAL segment 00000001_00001234",
  );
});

Deno.test("v0.5: every reachable TXID is a point with planV05's time; each restores its state byte for byte", async () => {
  await using dir = await makeTempDir();
  const storage = new FileStorage(LTX);
  const listing = await listReplica(storage);
  const points = restorePointsOf(listing);
  assertEquals(points.map((p) => describePoint(p)), [1, 2, 3, 4].map((t) => `TXID ${hex16(t)}`));
  for (const p of points) {
    assert(p.format === "v0.5");
    const plan = planV05(listing.v05!, { kind: "txid", txid: BigInt(`0x${p.txid}`) });
    assertEquals(p.time, plan.time, p.txid);
    const path = dir.join(`${p.txid}.db`);
    await restorePoint(storage, listing, p, path, { parallelism: 4 });
    const n = Number(BigInt(`0x${p.txid}`));
    assertEquals(await sha256(path), await sha256(`${STATES}/S${n}.db`), `TXID ${n}`);
  }
});

Deno.test("the printed start of the restorable window restores by --timestamp", async () => {
  for (const root of [SAMPLE, LTX]) {
    const listing = await listReplica(new FileStorage(root));
    const s = summarize(listing);
    assert(s.windowStart && s.oldest, root);
    assert(s.windowStart.getTime() >= s.oldest.time.getTime());
    const chosen = chooseRestorePlan(listing, { timestamp: s.windowStart });
    assert(chosen.point.time.getTime() <= s.windowStart.getTime(), root);
  }
});

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
