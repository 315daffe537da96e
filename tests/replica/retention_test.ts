/**
 * The prune planner on synthetic listings: restic-style keep rules, what a kept point needs, the
 * current v0.3 generation, --min-age, v0.5 levels, and that any prefix of the (oldest first)
 * deletions leaves every kept point planning exactly as before.
 */
import { assert, assertEquals } from "../support/assert.ts";
import type { ReplicaListing } from "../../src/replica/listing.ts";
import { applyKeepRules, planPrune, v03TreeRemoval } from "../../src/replica/retention.ts";
import { LitewardenError } from "../../src/errors.ts";
import type { KeepRules, PrunePlan, RetentionPoint } from "../../src/replica/retention.ts";
import { buildV03Replica, planV03 } from "../../src/replica/v03.ts";
import { allLtxFiles, buildV05Replica, planV05 } from "../../src/replica/v05.ts";
import type { ObjectInfo } from "../../src/storage/storage.ts";
import type { V03Point, V05Point } from "../../src/replica/restore_point.ts";

const HOUR = 3_600_000;
const NOW = new Date("2026-11-23T12:00:00Z");
const G1 = "1111111111111111";
const G2 = "2222222222222222";
const G3 = "3333333333333333";

// ---------- keep rules ----------

/** Points at the given times (newest first, as planPrune hands them over). */
function pointsAt(isos: string[]): RetentionPoint[] {
  return isos
    .map((iso, i): RetentionPoint => ({
      point: { format: "v0.3", generation: G1, index: i, time: new Date(iso) },
      key: iso,
      kept: false,
      reasons: [],
    }))
    .sort((a, b) => b.point.time.getTime() - a.point.time.getTime());
}

/** The kept points (by time) and the rules that kept them. */
function keep(rules: KeepRules, isos: string[]): Record<string, string[]> {
  const points = pointsAt(isos);
  applyKeepRules(points, rules);
  for (const p of points) assertEquals(p.kept, p.reasons.length > 0);
  return Object.fromEntries(points.filter((p) => p.kept).map((p) => [p.key, p.reasons]));
}

Deno.test("keep rules: the newest point is kept even when no rule keeps anything", () => {
  const isos = ["2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z", "2025-01-02T00:00:00Z"];
  assertEquals(keep({}, isos), { "2025-01-03T00:00:00Z": ["newest"] });
  assertEquals(keep({ last: 0, daily: 0 }, isos), { "2025-01-03T00:00:00Z": ["newest"] });
  assertEquals(keep({ last: 5 }, []), {});
});

Deno.test("keep rules: --keep-last keeps the n newest points", () => {
  assertEquals(
    keep({ last: 2 }, ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"]),
    { "2025-01-03T00:00:00Z": ["newest", "last"], "2025-01-02T00:00:00Z": ["last"] },
  );
});

Deno.test("keep rules: --keep-hourly counts hours that have points, newest point of each", () => {
  const isos = [
    "2025-03-01T10:05:00Z",
    "2025-03-01T10:50:00Z",
    "2025-03-01T11:10:00Z",
    "2025-03-01T11:40:00Z",
    "2025-03-01T13:00:00Z", // nothing at 12:xx: that hour does not count
  ];
  assertEquals(keep({ hourly: 3 }, isos), {
    "2025-03-01T13:00:00Z": ["newest", "hourly"],
    "2025-03-01T11:40:00Z": ["hourly"],
    "2025-03-01T10:50:00Z": ["hourly"],
  });
});

Deno.test("keep rules: --keep-daily uses UTC days and skips days without points", () => {
  const isos = [
    "2025-03-01T08:00:00Z",
    "2025-03-01T20:00:00Z",
    "2025-03-03T09:00:00Z",
    "2025-03-10T23:59:59Z",
    "2025-03-11T00:00:00Z",
  ];
  assertEquals(keep({ daily: 3 }, isos), {
    "2025-03-11T00:00:00Z": ["newest", "daily"],
    "2025-03-10T23:59:59Z": ["daily"],
    "2025-03-03T09:00:00Z": ["daily"],
  });
  assertEquals(keep({ daily: 9 }, isos)["2025-03-01T20:00:00Z"], ["daily"]);
  assertEquals(keep({ daily: 9 }, isos)["2025-03-01T08:00:00Z"], undefined);
});

Deno.test("keep rules: --keep-weekly uses ISO weeks (Monday first, week-years, week 53)", () => {
  const isos = [
    "2024-12-28T12:00:00Z", // Saturday, 2024-W52
    "2024-12-30T12:00:00Z", // Monday, 2025-W01
    "2025-01-05T23:00:00Z", // Sunday, 2025-W01
    "2025-01-06T01:00:00Z", // Monday, 2025-W02
  ];
  assertEquals(keep({ weekly: 2 }, isos), {
    "2025-01-06T01:00:00Z": ["newest", "weekly"],
    "2025-01-05T23:00:00Z": ["weekly"],
  });
  assertEquals(Object.keys(keep({ weekly: 3 }, isos)).sort(), [
    "2024-12-28T12:00:00Z",
    "2025-01-05T23:00:00Z",
    "2025-01-06T01:00:00Z",
  ]);
  // 2026 has 53 ISO weeks: 2026-12-28 … 2027-01-03 is 2026-W53.
  assertEquals(
    keep({ weekly: 5 }, ["2026-12-28T00:00:00Z", "2027-01-03T23:00:00Z", "2027-01-04T00:00:00Z"]),
    { "2027-01-04T00:00:00Z": ["newest", "weekly"], "2027-01-03T23:00:00Z": ["weekly"] },
  );
});

Deno.test("keep rules: --keep-monthly keeps the newest point of each month", () => {
  const isos = [
    "2025-01-15T00:00:00Z",
    "2025-01-31T23:00:00Z",
    "2025-02-01T00:30:00Z",
    "2025-04-02T00:00:00Z",
  ];
  assertEquals(keep({ monthly: 2 }, isos), {
    "2025-04-02T00:00:00Z": ["newest", "monthly"],
    "2025-02-01T00:30:00Z": ["monthly"],
  });
  assertEquals(keep({ monthly: 3 }, isos)["2025-01-31T23:00:00Z"], ["monthly"]);
});

Deno.test("keep rules: --keep-within counts back from the newest point, not from now", () => {
  const isos = [
    "2025-05-29T23:59:59Z",
    "2025-05-30T00:00:00Z",
    "2025-05-31T12:00:00Z",
    "2025-06-01T00:00:00Z",
  ];
  // Everything is more than a year older than NOW; counted from now nothing would stay.
  assertEquals(keep({ withinMs: 48 * HOUR }, isos), {
    "2025-06-01T00:00:00Z": ["newest", "within"],
    "2025-05-31T12:00:00Z": ["within"],
    "2025-05-30T00:00:00Z": ["within"],
  });
  assertEquals(keep({ withinMs: 0 }, isos), { "2025-06-01T00:00:00Z": ["newest", "within"] });
});

Deno.test("keep rules: a point is kept if any rule keeps it, with every reason listed", () => {
  const isos = [
    "2025-01-10T10:00:00Z",
    "2025-02-20T10:00:00Z",
    "2025-02-21T08:00:00Z",
    "2025-02-21T09:00:00Z",
    "2025-02-21T10:00:00Z",
  ];
  assertEquals(keep({ last: 2, daily: 2, monthly: 2 }, isos), {
    "2025-02-21T10:00:00Z": ["newest", "last", "daily", "monthly"],
    "2025-02-21T09:00:00Z": ["last"],
    "2025-02-20T10:00:00Z": ["daily"],
    "2025-01-10T10:00:00Z": ["monthly"],
  });
});

// ---------- v0.3 listings ----------

const hex8 = (n: number) => n.toString(16).padStart(8, "0");

function snap(gen: string, index: number, iso: string, size = 1000): ObjectInfo {
  return {
    key: `generations/${gen}/snapshots/${hex8(index)}.snapshot.lz4`,
    size,
    modified: new Date(iso),
  };
}

function seg(gen: string, index: number, offset: number, iso: string, size = 100): ObjectInfo {
  return {
    key: `generations/${gen}/wal/${hex8(index)}_${hex8(offset)}.wal.lz4`,
    size,
    modified: new Date(iso),
  };
}

function listingOf(objects: ObjectInfo[], headerTimes = new Map<string, Date>()): ReplicaListing {
  const v05 = buildV05Replica(objects);
  if (v05) { for (const f of allLtxFiles(v05)) f.time = headerTimes.get(f.key) ?? f.time; }
  return {
    location: "file:///synthetic",
    v03: buildV03Replica(objects),
    v05,
    ltxMeta: new Map(),
    ignored: [],
    objectCount: objects.length,
    damaged: [],
  };
}

/** Two generations: G1 (older) and G2 (current), several snapshots each. */
function twoGenerations(): ObjectInfo[] {
  return [
    snap(G1, 0, "2025-01-01T00:00:00Z"),
    seg(G1, 0, 0, "2025-01-01T00:00:01Z"),
    seg(G1, 0, 4152, "2025-01-01T01:00:00Z"),
    seg(G1, 1, 0, "2025-01-01T12:00:00Z"),
    snap(G1, 2, "2025-01-02T00:00:00Z"),
    seg(G1, 2, 0, "2025-01-02T00:00:01Z"),
    seg(G1, 3, 0, "2025-01-03T00:00:00Z"),
    snap(G2, 0, "2025-02-01T00:00:00Z"),
    seg(G2, 0, 0, "2025-02-01T00:00:01Z"),
    snap(G2, 1, "2025-02-02T00:00:00Z"),
    seg(G2, 1, 0, "2025-02-02T00:00:01Z"),
    seg(G2, 2, 0, "2025-02-02T12:00:00Z"),
    snap(G2, 3, "2025-02-03T00:00:00Z"),
    seg(G2, 3, 0, "2025-02-03T00:00:01Z"),
    seg(G2, 3, 4152, "2025-02-03T06:00:00Z"),
  ];
}

const keysOf = (objects: { key: string }[]) => objects.map((o) => o.key);
// The point's format is known from the tree each test builds.
const v03Of = (p: RetentionPoint) => p.point as V03Point;
const v05Of = (p: RetentionPoint) => p.point as V05Point;

const kept = (plan: PrunePlan) =>
  Object.fromEntries(plan.points.filter((p) => p.kept).map((p) => [p.key, p.reasons]));

/** Every object a v0.3 restore of the point would read: by timestamp, and by index + generation. */
function v03Needs(listing: ReplicaListing, p: RetentionPoint): string[][] {
  const v03 = listing.v03!;
  return [
    planV03(v03, { kind: "timestamp", time: p.point.time }),
    planV03(v03, { kind: "index", index: v03Of(p).index }, v03Of(p).generation),
  ].map((plan) => [
    plan.generation.id,
    plan.snapshot.key,
    ...plan.indices.flatMap((g) => g.segments.map((s) => s.key)),
  ]);
}

/** The v0.5 files a restore of the point reads: by TXID, and by a timestamp just after it. */
function v05Needs(listing: ReplicaListing, p: RetentionPoint): string[][] {
  const v05 = listing.v05!;
  const txid = BigInt(`0x${v05Of(p).txid}`);
  return [
    planV05(v05, { kind: "txid", txid }),
    planV05(v05, { kind: "timestamp", time: new Date(p.point.time.getTime() + 1) }),
  ].map((plan) => plan.files.map((f) => f.key));
}

function needs(listing: ReplicaListing, p: RetentionPoint): string[][] {
  return p.point.format === "v0.3" ? v03Needs(listing, p) : v05Needs(listing, p);
}

/**
 * Applies every prefix of the plan's deletions (an interrupted prune) and the whole of them: each
 * kept point must plan exactly the same objects as before, and planning again deletes nothing.
 */
function assertPruneIsSafe(
  objects: ObjectInfo[],
  rules: KeepRules,
  plan: PrunePlan,
  opts = { minAgeMs: 0, now: NOW },
  headerTimes = new Map<string, Date>(),
): void {
  const before = listingOf(objects, headerTimes);
  const keptPoints = plan.points.filter((p) => p.kept);
  const expected = new Map(keptPoints.map((p) => [p.key, needs(before, p)]));
  const allExpected = new Map(plan.points.map((p) => [p.key, needs(before, p)]));
  for (let n = 0; n <= plan.deletions.length; n++) {
    const gone = new Set(keysOf(plan.deletions.slice(0, n)));
    const left = listingOf(objects.filter((o) => !gone.has(o.key)), headerTimes);
    for (const p of keptPoints) {
      assertEquals(needs(left, p), expected.get(p.key), `${p.key} after ${n} deletions`);
    }
    // Every point still listed, kept or not, restores exactly as before.
    for (const p of plan.points.filter((x) => !gone.has(x.key))) {
      assertEquals(needs(left, p), allExpected.get(p.key), `listed ${p.key} after ${n} deletions`);
    }
    // Litestream v0.3.13 refuses a whole generation if any of its WAL indexes lacks offset 0.
    for (const g of left.v03?.generations ?? []) {
      for (const s of g.segments) {
        const first = g.segments.find((x) => x.index === s.index)!;
        assertEquals(first.offset, 0, `${g.id} index ${s.index} after ${n} deletions`);
      }
    }
  }
  const gone = new Set(keysOf(plan.deletions));
  const again = planPrune(listingOf(objects.filter((o) => !gone.has(o.key)), headerTimes), rules, {
    ...opts,
  });
  assertEquals(keysOf(again.deletions), [], "a second prune deletes nothing");
  assertEquals(kept(again), kept(plan));
}

Deno.test("v0.3: a generation without kept points goes whole; a kept one keeps its WAL from the point on", () => {
  const objects = twoGenerations();
  const rules = { last: 1 };
  const plan = planPrune(listingOf(objects), rules, { minAgeMs: 0, now: NOW });
  assertEquals(kept(plan), { [snap(G2, 3, "").key]: ["newest", "last"] });
  assertEquals(plan.points.length, 5);
  // All of G1, then G2 below index 3 (groups by their newest object); within a generation index
  // by index, its snapshot first, then its segments from the highest offset down.
  assertEquals(keysOf(plan.deletions), [
    snap(G1, 0, "").key,
    seg(G1, 0, 4152, "").key,
    seg(G1, 0, 0, "").key,
    seg(G1, 1, 0, "").key,
    snap(G1, 2, "").key,
    seg(G1, 2, 0, "").key,
    seg(G1, 3, 0, "").key,
    snap(G2, 0, "").key,
    seg(G2, 0, 0, "").key,
    snap(G2, 1, "").key,
    seg(G2, 1, 0, "").key,
    seg(G2, 2, 0, "").key,
  ]);
  assertEquals(plan.bytesFreed, 4 * 1000 + 8 * 100);
  assertEquals(plan.protectedYoung, 0);
  assertPruneIsSafe(objects, rules, plan);
});

Deno.test("v0.3: a kept point in an old generation keeps its snapshot and later WAL only", () => {
  const objects = twoGenerations();
  const rules = { daily: 4 };
  const plan = planPrune(listingOf(objects), rules, { minAgeMs: 0, now: NOW });
  assertEquals(kept(plan), {
    [snap(G2, 3, "").key]: ["newest", "daily"],
    [snap(G2, 1, "").key]: ["daily"],
    [snap(G2, 0, "").key]: ["daily"],
    [snap(G1, 2, "").key]: ["daily"],
  });
  assertEquals(keysOf(plan.deletions), [
    snap(G1, 0, "").key,
    seg(G1, 0, 4152, "").key,
    seg(G1, 0, 0, "").key,
    seg(G1, 1, 0, "").key,
  ]);
  assertPruneIsSafe(objects, rules, plan);
  // A snapshot between two kept ones goes, its WAL stays (the older kept point replays it).
  const weekly = planPrune(listingOf(objects), { last: 1, monthly: 2 }, { minAgeMs: 0, now: NOW });
  assertEquals(Object.keys(kept(weekly)).sort(), [snap(G1, 2, "").key, snap(G2, 3, "").key]);
  assertEquals(keysOf(weekly.deletions), [
    snap(G1, 0, "").key,
    seg(G1, 0, 4152, "").key,
    seg(G1, 0, 0, "").key,
    seg(G1, 1, 0, "").key,
    snap(G2, 0, "").key,
    seg(G2, 0, 0, "").key,
    snap(G2, 1, "").key,
    seg(G2, 1, 0, "").key,
    seg(G2, 2, 0, "").key,
  ]);
  assertPruneIsSafe(objects, { last: 1, monthly: 2 }, weekly);
});

Deno.test("v0.3: the current generation's newest snapshot and its WAL are kept whatever the rules", () => {
  // G3 is current (its WAL is the newest object) although G1 holds the newest snapshot.
  const objects = [
    snap(G1, 0, "2025-03-01T00:00:00Z"),
    seg(G1, 0, 0, "2025-03-01T00:00:01Z"),
    snap(G1, 1, "2025-03-10T00:00:00Z"),
    seg(G1, 1, 0, "2025-03-10T01:00:00Z"),
    snap(G3, 0, "2025-03-08T00:00:00Z"),
    seg(G3, 0, 0, "2025-03-08T00:00:01Z"),
    snap(G3, 4, "2025-03-09T00:00:00Z"),
    seg(G3, 4, 0, "2025-03-09T00:00:01Z"),
    seg(G3, 5, 0, "2025-03-11T00:00:00Z"),
  ];
  const rules = { last: 1 };
  const plan = planPrune(listingOf(objects), rules, { minAgeMs: 0, now: NOW });
  assertEquals(kept(plan), {
    [snap(G1, 1, "").key]: ["newest", "last"],
    [snap(G3, 4, "").key]: ["current-chain"],
  });
  assertEquals(keysOf(plan.deletions), [
    snap(G1, 0, "").key,
    seg(G1, 0, 0, "").key,
    snap(G3, 0, "").key,
    seg(G3, 0, 0, "").key,
  ]);
  assertPruneIsSafe(objects, rules, plan);
});

Deno.test("v0.3: a current generation without a snapshot yet is not deleted", () => {
  const objects = [
    snap(G1, 0, "2025-03-01T00:00:00Z"),
    seg(G1, 0, 0, "2025-03-01T00:00:01Z"),
    snap(G1, 1, "2025-03-02T00:00:00Z"),
    seg(G1, 1, 0, "2025-03-02T00:00:01Z"),
    seg(G2, 0, 0, "2025-03-03T00:00:00Z"),
    seg(G2, 0, 4152, "2025-03-03T00:01:00Z"),
  ];
  const plan = planPrune(listingOf(objects), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(keysOf(plan.deletions), [snap(G1, 0, "").key, seg(G1, 0, 0, "").key]);
  // An old generation without any snapshot is not restorable and goes whole.
  const orphan = [...objects, seg(G3, 7, 0, "2025-02-01T00:00:00Z")];
  const plan2 = planPrune(listingOf(orphan), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(keysOf(plan2.deletions), [
    seg(G3, 7, 0, "").key,
    snap(G1, 0, "").key,
    seg(G1, 0, 0, "").key,
  ]);
});

Deno.test("v0.3: objects younger than --min-age stay and are counted", () => {
  const objects = twoGenerations();
  const opts = { minAgeMs: 36 * HOUR, now: new Date("2025-02-03T12:00:00Z") };
  const plan = planPrune(listingOf(objects), { last: 1 }, opts);
  // Younger than 2025-02-02T00:00:00Z: G2's WAL of indexes 1 and 2 (the snapshot of index 1 is
  // exactly at the limit and goes).
  assertEquals(plan.protectedYoung, 2);
  assertEquals(plan.deletions.length, 10);
  assert(!keysOf(plan.deletions).includes(seg(G2, 1, 0, "").key));
  assert(!keysOf(plan.deletions).includes(seg(G2, 2, 0, "").key));
  assert(keysOf(plan.deletions).includes(snap(G2, 1, "").key));
  assertEquals(plan.bytesFreed, plan.deletions.reduce((n, d) => n + d.size, 0));
  assertPruneIsSafe(objects, { last: 1 }, plan, opts);
});

Deno.test("groups go by their newest object, equal times by generation; a snapshot before its WAL", () => {
  const t = "2025-01-01T00:00:00Z";
  const objects = [
    snap(G2, 0, t),
    seg(G2, 0, 0, t),
    snap(G1, 0, t),
    seg(G1, 0, 0, "2024-12-31T00:00:00Z"),
    snap(G3, 0, "2025-06-01T00:00:00Z"),
  ];
  const plan = planPrune(listingOf(objects), { last: 1 }, { minAgeMs: 0, now: NOW });
  // G1's segment is older than its snapshot, yet goes after it: a snapshot left without the
  // first segment of its index would not restore.
  assertEquals(keysOf(plan.deletions), [
    snap(G1, 0, "").key,
    seg(G1, 0, 0, "").key,
    snap(G2, 0, "").key,
    seg(G2, 0, 0, "").key,
  ]);
});

Deno.test("v0.3: --v03-tree plans the whole v0.3 tree away and no v0.3 points", () => {
  const objects = [...twoGenerations(), ...v05Tree().objects];
  const plan = planPrune(listingOf(objects, v05Tree().times), { last: Number.MAX_SAFE_INTEGER }, {
    minAgeMs: 0,
    now: NOW,
    dropV03Tree: true,
  });
  assert(plan.points.every((p) => p.point.format === "v0.5"));
  const v03Keys = keysOf(twoGenerations()).sort();
  assertEquals(keysOf(plan.deletions).filter((k) => k.startsWith("generations/")).sort(), v03Keys);
});

// ---------- v0.5 listings ----------

const hex16 = (n: number) => n.toString(16).padStart(16, "0");

function ltx(level: number, min: number, max: number, hours: number, size = 50): ObjectInfo {
  return {
    key: `ltx/${level}/${hex16(min)}-${hex16(max)}.ltx`,
    size,
    modified: new Date(Date.UTC(2025, 0, 1) + hours * HOUR),
  };
}

/**
 * L0 TXIDs 1…12 (one per hour), L1 compactions 1-4, 5-8, 9-12, L2 1-8, snapshots 1-4, 1-8, 1-12
 * half an hour after their last TXID. Header times equal the object times.
 */
function v05Tree(): { objects: ObjectInfo[]; times: Map<string, Date> } {
  const objects: ObjectInfo[] = [];
  for (let i = 1; i <= 12; i++) objects.push(ltx(0, i, i, i));
  objects.push(ltx(1, 1, 4, 4), ltx(1, 5, 8, 8), ltx(1, 9, 12, 12), ltx(2, 1, 8, 8));
  objects.push(ltx(9, 1, 4, 4.5, 500), ltx(9, 1, 8, 8.5, 500), ltx(9, 1, 12, 12.5, 500));
  return { objects, times: new Map() };
}

Deno.test("v0.5: dropped snapshots go with the files every kept snapshot covers", () => {
  const { objects } = v05Tree();
  const plan = planPrune(listingOf(objects), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(kept(plan), { [ltx(9, 1, 12, 0).key]: ["newest", "last"] });
  assertEquals(plan.points.map((p) => v05Of(p).txid), [hex16(12), hex16(8), hex16(4)]);
  assertEquals(
    keysOf(plan.deletions).sort(),
    [
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i) => ltx(0, i, i, 0).key),
      // L1 only up to what L2 holds (8); L2 1-8 is the last file of its level.
      ltx(1, 1, 4, 0).key,
      ltx(1, 5, 8, 0).key,
      ltx(9, 1, 4, 0).key,
      ltx(9, 1, 8, 0).key,
    ].sort(),
  );
  assertPruneIsSafe(objects, { last: 1 }, plan);

  const two = planPrune(listingOf(objects), { last: 2 }, { minAgeMs: 0, now: NOW });
  assertEquals(Object.keys(kept(two)).sort(), [ltx(9, 1, 12, 0).key, ltx(9, 1, 8, 0).key].sort());
  assertEquals(
    keysOf(two.deletions).sort(),
    [
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => ltx(0, i, i, 0).key),
      ltx(1, 1, 4, 0).key,
      ltx(1, 5, 8, 0).key,
      ltx(9, 1, 4, 0).key,
    ].sort(),
  );
  assertPruneIsSafe(objects, { last: 2 }, two);
});

Deno.test("v0.5: the last file of each level stays even when a kept snapshot covers it", () => {
  const objects = [
    ...[1, 2, 3, 4].map((i) => ltx(0, i, i, i)),
    ltx(1, 1, 4, 4),
    ltx(9, 1, 2, 2.5),
    ltx(9, 1, 4, 4.5),
  ];
  const plan = planPrune(listingOf(objects), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(keysOf(plan.deletions), [
    ltx(0, 1, 1, 0).key,
    ltx(0, 2, 2, 0).key,
    ltx(9, 1, 2, 0).key,
    ltx(0, 3, 3, 0).key,
  ]);
  // The newest snapshot by time is kept; the last snapshot in listing order stays regardless.
  const skewed = new Map([[ltx(9, 1, 2, 0).key, new Date(Date.UTC(2025, 5, 1))]]);
  const plan2 = planPrune(listingOf(objects, skewed), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(kept(plan2), { [ltx(9, 1, 2, 0).key]: ["newest", "last"] });
  assertEquals(keysOf(plan2.deletions), [ltx(0, 1, 1, 0).key, ltx(0, 2, 2, 0).key]);
});

Deno.test("v0.5: level-n files not yet compacted into level n+1 stay (Litestream's next compaction needs them)", () => {
  // L1 holds TXIDs up to 8 only; L0 9…11 are older than the kept snapshot 1-12 but not yet in L1.
  const objects = [
    ...Array.from({ length: 12 }, (_, i) => ltx(0, i + 1, i + 1, i + 1)),
    ltx(1, 1, 4, 4),
    ltx(1, 5, 8, 8),
    ltx(9, 1, 12, 12.5),
  ];
  const plan = planPrune(listingOf(objects), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(
    keysOf(plan.deletions).sort(),
    [...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => ltx(0, i, i, 0).key), ltx(1, 1, 4, 0).key].sort(),
  );
  // What Litestream's next L1 compaction reads (L0 files above L1's highest TXID) is contiguous.
  const gone = new Set(keysOf(plan.deletions));
  const left = listingOf(objects.filter((o) => !gone.has(o.key))).v05!;
  const pending = left.levels.get(0)!.filter((f) => f.minTxid > 8n).map((f) => Number(f.minTxid));
  assertEquals(pending, [9, 10, 11, 12]);
  assertPruneIsSafe(objects, { last: 1 }, plan);
});

Deno.test("v0.5: rules use the LTX header time, --min-age the object time", () => {
  const { objects } = v05Tree();
  // Header times as written; object times as if the files had just been copied.
  const times = new Map(objects.map((o) => [o.key, o.modified]));
  const copied = objects.map((o) => ({ ...o, modified: new Date(NOW.getTime() - 60_000) }));
  const young = planPrune(listingOf(copied, times), { withinMs: 4 * HOUR }, {
    minAgeMs: HOUR,
    now: NOW,
  });
  assertEquals(
    Object.keys(kept(young)).sort(),
    [ltx(9, 1, 12, 0).key, ltx(9, 1, 8, 0).key].sort(),
  );
  assertEquals(young.deletions, []);
  assertEquals(young.protectedYoung, 11);
  const old = planPrune(listingOf(copied, times), { withinMs: 4 * HOUR }, {
    minAgeMs: 0,
    now: NOW,
  });
  assertEquals(old.deletions.length, 11);
  assertPruneIsSafe(copied, { withinMs: 4 * HOUR }, old, { minAgeMs: 0, now: NOW }, times);
});

Deno.test("v0.5 without snapshots: nothing is a point and nothing goes", () => {
  const objects = [1, 2, 3].map((i) => ltx(0, i, i, i));
  const plan = planPrune(listingOf(objects), { last: 1 }, { minAgeMs: 0, now: NOW });
  assertEquals(plan.points, []);
  assertEquals(plan.deletions, []);
});

Deno.test("v0.3 and v0.5 side by side: each history keeps its own newest point", () => {
  const objects = [...twoGenerations(), ...v05Tree().objects];
  const rules = { last: 1 };
  const plan = planPrune(listingOf(objects), rules, { minAgeMs: 0, now: NOW });
  assertEquals(Object.keys(kept(plan)).sort(), [snap(G2, 3, "").key, ltx(9, 1, 12, 0).key]);
  assertPruneIsSafe(objects, rules, plan);
});

Deno.test("--v03-tree: nothing to remove, only backup, newer than v0.5, or removable after a v0.5 restore", () => {
  const kindOf = (objects: ObjectInfo[]) => {
    try {
      return v03TreeRemoval(listingOf(objects), "file:///x");
    } catch (err) {
      if (!(err instanceof LitewardenError)) throw err;
      return `${err.kind}: ${err.message}`;
    }
  };
  assertEquals(kindOf(v05Tree().objects), "absent");
  assert(kindOf(twoGenerations()).startsWith("usage: --v03-tree needs a v0.5"));
  // twoGenerations ends in February 2025; the v0.5 tree is from January 2025.
  assert(kindOf([...twoGenerations(), ...v05Tree().objects]).startsWith("refused: the v0.3"));
  const older = twoGenerations().map((o) => ({
    ...o,
    modified: new Date(o.modified.getTime() - 365 * 24 * HOUR),
  }));
  assertEquals(kindOf([...older, ...v05Tree().objects]), "prove-v05");
});
