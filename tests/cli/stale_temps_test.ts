/**
 * Temp files and directories a killed run leaves behind (SIGKILL, OOM, power loss) are removed
 * by the next run once their owner is provably gone — and a live run's never are. The restore
 * case is real: a restore from S3 is SIGKILLed while the fault proxy stalls its WAL downloads.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { startFaultProxy } from "../support/fault_proxy.ts";
import { s3TargetFor, startS3Server, uploadTree } from "../support/s3_server.ts";
import { withEnv } from "../support/env.ts";
import { makeTempDir } from "../support/tmp.ts";
import { S3Storage } from "../../src/storage/s3.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const TEMP_FILE = /\.litewarden-.*\.tmp$/;
const CREDS = { AWS_ACCESS_KEY_ID: "stale-test", AWS_SECRET_ACCESS_KEY: "stale-test-secret" };

/** The pid namespace id that temp names carry (`/proc/self/ns/pid` → `pid:[N]`). */
const NS = /\[(\d+)\]/.exec(Deno.readLinkSync("/proc/self/ns/pid"))![1];

/** A pid whose process has certainly exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("restore after a SIGKILLed restore removes its temp file, never a live run's", async () => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  const proxy = startFaultProxy(server.endpoint);
  try {
    await server.createBucket("stale");
    const direct = new S3Storage(s3TargetFor(server, "stale", "vw"));
    await uploadTree(direct, SAMPLE);
    direct.close();
    const url = `s3://stale/vw?endpoint=${encodeURIComponent(proxy.endpoint)}`;
    const out = dir.join("out/db.sqlite3");

    // 1. A restore that hangs in its WAL downloads (temp file written), then SIGKILL.
    proxy.add({ when: (r) => r.key.includes("/wal/"), fault: { type: "stall", after: 10 } });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "restore", url, "-o", out],
      env: { ...CREDS, NO_PROGRESS: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 60_000;
    const temps = () => {
      try {
        return [...Deno.readDirSync(dir.join("out"))].map((e) => e.name).filter((n) =>
          TEMP_FILE.test(n)
        );
      } catch {
        return [];
      }
    };
    while (temps().length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGKILL");
    await child.status;
    const left = temps();
    assertEquals(left.length, 1, "the killed restore left its temp file");
    assert(left[0].includes(`.litewarden-${NS}-${child.pid}-`), left[0]);

    // 2. Temp files of live owners: this test process, and one in another PID namespace.
    const live = dir.join(`out/.db.sqlite3.litewarden-${NS}-${Deno.pid}-0123abcd.tmp`);
    const foreign = dir.join(`out/.db.sqlite3.litewarden-1-${await deadPid()}-0123abcd.tmp`);
    await Deno.writeTextFile(live, "live");
    await Deno.writeTextFile(foreign, "other namespace");

    // 3. The next restore cleans up what the killed one left, and only that.
    proxy.reset();
    const r = await withEnv(CREDS, () => runCli(["restore", url, "-o", out]));
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      temps().sort(),
      [foreign, live].map((p) => p.slice(p.lastIndexOf("/") + 1)).sort(),
    );
    assertEquals(await Deno.readTextFile(live), "live");
  } finally {
    await proxy.stop();
    await server.stop();
  }
});

Deno.test("verify removes temp directories of dead runs from TMPDIR, never a live run's", async () => {
  await using dir = await makeTempDir();
  const dead = await deadPid();
  const names = {
    dead: `litewarden-verify-${NS}-${dead}-x1y2z3`,
    deadDiff: `litewarden-diff-${NS}-${dead}-a1b2c3`,
    live: `litewarden-verify-${NS}-${Deno.pid}-q1w2e3`,
    old: "litewarden-verify-a1b2c3", // an old-style name without an owner: cannot be proven stale
    other: `unrelated-${NS}-${dead}-dir`,
  };
  for (const n of Object.values(names)) {
    await Deno.mkdir(dir.join(n));
    await Deno.writeTextFile(dir.join(`${n}/restored.sqlite3`), "x");
  }
  const r = await withEnv({ TMPDIR: dir.path }, () => runCli(["verify", `file://${SAMPLE}`]));
  assertEquals(r.code, 0, r.stderr);
  const left = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assertEquals(left, [names.live, names.old, names.other].sort());
});

Deno.test("an atomic write (the metrics file) removes what a killed writer left beside it", async () => {
  await using dir = await makeTempDir();
  const dead = dir.join(`.lw.prom.litewarden-${NS}-${await deadPid()}-0a1b2c3d.tmp`);
  const live = dir.join(`.lw.prom.litewarden-${NS}-${Deno.pid}-0a1b2c3d.tmp`);
  await Deno.writeTextFile(dead, "half a metrics file");
  await Deno.writeTextFile(live, "being written");
  const r = await runCli(["verify", `file://${SAMPLE}`, "--metrics-file", dir.join("lw.prom")]);
  assertEquals(r.code, 0, r.stderr);
  const left = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assertEquals(left, [live.slice(live.lastIndexOf("/") + 1), "lw.prom"].sort());
});
