/**
 * The companion beside a real `litestream replicate` (v0.3.13): its heartbeat names the live
 * position as Litestream does, and `verify` tells a quiet vault (live heartbeat, nothing to
 * replicate: passes even with a tiny --max-age) from a stopped Litestream (the replica lacks the
 * live position: freshness.lag, exit 8) and from a dead companion (freshness.heartbeat, exit 8).
 * Then the CLI as a process, through the fault proxy in front of the S3 server: storage errors are
 * logged and survived, one PUT per interval, and a final heartbeat once its parent exits.
 */
import { fileURLToPath } from "node:url";
import { heartbeatTask, runCompanion } from "../../src/replica/companion.ts";
import { defaultMetaPath, HEARTBEAT_KEY, readHeartbeat } from "../../src/replica/heartbeat.ts";
import type { Heartbeat } from "../../src/replica/heartbeat.ts";
import { FileStorage } from "../../src/storage/file.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { startFaultProxy } from "../support/fault_proxy.ts";
import { startReplicate, writeLitestreamConfig } from "../support/litestream.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { createWalDatabase, writeSmallTransactions } from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface VerifyDoc {
  exitCode: number;
  checks: { id: string; status: string; message: string }[];
  heartbeat?: { ageSeconds: number; final: boolean; lagSeconds: number | null };
}

const check = (doc: VerifyDoc, id: string) => {
  const c = doc.checks.find((c) => c.id === id);
  assert(c, `no check ${id} in ${JSON.stringify(doc.checks)}`);
  return c;
};

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

Deno.test("companion + litestream: a quiet vault passes, a stopped Litestream and a dead heartbeat are exit 8", async () => {
  await using dir = await makeTempDir();
  const dbPath = dir.join("db.sqlite3");
  const replica = dir.join("replica");
  const db = createWalDatabase(dbPath);
  writeSmallTransactions(db, 20);
  const config = await writeLitestreamConfig(dir.path, [{
    path: dbPath,
    replicas: [{ type: "file", path: replica, snapshotInterval: "24h" }],
  }]);
  const rep = await startReplicate(config);
  const storage = new FileStorage(replica);
  const stop = new AbortController();
  const task = heartbeatTask({
    storages: [storage],
    dbPath,
    metaPath: defaultMetaPath(dbPath),
    intervalMs: 200,
  });
  const companion = runCompanion([task], {
    shouldStop: () => false,
    signal: stop.signal,
    log: (l) => console.error(l),
    pollMs: 50,
  });
  try {
    await rep.waitForSync();
    const generation = (await Deno.readTextFile(
      `${dir.path}/.db.sqlite3-litestream/generation`,
    )).trim();
    const verify = (...extra: string[]) =>
      runCliJson<VerifyDoc>(["verify", dbPath, "--config", config, "--json", ...extra]);

    // A heartbeat taken after the sync names the generation Litestream uses.
    const after = Date.now();
    const hb = await waitFor<Heartbeat>("a heartbeat after the sync", async () => {
      const h = await readHeartbeat(storage);
      return h && h.position && new Date(h.time).getTime() > after + 100 ? h : undefined;
    });
    assertEquals(hb.position?.generation, generation);
    assertEquals(hb.final, false);
    assertEquals(hb.intervalSeconds, 0.2);
    const text = await Deno.readTextFile(`${replica}/${HEARTBEAT_KEY}`);
    assert(!text.includes("row-"), "no database content in the heartbeat");

    // Quiet vault: nothing written since the sync; --max-age 1ms is long exceeded, verify passes.
    await sleep(300);
    const quiet = await verify("--max-age", "1ms", "--metrics-file", dir.join("quiet.prom"));
    assertEquals(quiet.code, 0, quiet.stdout);
    assertEquals(check(quiet.json, "freshness.heartbeat").status, "pass");
    assertStringIncludes(check(quiet.json, "freshness.lag").message, "holds the live position");
    assertStringIncludes(check(quiet.json, "freshness").message, "a quiet database");
    assertEquals(quiet.json.heartbeat?.lagSeconds, 0);
    const prom = await Deno.readTextFile(dir.join("quiet.prom"));
    assertStringIncludes(prom, `litewarden_replication_lag_seconds{database="${dbPath}"} 0\n`);
    assertMatch(prom, /^litewarden_heartbeat_age_seconds\{database="[^"]+"\} [01]$/m);
    assertStringIncludes(prom, `litewarden_verify_success{database="${dbPath}"} 1\n`);

    // Litestream stops; the app keeps writing: the replica lacks the live position.
    await rep.stop();
    writeSmallTransactions(db, 5, { label: "late" });
    const before = (await readHeartbeat(storage))!.position!;
    await waitFor("a heartbeat past the replicated position", async () => {
      const h = await readHeartbeat(storage);
      const p = h?.position;
      return p && (p.index !== before.index || p.offset !== before.offset) ? h : undefined;
    });
    await sleep(50);
    const stalled = await verify("--max-lag", "1ms", "--max-age", "1h");
    assertEquals(stalled.code, 8, stalled.stdout);
    const lag = check(stalled.json, "freshness.lag");
    assertEquals(lag.status, "fail");
    assertStringIncludes(lag.message, "lacks the live position");
    assertStringIncludes(lag.message, "is Litestream running?");
    assert((stalled.json.heartbeat?.lagSeconds ?? -1) >= 0);
    // Within the default --max-lag (5m) it is reported, not failed.
    const lenient = await verify();
    assertEquals(check(lenient.json, "freshness.lag").status, "pass");
    assertStringIncludes(check(lenient.json, "freshness.lag").message, "behind for at least");

    // The companion dies (no more heartbeats): once older than --max-heartbeat-age, exit 8, and
    // --max-age judges alone again.
    stop.abort();
    await companion; // its last heartbeat says so (final)
    assertEquals((await readHeartbeat(storage))?.final, true);
    await sleep(600);
    const dead = await verify("--max-heartbeat-age", "500ms", "--max-age", "1ms");
    assertEquals(dead.code, 8, dead.stdout);
    assertEquals(check(dead.json, "freshness.heartbeat").status, "fail");
    assertStringIncludes(check(dead.json, "freshness.heartbeat").message, "the companion stopped");
    assertEquals(check(dead.json, "freshness").status, "fail");

    // No heartbeat at all: today's --max-age.
    await Deno.remove(`${replica}/${HEARTBEAT_KEY}`);
    const none = await verify("--max-age", "1ms", "--metrics-file", dir.join("m.prom"));
    assertEquals(none.code, 8);
    assertEquals(check(none.json, "freshness.heartbeat").status, "skip");
    assertEquals(none.json.heartbeat, undefined);
    assert(
      !(await Deno.readTextFile(dir.join("m.prom"))).includes("litewarden_heartbeat_age_seconds{"),
    );
  } finally {
    stop.abort();
    await companion;
    await rep.stop();
    db.close();
  }
});

Deno.test("companion process: survives S3 errors, one PUT per interval, a final heartbeat when its parent exits", async () => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  const proxy = startFaultProxy(server.endpoint);
  const storage = new S3Storage(s3TargetFor(server, "vault", "vw"), { maxAttempts: 2 });
  try {
    await server.createBucket("vault");
    const dbPath = dir.join("db.sqlite3");
    const db = createWalDatabase(dbPath);
    writeSmallTransactions(db, 10);
    db.close();
    const s3 = (endpoint: string) => ({
      type: "s3" as const,
      bucket: "vault",
      path: "vw",
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: server.credentials.accessKeyId,
      secretAccessKey: server.credentials.secretAccessKey,
    });
    // Litestream writes straight to the server; the companion goes through the faulty proxy.
    const lsConfig = await writeLitestreamConfig(dir.path, [{
      path: dbPath,
      replicas: [s3(server.endpoint)],
    }]);
    const companionConfig = await writeLitestreamConfig(dir.path, [{
      path: dbPath,
      replicas: [s3(proxy.endpoint)],
    }], { fileName: "companion.yml" });
    await using rep = await startReplicate(lsConfig);
    await rep.waitForSync();

    let failing = true;
    const heartbeatPut = (r: { method: string; key: string }) =>
      r.method === "PUT" && r.key.endsWith(HEARTBEAT_KEY);
    proxy.add({ when: (r) => failing && heartbeatPut(r), fault: { type: "status", status: 503 } });

    // The parent is a shell that exits after a while; the companion is its background child.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        `'${Deno.execPath()}' run -A --quiet --no-lock --config '${ROOT}deno.json' '${ROOT}main.ts' companion '${dbPath}' --config '${companionConfig}' --heartbeat-interval 1s --with-parent </dev/null & echo $!; while [ ! -e '${
          dir.join("exit-now")
        }' ]; do sleep 0.1; done`,
      ],
      env: { NO_PROGRESS: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = child.output();
    // Failing PUTs for a few intervals: logged, retried next interval, the process stays up.
    await waitFor("failed heartbeat turns", () =>
      Promise.resolve(
        proxy.requests.filter((r) => heartbeatPut(r) && r.fault).length >= 12 ? true : undefined,
      ));
    assertEquals(await readHeartbeat(storage), undefined);
    failing = false;
    const first = await waitFor("a heartbeat once S3 answers", () => readHeartbeat(storage));
    assert(first.position, JSON.stringify(first));
    const healthyFrom = proxy.requests.length;
    const t0 = Date.now();
    await sleep(3500);
    const healthyPuts = proxy.requests.slice(healthyFrom).filter(heartbeatPut).length;
    const intervals = (Date.now() - t0) / 1000;
    assert(healthyPuts >= 2, `only ${healthyPuts} PUTs in ${intervals}s`);
    assert(healthyPuts <= Math.ceil(intervals) + 1, `${healthyPuts} PUTs in ${intervals}s`);
    assertEquals(first.final, false);

    await Deno.writeTextFile(dir.join("exit-now"), "");
    const o = await out; // stdout/stderr close only once the companion has exited too
    assertEquals(o.code, 0);
    const stderr = new TextDecoder().decode(o.stderr);
    assertStringIncludes(stderr, "litewarden: companion: heartbeat: heartbeat not written to");
    assertStringIncludes(stderr, "trying again later");
    assertStringIncludes(stderr, "the parent process exited; stopped");
    assert(!stderr.includes(server.credentials.secretAccessKey), "secret in the log");
    const pid = Number(new TextDecoder().decode(o.stdout).trim());
    // Gone, or a zombie nobody reaped (its new parent here may be a PID 1 that never waits).
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    assert(stat === "" || / Z /.test(stat), `the companion outlived its parent: ${stat}`);
    const last = await readHeartbeat(storage);
    assert(last && last.final, JSON.stringify(last));
  } finally {
    storage.close();
    await proxy.stop();
    await server.stop();
  }
});

Deno.test("companion process: SIGTERM writes a last heartbeat, then exit 130; a URL target is exit 2", async () => {
  await using dir = await makeTempDir();
  const dbPath = dir.join("db.sqlite3");
  const replica = dir.join("replica");
  const config = await writeLitestreamConfig(dir.path, [{
    path: dbPath,
    replicas: [{ type: "file", path: replica }],
  }]);
  const args = ["run", "-A", "--quiet", "--no-lock", "--config", `${ROOT}deno.json`];
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args, `${ROOT}main.ts`, "companion", dbPath, "--config", config],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const storage = new FileStorage(replica);
  // No Litestream here: the heartbeat still goes out, saying why it names no position.
  const first = await waitFor("a heartbeat", () => readHeartbeat(storage));
  assertEquals([first.position, first.final, first.intervalSeconds], [null, false, 60]);
  assertStringIncludes(first.positionProblem ?? "", "no Litestream generation");
  child.kill("SIGTERM");
  const o = await child.output();
  assertEquals(o.code, 130, new TextDecoder().decode(o.stderr));
  const last = await readHeartbeat(storage);
  assert(last?.final, JSON.stringify(last));

  const url = await runCli(["companion", `file://${replica}`]);
  assertEquals(url.code, 2);
  assertStringIncludes(url.stderr, "litewarden: companion needs the live database");
  const fast = await runCli([
    "companion",
    dbPath,
    "--config",
    config,
    "--heartbeat-interval",
    "10ms",
  ]);
  assertEquals(fast.code, 2);
  assertStringIncludes(fast.stderr, "below 1s");
});
