import { assertEquals, assertThrows } from "../support/assert.ts";
import { parseV03Key } from "../../src/formats/v03_layout.ts";
import { buildV03Replica, planV03, V03PlanError } from "../../src/replica/v03.ts";
import type { ObjectInfo } from "../../src/storage/storage.ts";

const G1 = "0123456789abcdef";
const G2 = "fedcba9876543210";

function obj(key: string, minute: number, size = 100): ObjectInfo {
  return { key, size, modified: new Date(Date.UTC(2026, 0, 1, 0, minute)) };
}

Deno.test("parseV03Key accepts v0.3 names and the legacy variants", () => {
  assertEquals(parseV03Key(`generations/${G1}/snapshots/0000000a.snapshot.lz4`), {
    kind: "snapshot",
    generation: G1,
    index: 10,
    compressed: true,
  });
  assertEquals(parseV03Key(`generations/${G1}/wal/00000001_00004080.wal.lz4`), {
    kind: "wal",
    generation: G1,
    index: 1,
    offset: 0x4080,
    compressed: true,
  });
  // Offsets wider than 8 hex digits (WAL files over 4 GiB).
  assertEquals(parseV03Key(`generations/${G1}/wal/00000001_100000000.wal.lz4`)?.kind, "wal");
  // v0.4-dev nested names, 8 and 16 hex.
  assertEquals(
    parseV03Key(`generations/${G1}/wal/0000000000000002/0000000000000020.wal.lz4`),
    { kind: "wal", generation: G1, index: 2, offset: 32, compressed: true },
  );
  // v0.3.0–0.3.4 whole-file WALs and uncompressed snapshots.
  assertEquals(parseV03Key(`generations/${G1}/wal/00000003.wal`), {
    kind: "wal",
    generation: G1,
    index: 3,
    offset: 0,
    compressed: false,
  });
  assertEquals(parseV03Key(`generations/${G1}/snapshots/00000000.snapshot`)?.kind, "snapshot");
  for (
    const bad of [
      `generations/${G1}/snapshots/00000000.snapshot.lz4.tmp`,
      `generations/XYZ/snapshots/00000000.snapshot.lz4`,
      `generations/${G1}/wal/0000001_00000000.wal.lz4`,
      `generations/${G1}/other/00000000.snapshot.lz4`,
      "ltx/0/0000000000000001-0000000000000001.ltx",
    ]
  ) assertEquals(parseV03Key(bad), undefined, bad);
});

function replica() {
  return buildV03Replica([
    // Older generation.
    obj(`generations/${G2}/snapshots/00000000.snapshot.lz4`, 0),
    obj(`generations/${G2}/wal/00000000_00000000.wal.lz4`, 1),
    // Current generation: snapshot at 0, WAL 0..2, a second snapshot at index 2.
    obj(`generations/${G1}/snapshots/00000000.snapshot.lz4`, 10),
    obj(`generations/${G1}/wal/00000000_00000000.wal.lz4`, 11),
    obj(`generations/${G1}/wal/00000000_00001020.wal.lz4`, 12),
    obj(`generations/${G1}/wal/00000001_00000000.wal.lz4`, 13),
    obj(`generations/${G1}/snapshots/00000002.snapshot.lz4`, 14),
    obj(`generations/${G1}/wal/00000002_00000000.wal.lz4`, 15),
    obj(`generations/${G1}/wal/00000002_00002040.wal.lz4`, 16),
  ])!;
}

Deno.test("planV03 latest picks the newest generation, its latest snapshot and every WAL after it", () => {
  const plan = planV03(replica(), { kind: "latest" });
  assertEquals(plan.generation.id, G1);
  assertEquals(plan.snapshot.index, 2);
  assertEquals(plan.indices.map((i) => [i.index, i.segments.map((s) => s.offset)]), [
    [2, [0, 0x2040]],
  ]);
  assertEquals(plan.index, 2);
  assertEquals(plan.time, new Date(Date.UTC(2026, 0, 1, 0, 16)));
});

Deno.test("planV03 -index N replays through the end of index N from the snapshot at or before N", () => {
  const plan = planV03(replica(), { kind: "index", index: 1 });
  assertEquals(plan.snapshot.index, 0);
  assertEquals(plan.indices.map((i) => i.index), [0, 1]);
  assertEquals(plan.indices[0].segments.length, 2);
});

Deno.test("planV03 -timestamp uses <= T and must fall inside a generation's span", () => {
  const plan = planV03(replica(), {
    kind: "timestamp",
    time: new Date(Date.UTC(2026, 0, 1, 0, 12)),
  });
  assertEquals(plan.snapshot.index, 0);
  assertEquals(plan.indices.map((i) => [i.index, i.segments.length]), [[0, 2]]);
  // Minute 1 is inside the older generation only.
  assertEquals(
    planV03(replica(), { kind: "timestamp", time: new Date(Date.UTC(2026, 0, 1, 0, 1)) })
      .generation.id,
    G2,
  );
  const err = assertThrows(
    () => planV03(replica(), { kind: "timestamp", time: new Date(Date.UTC(2027, 0, 1)) }),
    V03PlanError,
  );
  assertEquals(err.reason, "no-generation");
});

Deno.test("planV03 reports a missing WAL index and a missing initial segment", () => {
  const gap = buildV03Replica([
    obj(`generations/${G1}/snapshots/00000000.snapshot.lz4`, 0),
    obj(`generations/${G1}/wal/00000000_00000000.wal.lz4`, 1),
    obj(`generations/${G1}/wal/00000002_00000000.wal.lz4`, 2),
  ])!;
  const e1 = assertThrows(() => planV03(gap, { kind: "latest" }), V03PlanError);
  assertEquals(e1.reason, "missing-wal");
  assertEquals(e1.message, `missing WAL index ${G1}/00000001`);
  const noInitial = buildV03Replica([
    obj(`generations/${G1}/snapshots/00000000.snapshot.lz4`, 0),
    obj(`generations/${G1}/wal/00000000_00001020.wal.lz4`, 1),
  ])!;
  const e2 = assertThrows(() => planV03(noInitial, { kind: "latest" }), V03PlanError);
  assertEquals(e2.reason, "missing-wal");
});
