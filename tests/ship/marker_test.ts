/**
 * The replica marker as the container gate uses it, in-process on copies of the sample replica:
 * `mark` (at once, waiting, JSON), `restore --if-replica-exists` writing it, a lost backup refused
 * (exit 3) unless a fresh start is allowed, the older-point warning, and a failed marker write
 * that stays a warning.
 */
import { MARKER_KEY, readMarker } from "../../src/replica/marker.ts";
import type { ReplicaMarker } from "../../src/replica/marker.ts";
import { FileStorage } from "../../src/storage/file.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica/", import.meta.url).pathname;

const marker = (dir: string): Promise<ReplicaMarker | undefined> =>
  readMarker(new FileStorage(dir));

Deno.test("mark: exit 3 on an empty replica, at once or after --wait; one JSON document", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await Deno.mkdir(replica);
  const now = await runCli(["mark", `file://${replica}`]);
  assertEquals(now.code, 3, now.stderr);
  assertStringIncludes(
    now.stderr,
    `no restorable backup at file://${replica} (no backup there yet)`,
  );

  const waited = await runCli([
    "mark",
    `file://${replica}`,
    "--wait",
    "300ms",
    "--interval",
    "100ms",
    "--json",
  ]);
  assertEquals(waited.code, 3, waited.stderr);
  const doc = JSON.parse(waited.stdout) as { ok: boolean; exitCode: number; error: string };
  assertEquals([doc.ok, doc.exitCode], [false, 3]);
  assertStringIncludes(doc.error, "after waiting 300ms");
  assertEquals(await marker(replica), undefined);
});

Deno.test("mark --wait: marks the replica once a restorable point appears", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await Deno.mkdir(replica);
  const running = runCli([
    "mark",
    `file://${replica}`,
    "--wait",
    "10s",
    "--interval",
    "100ms",
    "--json",
  ]);
  await new Promise((r) => setTimeout(r, 300));
  await copyTree(SAMPLE, replica, [".litewarden"]); // "Litestream uploads its first snapshot"
  const r = await running;
  assertEquals(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { ok: boolean; marked: { newestPoint: string }[] };
  assertEquals(doc.ok, true);
  const m = await marker(replica);
  assert(m);
  assertEquals(m.newestPoint, doc.marked[0].newestPoint);
  assertStringIncludes(r.stderr, `litewarden: marked file://${replica}`);
});

Deno.test("restore writes the marker only as the gate (--if-replica-exists), keeping firstSeen", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica, [".litewarden"]);
  const url = `file://${replica}`;

  const plain = await runCli(["restore", url, "-o", dir.join("plain.db")]);
  assertEquals(plain.code, 0, plain.stderr);
  assertEquals(await marker(replica), undefined);

  const gate = await runCli(["restore", url, "-o", dir.join("a.db"), "--if-replica-exists"]);
  assertEquals(gate.code, 0, gate.stderr);
  const first = await marker(replica);
  assert(first && first.newestPoint);

  await new Promise((r) => setTimeout(r, 5));
  const again = await runCli(["restore", url, "-o", dir.join("b.db"), "-if-replica-exists"]);
  assertEquals(again.code, 0, again.stderr);
  const second = await marker(replica);
  assert(second);
  assertEquals(second.firstSeen, first.firstSeen);
  assert(second.lastSeen > first.lastSeen);
  assertEquals(second.newestPoint, first.newestPoint);
});

Deno.test("a lost backup is exit 3 naming where and when it was seen, unless a fresh start is allowed", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica, [".litewarden"]);
  const url = `file://${replica}`;
  assertEquals((await runCli(["mark", url])).code, 0);
  await Deno.remove(`${replica}/generations`, { recursive: true });
  const out = dir.join("db");

  const plain = await runCli(["restore", url, "-o", out]);
  assertEquals(plain.code, 3);
  assertStringIncludes(plain.stderr, `no backup found at ${url}, but one was seen there before`);
  assertStringIncludes(plain.stderr, "check the bucket and path");

  for (const extra of [[], ["--allow-fresh-start"]]) {
    // --allow-fresh-start only matters to the gate.
    const gate = await runCli(["restore", url, "-o", out, "--if-replica-exists", ...extra]);
    const expected = extra.length === 0 ? 3 : 0;
    assertEquals(gate.code, expected, gate.stderr);
    assertStringIncludes(gate.stderr, "last seen");
  }
  const refused = await runCli(["restore", url, "-o", out, "--if-replica-exists", "--json"]);
  assertEquals(refused.code, 3);
  const doc = JSON.parse(refused.stdout) as { ok: boolean; error: string };
  assertStringIncludes(doc.error, "refusing to start on an empty database");
  assertEquals(
    (await runCli(["restore", url, "-o", out, "--allow-fresh-start"])).code,
    3,
    "--allow-fresh-start without --if-replica-exists",
  );

  Deno.env.set("LITEWARDEN_ALLOW_FRESH_START", "1");
  try {
    const fresh = await runCli(["restore", url, "-o", out, "--if-replica-exists", "--json"]);
    assertEquals(fresh.code, 0, fresh.stderr);
    assertStringIncludes(fresh.stderr, "starting fresh (LITEWARDEN_ALLOW_FRESH_START=1)");
    const skipped = JSON.parse(fresh.stdout) as { skipped: string; seenBefore: unknown[] };
    assertEquals([skipped.skipped, skipped.seenBefore.length], ["no backup", 1]);
  } finally {
    Deno.env.delete("LITEWARDEN_ALLOW_FRESH_START");
  }
  await Deno.stat(`${replica}/${MARKER_KEY}`); // the marker stays
  let created = true;
  await Deno.stat(out).catch(() => (created = false));
  assert(!created, "nothing may be restored");
});

/** A copy of the sample replica whose marker saw a point in 2099: newer than anything in it. */
async function rolledBackReplica(dir: { join(p: string): string }): Promise<string> {
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica, [".litewarden"]);
  await Deno.mkdir(`${replica}/.litewarden`);
  await Deno.writeTextFile(
    `${replica}/${MARKER_KEY}`,
    JSON.stringify({
      firstSeen: "2026-01-01T00:00:00.000Z",
      lastSeen: "2099-01-02T00:00:00.000Z",
      newestPoint: "2099-01-01T00:00:00.000Z",
    }),
  );
  return replica;
}

Deno.test("the gate refuses a replica older than the one seen before (exit 5, both points)", async () => {
  await using dir = await makeTempDir();
  const replica = await rolledBackReplica(dir);
  const out = dir.join("db");
  const r = await runCli(["restore", `file://${replica}`, "-o", out, "--if-replica-exists"]);
  assertEquals(r.code, 5, r.stderr);
  assertMatch(
    r.stderr,
    /^litewarden: the newest restorable point at file:\/\/\S+ \(.*\(\d{4}-\d\d-\d\dT[\d:]+Z\)\) is older than the one seen there before \(.*newest restorable point then 2099-01-01T00:00:00Z\).*--accept-loss or set LITEWARDEN_ON_DAMAGE=restore-newest-intact\)$/,
  );
  assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing restored");
  assertEquals((await marker(replica))?.newestPoint, "2099-01-01T00:00:00.000Z");
  // mark (a restart with the database on disk) never moves the marker backwards either.
  const m = await runCli(["mark", `file://${replica}`]);
  assertEquals(m.code, 0, m.stderr);
  assertStringIncludes(m.stderr, "the marker keeps the newer point");
  assertEquals((await marker(replica))?.newestPoint, "2099-01-01T00:00:00.000Z");
});

Deno.test("restore --accept-loss warns when the backup is older than the one seen before", async () => {
  await using dir = await makeTempDir();
  const replica = await rolledBackReplica(dir);
  const r = await runCli([
    "restore",
    `file://${replica}`,
    "-o",
    dir.join("db"),
    "--if-replica-exists",
    "--accept-loss",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stderr, "is older than the one seen there before");
  assertStringIncludes(r.stderr, "part of the backup is gone");
  assertEquals((await marker(replica))?.firstSeen, "2026-01-01T00:00:00.000Z");
  assert(((await marker(replica))?.newestPoint ?? "") < "2099", "the loss is recorded");
});

Deno.test("a marker that cannot be written is a warning, not a failed restore", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica, [".litewarden"]);
  await Deno.writeTextFile(`${replica}/.litewarden`, "a file where the marker directory goes");
  const out = dir.join("db");
  const r = await runCli(["restore", `file://${replica}`, "-o", out, "--if-replica-exists"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stderr, "litewarden: warning: could not record the replica marker");
  assert((await Deno.stat(out)).size > 0);
});
