import { assertEquals, assertThrows } from "../support/assert.ts";
import { parseV05Key } from "../../src/formats/v05_layout.ts";
import { buildV05Replica, planV05, V05PlanError } from "../../src/replica/v05.ts";
import type { ObjectInfo } from "../../src/storage/storage.ts";

const h = (n: number) => n.toString(16).padStart(16, "0");
function ltx(
  level: number,
  min: number,
  max: number,
  minute: number,
  hexLevel = false,
): ObjectInfo {
  const dir = hexLevel ? level.toString(16).padStart(4, "0") : `ltx/${level}`;
  return {
    key: `${dir}/${h(min)}-${h(max)}.ltx`,
    size: 200,
    modified: new Date(Date.UTC(2026, 0, 1, 0, minute)),
  };
}

Deno.test("parseV05Key reads both key schemes and ignores everything else", () => {
  assertEquals(parseV05Key(`ltx/9/${h(1)}-${h(4)}.ltx`), {
    level: 9,
    minTxid: 1n,
    maxTxid: 4n,
    scheme: "ltx-dir",
  });
  assertEquals(parseV05Key(`0009/${h(1)}-${h(4)}.ltx`)?.scheme, "hex-level");
  assertEquals(parseV05Key(`/0000/${h(5)}-${h(5)}.ltx`)?.level, 0);
  for (
    const bad of [
      `ltx/0/${h(1)}-${h(1)}.ltx.tmp`,
      `ltx/10/${h(1)}-${h(1)}.ltx`,
      `0010/${h(1)}-${h(1)}.ltx`,
      `ltx/0/${h(2)}-${h(1)}.ltx`,
      `ltx/0/${h(0)}-${h(1)}.ltx`,
    ]
  ) assertEquals(parseV05Key(bad), undefined, bad);
});

const tree = () =>
  buildV05Replica([
    ltx(0, 1, 1, 1),
    ltx(0, 2, 2, 2),
    ltx(0, 3, 3, 3),
    ltx(0, 4, 4, 4),
    ltx(0, 5, 5, 6),
    ltx(1, 2, 4, 4),
    ltx(9, 1, 3, 5),
  ])!;

Deno.test("planV05 latest: newest snapshot, then the file reaching furthest at each step", () => {
  const plan = planV05(tree(), { kind: "latest" });
  assertEquals(plan.files.map((f) => f.key), [
    `ltx/9/${h(1)}-${h(3)}.ltx`,
    // Ties on MaxTXID go to the smaller MinTXID: L1 2-4 beats L0 4-4.
    `ltx/1/${h(2)}-${h(4)}.ltx`,
    `ltx/0/${h(5)}-${h(5)}.ltx`,
  ]);
  assertEquals(plan.txid, 5n);
});

Deno.test("planV05 with a TXID or a timestamp stops there (timestamps strictly before T)", () => {
  const byTxid = planV05(tree(), { kind: "txid", txid: 2n });
  assertEquals(byTxid.files.map((f) => [f.level, f.minTxid, f.maxTxid]), [[0, 1n, 1n], [
    0,
    2n,
    2n,
  ]]);
  // Before minute 5 the snapshot does not count; L1 2-4 (minute 4) extends furthest.
  const byTime = planV05(tree(), { kind: "timestamp", time: new Date(Date.UTC(2026, 0, 1, 0, 5)) });
  assertEquals(byTime.files.map((f) => [f.level, f.minTxid, f.maxTxid]), [[0, 1n, 1n], [
    1,
    2n,
    4n,
  ]]);
  const e = assertThrows(() => planV05(tree(), { kind: "txid", txid: 9n }), V05PlanError);
  assertEquals(e.reason, "not-reached");
});

Deno.test("planV05 fails on a gap and on a chain without a snapshot", () => {
  const gap = buildV05Replica([ltx(0, 1, 1, 1), ltx(0, 3, 3, 2)])!;
  const e1 = assertThrows(() => planV05(gap, { kind: "latest" }), V05PlanError);
  assertEquals(e1.reason, "gap");
  const noSnap = buildV05Replica([ltx(0, 2, 2, 1, true)])!;
  const e2 = assertThrows(() => planV05(noSnap, { kind: "latest" }), V05PlanError);
  assertEquals(e2.reason, "no-snapshot");
});
