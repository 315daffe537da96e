/**
 * Prune plan → execute without the CLI: a plan made on one listing of a real file replica
 * directory, reconciled with a fresh listing, executed by `executePrunePlan` (object contents do
 * not matter to planning, so the files hold a few placeholder bytes).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";
import { LitewardenError } from "../../src/errors.ts";
import { listReplica } from "../../src/replica/listing.ts";
import { planPrune } from "../../src/replica/retention.ts";
import {
  DELETE_BATCH,
  deleteRequests,
  executePrunePlan,
  reconcile,
} from "../../src/replica/retention_apply.ts";
import { FileStorage } from "../../src/storage/file.ts";
import type { Storage } from "../../src/storage/storage.ts";

const G1 = "1111111111111111";
const G2 = "2222222222222222";
const NOW = new Date("2026-01-01T00:00:00Z");
const OPTS = { minAgeMs: 0, now: NOW };
const hex8 = (n: number) => n.toString(16).padStart(8, "0");
const snapKey = (g: string, i: number) => `generations/${g}/snapshots/${hex8(i)}.snapshot.lz4`;
const segKey = (g: string, i: number, o: number) =>
  `generations/${g}/wal/${hex8(i)}_${hex8(o)}.wal.lz4`;

async function put(root: string, key: string, minutes: number): Promise<void> {
  const path = `${root}/${key}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
  const t = new Date(Date.UTC(2025, 0, 1) + minutes * 60_000);
  await Deno.utime(path, t, t);
}

/**
 * Generation `g`: one snapshot per index (at minute `start + 10·i`) and `segs` segments per
 * index after it.
 */
async function generation(root: string, g: string, indexes: number, segs: number, start: number) {
  for (let i = 0; i < indexes; i++) {
    const t = start + 10 * i;
    await put(root, snapKey(g, i), t);
    for (let s = 0; s < segs; s++) await put(root, segKey(g, i, s * 4152), t + s + 1);
  }
}

async function keys(storage: Storage): Promise<string[]> {
  return (await Array.fromAsync(storage.list(""))).map((o) => o.key);
}

/** The real file storage, with every delete request recorded. */
function recording(storage: FileStorage): Storage & { requests: string[][] } {
  const requests: string[][] = [];
  return {
    location: storage.location,
    list: (p) => storage.list(p),
    get: (k, r) => storage.get(k, r),
    put: (k, d) => storage.put(k, d),
    putStream: (k, src, o) => storage.putStream(k, src, o),
    delete: (ks) => {
      requests.push(ks);
      return storage.delete(ks);
    },
    requests,
  };
}

Deno.test("execute deletes exactly the plan, in its order, at most DELETE_BATCH keys a request", async () => {
  await using tmp = await makeTempDir();
  await generation(tmp.path, G1, 30, 4, 0); // 150 objects, none kept
  await generation(tmp.path, G2, 3, 3, 1000);
  const storage = recording(new FileStorage(tmp.path));
  const before = await keys(storage);
  const plan = planPrune(await listReplica(storage), { last: 1 }, OPTS);
  assertEquals(plan.groups.map((g) => g.reason), [
    { kind: "v03-generation", generation: G1 },
    { kind: "v03-unkept", generation: G2, oldestKeptIndex: 2 },
  ]);
  assertEquals(plan.deletions.length, 150 + 2 * 4);
  const fresh = reconcile(plan, await listReplica(storage), storage.location);
  assertEquals(fresh.deletions, plan.deletions);
  let reported = 0;
  const deleted = await executePrunePlan(storage, fresh, (n) => reported = n);
  assertEquals([deleted, reported], [plan.deletions.length, plan.deletions.length]);
  assertEquals(storage.requests.flat(), plan.deletions.map((d) => d.key));
  assertEquals(storage.requests.length, deleteRequests(plan));
  assert(storage.requests.every((r) => r.length <= DELETE_BATCH));
  const gone = new Set(plan.deletions.map((d) => d.key));
  assertEquals(await keys(storage), before.filter((k) => !gone.has(k)));
  // Made again on what is left, the plan deletes nothing.
  assertEquals(planPrune(await listReplica(storage), { last: 1 }, OPTS).deletions, []);
});

/** G1 (2 indexes) and G2 (4 indexes), 2 segments per index, planned with `--keep-last 2`. */
async function keepLastTwo(root: string) {
  await generation(root, G1, 2, 2, 0);
  await generation(root, G2, 4, 2, 1000);
  const storage = new FileStorage(root);
  return { storage, plan: planPrune(await listReplica(storage), { last: 2 }, OPTS) };
}

Deno.test("reconcile: a kept point that vanished since planning stops before any delete", async () => {
  await using tmp = await makeTempDir();
  const { storage, plan } = await keepLastTwo(tmp.path);
  const keptOld = snapKey(G2, 2);
  assert(plan.points.find((p) => p.key === keptOld)?.kept);
  await Deno.remove(`${tmp.path}/${keptOld}`); // someone else's retention
  const err = await assertRejects(
    async () => reconcile(plan, await listReplica(storage), "file:///x"),
    LitewardenError,
  );
  assertEquals(err.exitCode, 5);
  assertStringIncludes(err.message, `${keptOld} disappeared`);
  assertStringIncludes(err.message, "nothing was deleted");
});

Deno.test("reconcile: objects that appeared since planning are not deleted, nor what they would drop", async () => {
  await using tmp = await makeTempDir();
  const { storage, plan } = await keepLastTwo(tmp.path);
  // A running Litestream writes index 4 with a snapshot: `--keep-last 2` on the fresh listing
  // would now drop snapshot 2 and the WAL of index 2, which the first plan keeps.
  await put(tmp.path, snapKey(G2, 4), 1040);
  await put(tmp.path, segKey(G2, 4, 0), 1041);
  const fresh = await listReplica(storage);
  const again = planPrune(fresh, { last: 2 }, OPTS);
  assert(again.deletions.some((d) => d.key === snapKey(G2, 2)));
  const agreed = reconcile(plan, fresh, storage.location);
  assertEquals(agreed.deletions, plan.deletions);
  await executePrunePlan(storage, agreed);
  const left = await keys(storage);
  for (const k of [snapKey(G2, 2), segKey(G2, 2, 0), segKey(G2, 2, 4152), snapKey(G2, 4)]) {
    assert(left.includes(k), k);
  }
  assertEquals(left.filter((k) => k.includes(G1)), []);
});

Deno.test("reconcile: a planned object already gone drops out; the rest keeps its order", async () => {
  await using tmp = await makeTempDir();
  await generation(tmp.path, G1, 3, 3, 0);
  await generation(tmp.path, G2, 2, 1, 1000);
  const storage = new FileStorage(tmp.path);
  const plan = planPrune(await listReplica(storage), { last: 1 }, OPTS);
  const victim = segKey(G1, 1, 4152);
  await Deno.remove(`${tmp.path}/${victim}`);
  const agreed = reconcile(plan, await listReplica(storage), storage.location);
  assertEquals(
    agreed.deletions.map((d) => d.key),
    plan.deletions.map((d) => d.key).filter((k) => k !== victim),
  );
  assertEquals(agreed.bytesFreed, plan.bytesFreed - 3);
});
