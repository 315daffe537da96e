/**
 * `snapshot-diff --when SQL` and `--item-gone UUID` on real Litestream v0.3.13 replicas (file and
 * S3, written at the same time) of the populated Vaultwarden fixture after a scripted incident
 * over several WAL indexes: each lands on exactly the segment the script recorded for its step,
 * with flags that restore the two points; the item-gone answer's recover line brings the item
 * back. Also on real v0.5 LTX files, TXID by TXID.
 */
import { readOnlyQuery } from "../../src/lib/sqlite.ts";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { startS3Server } from "../support/s3_server.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";
import {
  GONE,
  replicateIncident,
  s3IncidentReplica,
  STEP_QUERIES,
} from "../support/vaultwarden_incident.ts";
import type { SegmentName } from "../support/vaultwarden_incident.ts";

interface PointDoc {
  format: string;
  generation: string | null;
  index: number | null;
  offset?: number;
  txid: string | null;
}
interface WhenDoc {
  when: {
    query: string;
    changed: boolean;
    before: { point: PointDoc; restoreFlags: string; answer: string };
    after: { point: PointDoc; restoreFlags: string; answer: string } | null;
    points: number;
    restored: number;
    downloads: number;
  };
}

const hex = (n: number) => n.toString(16).padStart(8, "0");
const at = (p: PointDoc) => `${p.index}/${p.offset}`;
const seg = (s: SegmentName) => `${s.index}/${s.offset}`;

Deno.test("snapshot-diff --when lands on the segment of each step of a real incident (file and S3)", async (t) => {
  await using dir = await makeTempDir();
  const s3 = await startS3Server();
  try {
    await s3.createBucket("vault");
    const r = await replicateIncident(dir.path, {
      minCheckpointPageCount: 4,
      extraReplicas: [s3IncidentReplica(s3, "vault")],
    });
    const order = [...r.baseline, ...r.steps.flatMap((s) => s.segments)].map(seg);
    assert(new Set(order.map((k) => k.split("/")[0])).size >= 3, `several indexes: ${order}`);

    for (const step of r.steps) {
      await t.step(`${step.name}: the first point after is the step's segment`, async () => {
        const res = await runCliJson<WhenDoc>([
          "snapshot-diff",
          r.url,
          "--when",
          STEP_QUERIES[step.name],
          "--json",
        ]);
        assertEquals(res.code, 0, res.stderr);
        const w = res.json.when;
        assert(w.changed);
        const first = step.segments[0];
        assertEquals(at(w.after!.point), seg(first));
        assertEquals(at(w.before.point), order[order.indexOf(seg(first)) - 1]);
        assertEquals(
          w.after!.restoreFlags,
          `--generation ${first.generation} --index ${hex(first.index)} --offset ${
            hex(first.offset)
          }`,
        );
        assert(w.restored <= 2 + Math.ceil(Math.log2(w.points)), `${w.restored} of ${w.points}`);
        // The flags restore the two points, and the query tells them apart as the search did.
        const answers: string[] = [];
        for (const [name, side] of [["before", w.before], ["after", w.after!]] as const) {
          const out = `${dir.path}/${step.name}-${name}.sqlite3`;
          const rest = await runCli(["restore", r.url, "-o", out, ...side.restoreFlags.split(" ")]);
          assertEquals(rest.code, 0, rest.stderr);
          answers.push(JSON.stringify(readOnlyQuery(out, STEP_QUERIES[step.name])));
        }
        assert(answers[0] !== answers[1], `${step.name}: ${answers}`);
        // Encrypted values are never printed, only fingerprinted.
        for (const s of r.secrets) assert(!res.stdout.includes(s), "no secret printed");
      });
    }

    await t.step(
      "--item-gone on S3 names the point to recover from, and recover works",
      async () => {
        const url = `s3://vault/db?endpoint=${s3.endpoint}&force-path-style=true&region=us-east-1`;
        Deno.env.set("AWS_ACCESS_KEY_ID", s3.credentials.accessKeyId);
        Deno.env.set("AWS_SECRET_ACCESS_KEY", s3.credentials.secretAccessKey);
        try {
          const res = await runCli(["snapshot-diff", url, "--item-gone", GONE]);
          assertEquals(res.code, 0, res.stderr);
          assertStringIncludes(res.stdout, "The answer changes from 1 to 0:");
          const deleted = r.steps.find((s) => s.name === "deleted")!.segments[0];
          assertStringIncludes(
            res.stdout,
            `first point after: `,
          );
          assertStringIncludes(
            res.stdout,
            `restore with --generation ${deleted.generation} --index ${
              hex(deleted.index)
            } --offset ${hex(deleted.offset)}`,
          );
          const line = res.stdout.split("\n").find((l) => l.includes("litewarden recover "));
          assert(line, res.stdout);
          const target = `${dir.path}/recover-into.sqlite3`;
          await Deno.copyFile(r.live, target);
          const args = line.slice(
            line.indexOf("litewarden recover ") + "litewarden recover ".length,
          )
            .split(" ").map((a) => (a === "/data/db.sqlite3" ? target : a));
          const rec = await runCli(["recover", ...args]);
          assertEquals(rec.code, 0, rec.stderr);
          assertEquals(readOnlyQuery(target, STEP_QUERIES.deleted), [[1]]);
          assertEquals(
            (await runCli(["verify", "--file", target, "--app", "vaultwarden"])).code,
            0,
          );
        } finally {
          Deno.env.delete("AWS_ACCESS_KEY_ID");
          Deno.env.delete("AWS_SECRET_ACCESS_KEY");
        }
      },
    );

    await t.step("--from and --to narrow the search; no change is said so", async () => {
      const deleted = r.steps[0].segments[0];
      const from = `index:${hex(deleted.index)}_${hex(deleted.offset)}`;
      const res = await runCliJson<WhenDoc>([
        "snapshot-diff",
        r.url,
        "--from",
        from,
        "--item-gone",
        GONE,
        "--json",
      ]);
      assertEquals(res.code, 0, res.stderr);
      assertEquals(res.json.when.changed, false);
      assertEquals(res.json.when.after, null);
      assertEquals(res.json.when.restored, 2);
      const text = await runCli(["snapshot-diff", r.url, "--from", from, "--item-gone", GONE]);
      assertStringIncludes(text.stdout, "The answer does not change: 0 at all");
    });

    await t.step("bad queries and flags are usage errors", async () => {
      for (
        const [args, says] of [
          [["--when", "DELETE FROM ciphers"], "not authorized"],
          [["--when", `ATTACH DATABASE '${dir.path}/x.db' AS x`], "not authorized"],
          [["--when", "SELECT nope FROM nowhere"], "no such table"],
          [["--item-gone", "nope"], "invalid --item-gone nope"],
          [["--when", "SELECT 1", "--item-gone", GONE], "either --when or --item-gone"],
          [["--when", "SELECT 1", "--to", `file:${r.live}`], "not a point of the replica"],
        ] as const
      ) {
        const res = await runCli(["snapshot-diff", r.url, ...args]);
        assertEquals(res.code, 2, `${args}: ${res.stderr}`);
        assertStringIncludes(res.stderr, says);
      }
      const noFrom = await runCli(["snapshot-diff", r.url]);
      assertEquals(noFrom.code, 2, noFrom.stderr);
      assertStringIncludes(noFrom.stderr, "needs --from POINT");
    });
  } finally {
    await s3.stop();
  }
});

Deno.test("snapshot-diff --when on v0.5 LTX levels lands on the TXID", async () => {
  await using dir = await makeTempDir();
  const fixture = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum/", import.meta.url).pathname;
  await copyTree(fixture, dir.path);
  const url = `file://${dir.path}`;
  // Rows per TXID: 40, 80, 80, 20 (states S1…S4); table u exists only at TXID 3.
  const when = async (sql: string, ...flags: string[]) => {
    const res = await runCliJson<WhenDoc>([
      "snapshot-diff",
      url,
      "--when",
      sql,
      "--json",
      ...flags,
    ]);
    assertEquals(res.code, 0, res.stderr);
    return res.json.when;
  };
  const rows = await when("SELECT count(*) FROM t");
  assertEquals([rows.before.point.txid, rows.after?.point.txid], [
    "0000000000000001",
    "0000000000000002",
  ]);
  assertEquals([rows.before.answer, rows.after?.answer], ["40", "80"]);
  assertEquals(rows.after?.restoreFlags, "--txid 0000000000000002");
  const shrunk = await when("SELECT count(*) FROM t", "--from", "txid:0000000000000002");
  assertEquals([shrunk.before.point.txid, shrunk.after?.point.txid], [
    "0000000000000003",
    "0000000000000004",
  ]);
  // Back to the old answer at the end: the search compares the ends, as git bisect does.
  const both = await when("SELECT count(*) FROM sqlite_master WHERE name = 'u'");
  assertEquals(both.changed, false);
  const table = await when(
    "SELECT count(*) FROM sqlite_master WHERE name = 'u'",
    "--to",
    "txid:0000000000000003",
  );
  assertEquals(table.after?.point.txid, "0000000000000003");
});
