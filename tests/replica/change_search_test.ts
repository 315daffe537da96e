/**
 * The change search on a real Litestream v0.3.13 replica of the populated Vaultwarden fixture
 * with a scripted incident over several WAL indexes: for each incident step, a query on what the
 * step changed lands exactly on the segment that holds the step's commit (the script's own
 * record), restoring few points, downloading every object once, and building the points it
 * reaches by moving forward byte-identical to `litestream restore`.
 */
import { createHash } from "node:crypto";
import { readOnlyQuery } from "../../src/lib/sqlite.ts";
import { searchChange } from "../../src/replica/change_search.ts";
import { v03RestorePoints } from "../../src/replica/points.ts";
import { listReplica } from "../../src/replica/listing.ts";
import { openStorage } from "../../src/storage/open.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { fileReplicaUrl, litestreamRestore } from "../support/litestream.ts";
import { makeTempDir } from "../support/tmp.ts";
import { replicateIncident, sha256File, STEP_QUERIES } from "../support/vaultwarden_incident.ts";

Deno.test("the change search lands on the segment of each incident step", async () => {
  await using dir = await makeTempDir();
  const r = await replicateIncident(dir.path, { minCheckpointPageCount: 4 });
  const storage = await openStorage({ type: "file", name: "file", path: r.replica });
  const listing = await listReplica(storage, { parallelism: 4 });
  const gen = listing.v03!.generations.at(-1)!;
  assert(
    new Set(gen.segments.map((s) => s.index)).size >= 3,
    `several WAL indexes: ${gen.segments.map((s) => s.key).join(" ")}`,
  );
  // Every segment boundary of the generation.
  const points = v03RestorePoints(gen);
  assertEquals(points.length, gen.segments.length);
  const at = (p: { index: number; offset?: number }) =>
    points.findIndex((q) => q.index === p.index && q.offset === p.offset);
  let searches = 0;
  for (const step of r.steps) {
    const first = step.segments[0];
    const expected = at(first);
    assert(expected > 0, `${step.name}: its segment is a point after the first`);
    const answer = (path: string) => JSON.stringify(readOnlyQuery(path, STEP_QUERIES[step.name]));
    const found = await searchChange(
      storage,
      listing,
      points,
      answer,
      `${dir.path}/search-${searches++}`,
      { parallelism: 4 },
    );
    assertEquals(found.after?.point, points[expected], `${step.name}: first point after`);
    assertEquals(found.before.point, points[expected - 1], `${step.name}: last point before`);
    assert(found.before.answer !== found.after?.answer);
    // Two ends plus one probe per halving; each object once.
    assert(
      found.restored <= 2 + Math.ceil(Math.log2(points.length)),
      `${step.name}: ${found.restored} points restored of ${points.length}`,
    );
    const objects = 1 + gen.segments.length;
    assert(found.downloads <= objects, `${found.downloads} downloads for ${objects} objects`);
  }

  // No change between the ends: the search says so after building only the two ends.
  const same = await searchChange(
    storage,
    listing,
    points,
    (path) => JSON.stringify(readOnlyQuery(path, "SELECT count(*) FROM organizations")),
    `${dir.path}/search-same`,
    { parallelism: 4 },
  );
  assertEquals(same.after, undefined);
  assertEquals(same.restored, 2);

  // A point reached by moving forward is the database `litestream restore` builds for it.
  const built = new Map<string, string>();
  await searchChange(
    storage,
    listing,
    points,
    (path, p) => {
      built.set(
        `${p.index}/${p.offset}`,
        createHash("sha256").update(Deno.readFileSync(path)).digest("hex"),
      );
      return "always the same";
    },
    `${dir.path}/search-bytes`,
    { parallelism: 4 },
  );
  const last = points.at(-1)!;
  const oracle = `${dir.path}/oracle.sqlite3`;
  const res = await litestreamRestore(["-o", oracle, fileReplicaUrl(r.replica)]);
  assertEquals(res.code, 0, res.stderr);
  assertEquals(built.get(`${last.index}/${last.offset}`), await sha256File(oracle));
});

Deno.test("the change search's query connection cannot write, attach or load extensions", async () => {
  await using dir = await makeTempDir();
  const db = `${dir.path}/x.sqlite3`;
  await Deno.copyFile(
    new URL("../fixtures/vaultwarden/vw-1.37.2-populated.sqlite3", import.meta.url).pathname,
    db,
  );
  const sha = await sha256File(db);
  assertEquals(readOnlyQuery(db, "SELECT count(*) FROM users"), [[6]]);
  for (
    const sql of [
      "DELETE FROM users",
      `ATTACH DATABASE '${dir.path}/other.db' AS other`,
      "SELECT load_extension('/nonexistent/ext')",
      "PRAGMA writable_schema = ON",
      "CREATE TABLE t (x)",
      "BEGIN",
    ]
  ) {
    let refused = false;
    try {
      readOnlyQuery(db, sql);
    } catch {
      refused = true;
    }
    assert(refused, `refused: ${sql}`);
  }
  assertEquals(await sha256File(db), sha, "the database is untouched");
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name), ["x.sqlite3"]);
});
