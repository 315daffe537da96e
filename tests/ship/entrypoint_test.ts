/**
 * scripts/entrypoint.sh end to end, as the container runs it: the real Litestream v0.3.13, the
 * in-process S3 server, litewarden from source (`deno run main.ts` behind LITEWARDEN_BIN), the
 * shipped examples/litestream.yml (only its database path changed), and
 * tests/ship/fake_vaultwarden.ts in place of Vaultwarden. The "disk" (the data directory) is wiped
 * before a boot that stands for a new container; the bucket is what survives.
 */
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { readHeartbeat } from "../../src/replica/heartbeat.ts";
import { readMarker } from "../../src/replica/marker.ts";
import type { ReplicaMarker } from "../../src/replica/marker.ts";
import { MARKER_PREFIX } from "../../src/replica/marker.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { readAll } from "../../src/storage/storage.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { litestreamPath } from "../support/litestream.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { openWalDatabase } from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import type { FakeVaultwardenReport } from "./fake_vaultwarden.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRYPOINT = `${ROOT}scripts/entrypoint.sh`;
const FAKE_VAULTWARDEN = `${ROOT}tests/ship/fake_vaultwarden.ts`;
const BUCKET = "vault";
const PREFIX = "vw";

interface BootResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The entrypoint's own lines (`litewarden-entrypoint: …`). */
  gate: string[];
}

interface Boot {
  /** Resolves with the app's report once it has started (rejects if the gate exits first). */
  app(): Promise<FakeVaultwardenReport>;
  /** SIGTERM to Litestream (the entrypoint's PID after its exec), then the result. */
  stop(): Promise<BootResult>;
  /** The result, for a boot the gate refuses. */
  done(): Promise<BootResult>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("entrypoint: first boot, restore on a new disk, lost and damaged backups, overrides", async (t) => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  const storage = new S3Storage(s3TargetFor(server, BUCKET, PREFIX), { maxAttempts: 2 });
  try {
    await server.createBucket(BUCKET);
    const data = dir.join("data");
    const db = `${data}/db.sqlite3`;
    const report = dir.join("report.jsonl");

    // The shipped config, pointed at this test's disk.
    const example = await Deno.readTextFile(`${ROOT}examples/litestream.yml`);
    const config = dir.join("litestream.yml");
    assertStringIncludes(example, "path: /data/db.sqlite3");
    await Deno.writeTextFile(config, example.replace("path: /data/db.sqlite3", `path: ${db}`));

    // litewarden from source; `exec` keeps the PID, so `companion --with-parent` sees Litestream.
    const litewardenBin = dir.join("litewarden");
    await Deno.writeTextFile(
      litewardenBin,
      `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet --no-lock --config '${ROOT}deno.json' '${ROOT}main.ts' "$@"\n`,
    );
    await Deno.chmod(litewardenBin, 0o755);

    const baseEnv: Record<string, string> = {
      LITEWARDEN_BIN: litewardenBin,
      LITESTREAM_BIN: litestreamPath(),
      LITEWARDEN_DB: db,
      LITESTREAM_CONFIG: config,
      LITEWARDEN_VERIFY_ARGS: "--app none", // the fake app's database is not Vaultwarden's
      LITEWARDEN_MARK_INTERVAL: "200ms",
      LITEWARDEN_HEARTBEAT_INTERVAL: "1s",
      LITESTREAM_BUCKET: BUCKET,
      LITESTREAM_PATH: PREFIX,
      LITESTREAM_ENDPOINT: server.endpoint,
      LITESTREAM_REGION: "us-east-1",
      LITESTREAM_ACCESS_KEY_ID: server.credentials.accessKeyId,
      LITESTREAM_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
      NO_PROGRESS: "1",
      FAKE_VW_DB: db,
      FAKE_VW_REPORT: report,
    };

    const reports = async (): Promise<FakeVaultwardenReport[]> => {
      try {
        return (await Deno.readTextFile(report)).trim().split("\n").filter((l) => l).map((l) =>
          JSON.parse(l) as FakeVaultwardenReport
        );
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return [];
        throw err;
      }
    };

    /** A new container (wiped disk) unless `keepDisk`. */
    const boot = async (
      label: string,
      env: Record<string, string> = {},
      keepDisk = false,
    ): Promise<Boot> => {
      if (!keepDisk) {
        await Deno.remove(data, { recursive: true }).catch(() => {});
        await Deno.mkdir(data);
      }
      // setsid: the boot gets its own process group, so cleanup reaches every process in it.
      const child = new Deno.Command("setsid", {
        args: ["sh", ENTRYPOINT, Deno.execPath(), "run", "-A", "--no-config", FAKE_VAULTWARDEN],
        env: { ...baseEnv, ...env, FAKE_VW_BOOT: label },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let exited = false;
      const output = child.output().then((o) => {
        exited = true;
        return o;
      });
      const killGroup = () => {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch {
          // The group is gone already.
        }
      };
      const result = async (): Promise<BootResult> => {
        try {
          const o = await within(20_000, `boot ${label} to exit`, output);
          const stderr = new TextDecoder().decode(o.stderr);
          return {
            code: o.code,
            stdout: new TextDecoder().decode(o.stdout),
            stderr,
            gate: stderr.split("\n").filter((l) => l.startsWith("litewarden-entrypoint: ")),
          };
        } finally {
          killGroup(); // nothing of this boot may outlive it
          await output.catch(() => {});
        }
      };
      return {
        async app() {
          const deadline = Date.now() + 20_000;
          for (;;) {
            const mine = (await reports()).find((r) => r.boot === label);
            if (mine) return mine;
            if (exited || Date.now() > deadline) {
              const r = await result();
              throw new Error(
                `boot ${label}: the app did not start (exit ${r.code})\n${r.stderr}\n${r.stdout}`,
              );
            }
            await sleep(50);
          }
        },
        async stop() {
          try {
            child.kill("SIGTERM");
          } catch {
            // Exited already; result() says how.
          }
          return await result();
        },
        done: result,
      };
    };

    const waitForMarker = async (newerThan?: ReplicaMarker): Promise<ReplicaMarker> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const m = await readMarker(storage);
        if (m && (!newerThan || m.lastSeen > newerThan.lastSeen)) return m;
        if (Date.now() > deadline) throw new Error(`no new marker: ${JSON.stringify(m)}`);
        await sleep(100);
      }
    };

    const replicaKeys = async (): Promise<string[]> => {
      const keys: string[] = [];
      for await (const o of storage.list("")) keys.push(o.key);
      return keys;
    };

    /** A refused boot: exit code, one gate line saying why, and the app never ran. */
    const refused = (r: BootResult, code: number, label: string, ...why: string[]) => {
      assertEquals(r.code, code, `${label}: exit ${r.code}\n${r.stderr}`);
      assertEquals(r.gate.length, 1, r.stderr);
      assertMatch(r.gate[0], /^litewarden-entrypoint: not starting \S+: /);
      for (const w of why) assertStringIncludes(r.gate[0], w);
      assert(!r.stderr.includes(server.credentials.secretAccessKey), "secret in the log");
    };

    let marker: ReplicaMarker | undefined;
    let damagedSnapshot: { key: string; original: Uint8Array } | undefined;

    await t.step("first boot: no replica, the app starts, the replica is marked", async () => {
      const b = await boot("first");
      assertEquals((await b.app()).boots, ["first"]);
      marker = await waitForMarker();
      // The companion beside Litestream: heartbeats naming the live position, while the app runs.
      const started = Date.now();
      const beat = await within(
        20_000,
        "a heartbeat with a position",
        (async () => {
          for (;;) {
            const h = await readHeartbeat(storage);
            if (h?.position && new Date(h.time).getTime() > started) return h;
            await sleep(100);
          }
        })(),
      );
      assertEquals(beat.final, false);
      const generation = (await Deno.readTextFile(`${data}/.db.sqlite3-litestream/generation`))
        .trim();
      assertEquals(beat.position?.generation, generation);
      const r = await b.stop();
      assertEquals(r.code, 0, r.stderr);
      // It exited with Litestream, after a last heartbeat.
      assertEquals((await readHeartbeat(storage))?.final, true);
      assertStringIncludes(r.stderr, "litewarden: companion: the parent process exited; stopped");
      assertEquals(r.gate, [
        `litewarden-entrypoint: no backup to restore: starting ${Deno.execPath()} on a new database (first boot)`,
      ]);
      assertStringIncludes(r.stderr, `litewarden: marked s3://${BUCKET}/${PREFIX}`);
    });

    await t.step("new container: restores, verifies, starts on the old data", async () => {
      const b = await boot("second");
      assertEquals((await b.app()).boots, ["first", "second"]);
      const r = await b.stop();
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.gate, []);
      assertMatch(r.stderr, new RegExp(`restored ${db} from s3://${BUCKET}/${PREFIX}`));
      assertMatch(r.stdout, /^OK — /m); // verify --file on the restored database
      // The restore refreshed the marker.
      const after = await readMarker(storage);
      assert(after && marker && after.lastSeen > marker.lastSeen, JSON.stringify(after));
      assertEquals(after.firstSeen, marker.firstSeen);
    });

    await t.step(
      "restart with a damaged database on disk: refuses, or starts when told to",
      async () => {
        // The disk of the last boot, with a page no table owns (integrity_check fails).
        const conn = openWalDatabase(db);
        conn.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        conn.close();
        const bytes = await Deno.readFile(db);
        const grown = new Uint8Array(bytes.length + 4096);
        grown.set(bytes);
        const view = new DataView(grown.buffer);
        view.setUint32(28, view.getUint32(28) + 1); // header page count
        await Deno.writeFile(db, grown);

        const r = await (await boot("third", {}, true)).done();
        refused(r, 6, "damaged database", "verify --file", "database unhealthy", "db.integrity");
        assert(!(await reports()).some((x) => x.boot === "third"));

        const b = await boot("fourth", { LITEWARDEN_START_ON_VERIFY_FAILURE: "1" }, true);
        assertEquals((await b.app()).boots, ["first", "second", "fourth"]);
        const r2 = await b.stop();
        assertEquals(r2.code, 0, r2.stderr);
        assertEquals(r2.gate.length, 1, r2.stderr);
        assertMatch(r2.gate[0], /verify --file .* failed \(exit 6, .*starting .* anyway/);
      },
    );

    await t.step(
      "backup lost after it was seen: refuses with one line, or starts fresh when allowed",
      async () => {
        const gone = (await replicaKeys()).filter((k) => !k.startsWith(MARKER_PREFIX));
        assert(gone.length > 0);
        await storage.delete(gone);
        const seen = await readMarker(storage);
        assert(seen);

        const r = await (await boot("fifth")).done();
        refused(
          r,
          3,
          "lost backup",
          "restore failed (exit 3, no backup found)",
          `s3://${BUCKET}/${PREFIX}`,
          "seen there before",
          "last seen",
          "LITEWARDEN_ALLOW_FRESH_START=1",
        );
        assert(!(await reports()).some((x) => x.boot === "fifth"));

        const b = await boot("sixth", { LITEWARDEN_ALLOW_FRESH_START: "1" });
        assertEquals((await b.app()).boots, ["sixth"]);
        marker = await waitForMarker(seen); // the new backup is marked once uploaded
        const r2 = await b.stop();
        assertEquals(r2.code, 0, r2.stderr);
        assertStringIncludes(r2.stderr, "starting fresh (LITEWARDEN_ALLOW_FRESH_START=1)");
      },
    );

    await t.step(
      "rollback: a replica older than the marker's point refuses (exit 5); accepted, it starts",
      async () => {
        // The marker saw a point an hour newer than anything the replica still holds: objects
        // vanished since (a lifecycle rule, a restored bucket).
        const before = await readMarker(storage);
        assert(before?.newestPoint);
        const newer = new Date(new Date(before.newestPoint).getTime() + 3600_000).toISOString();
        const seen = { ...before, newestPoint: newer };
        await storage.put(
          ".litewarden/replica-seen.json",
          new TextEncoder().encode(JSON.stringify(seen)),
        );

        const r = await (await boot("rollback")).done();
        refused(
          r,
          5,
          "rollback",
          "restore failed (exit 5, replica damaged)",
          "is older than the one seen there before",
          `newest restorable point then ${newer.replace(/\.\d{3}Z$/, "Z")}`,
          "LITEWARDEN_ON_DAMAGE=restore-newest-intact",
        );
        assert(!(await reports()).some((x) => x.boot === "rollback"));
        assertEquals((await readMarker(storage))?.newestPoint, newer, "the marker stays put");

        const b = await boot("rollback-accepted", {
          LITEWARDEN_ON_DAMAGE: "restore-newest-intact",
        });
        assertEquals((await b.app()).boots?.at(-1), "rollback-accepted");
        const r2 = await b.stop();
        assertEquals(r2.code, 0, r2.stderr);
        assertMatch(r2.stderr, /WARNING: .* giving up 1h of changes .*loss accepted/);
        const after = await readMarker(storage);
        assert(after?.newestPoint && after.newestPoint < newer, JSON.stringify(after));
        marker = after;
      },
    );

    await t.step(
      "examples/prune-cron.sh: prune --apply, then verify with ping and metrics",
      async () => {
        const pings: string[] = [];
        const ac = new AbortController();
        const ping = Deno.serve(
          { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
          async (req) => {
            pings.push(new URL(req.url).pathname);
            await req.body?.cancel();
            return new Response("OK");
          },
        );
        try {
          const metrics = dir.join("litewarden.prom");
          const out = await new Deno.Command("sh", {
            args: [`${ROOT}examples/prune-cron.sh`],
            env: {
              ...baseEnv,
              LITEWARDEN_PING_URL: `http://127.0.0.1:${ping.addr.port}/ping/abc`,
              LITEWARDEN_METRICS_FILE: metrics,
            },
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).output();
          const stdout = new TextDecoder().decode(out.stdout);
          const stderr = new TextDecoder().decode(out.stderr);
          assertEquals(out.code, 0, `${stdout}\n${stderr}`);
          const plan = JSON.parse(stdout.slice(0, stdout.indexOf("\n}\n") + 2)) as { ok: boolean };
          assertEquals(plan.ok, true);
          assertMatch(stdout, /^OK — /m);
          assertEquals(pings, ["/ping/abc"]);
          assertStringIncludes(await Deno.readTextFile(metrics), "litewarden_");
          assert(!(stdout + stderr).includes(server.credentials.secretAccessKey));
        } finally {
          ac.abort();
          await ping.finished;
        }
      },
    );

    await t.step("wrong prefix, no marker there: LITEWARDEN_EXPECT_REPLICA=1 refuses", async () => {
      const r = await (await boot("typo", {
        LITESTREAM_PATH: `${PREFIX}-typo`,
        LITEWARDEN_EXPECT_REPLICA: "1",
      })).done();
      refused(
        r,
        3,
        "wrong prefix",
        "restore failed (exit 3, no backup found)",
        `${PREFIX}-typo`,
        "LITEWARDEN_EXPECT_REPLICA=1 requires a backup",
        "LITEWARDEN_ALLOW_FRESH_START=1",
      );
      assert(!(await reports()).some((x) => x.boot === "typo"));
    });

    await t.step("start over: EXPECT_REPLICA=1 with ALLOW_FRESH_START=1 starts empty", async () => {
      const b = await boot("start-over", {
        LITESTREAM_PATH: `${PREFIX}-over`,
        LITEWARDEN_EXPECT_REPLICA: "1",
        LITEWARDEN_ALLOW_FRESH_START: "1",
        LITEWARDEN_MARK_WAIT: "0",
      });
      assertEquals((await b.app()).boots, ["start-over"]);
      const r = await b.stop();
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stderr, "first boot");
    });

    await t.step("damaged replica: refuses, naming the object", async () => {
      const snapshot = (await replicaKeys()).find((k) => k.endsWith(".snapshot.lz4"));
      assert(snapshot, "no snapshot in the replica");
      const bytes = await readAll(await storage.get(snapshot));
      damagedSnapshot = { key: snapshot, original: bytes.slice() };
      for (let i = 20; i < bytes.length - 8; i += 7) bytes[i] ^= 0x5a;
      await storage.put(snapshot, bytes);

      const r = await (await boot("seventh")).done();
      refused(r, 5, "damaged replica", "restore failed (exit 5, replica damaged)");
      assert(!(await reports()).some((x) => x.boot === "seventh"));
    });

    await t.step(
      "damaged replica with LITEWARDEN_ON_DAMAGE=restore-newest-intact: starts on the newest intact point, loudly",
      async () => {
        // Repaired, restored once more: Litestream starts a new generation on the restored disk.
        assert(damagedSnapshot);
        await storage.put(damagedSnapshot.key, damagedSnapshot.original);
        const older = damagedSnapshot.key.split("/")[1];
        const again = await boot("eighth-restored");
        await again.app();
        const newSnapshot = async () =>
          (await replicaKeys()).find((k) =>
            k.endsWith(".snapshot.lz4") && k.split("/")[1] !== older
          );
        const deadline = Date.now() + 20_000;
        while (!(await newSnapshot()) && Date.now() < deadline) await sleep(100);
        assertEquals((await again.stop()).code, 0);
        const newer = await newSnapshot();
        assert(newer, `a new generation: ${(await replicaKeys()).join(" ")}`);
        // Its snapshot damaged: the newest intact point is the older generation's newest.
        const bytes = await readAll(await storage.get(newer));
        for (let i = 20; i < bytes.length - 8; i += 7) bytes[i] ^= 0x5a;
        await storage.put(newer, bytes);
        const refusedAgain = await (await boot("eighth-refused")).done();
        refused(
          refusedAgain,
          5,
          "damaged newest generation",
          `the newest point that does not need it is `,
          `(generation ${older} index `,
          "LITEWARDEN_ON_DAMAGE=restore-newest-intact",
        );

        const b = await boot("eighth", { LITEWARDEN_ON_DAMAGE: "restore-newest-intact" });
        assertEquals((await b.app()).boots?.at(-1), "eighth");
        const r = await b.stop();
        assertEquals(r.code, 0, r.stderr);
        assertMatch(
          r.stderr,
          new RegExp(
            `^litewarden: WARNING: ${newer} is damaged.*generation ${older}.* giving up .*loss accepted$`,
            "m",
          ),
        );
        assertMatch(r.stderr, new RegExp(`restored ${db} from s3://${BUCKET}/${PREFIX}`));
      },
    );

    await t.step(
      "the gate judges like Vaultwarden: an orphan row warns (fails with LITEWARDEN_STRICT=1), a migration it would re-run fails",
      async () => {
        const fixture =
          `${ROOT}tests/fixtures/vaultwarden/vw-1.37.2-populated-orphan-cipher.sqlite3`;
        const onDisk = async (sql?: string) => {
          await Deno.remove(data, { recursive: true }).catch(() => {});
          await Deno.mkdir(data);
          await Deno.copyFile(fixture, db);
          if (sql) {
            const conn = new DatabaseSync(db);
            conn.exec("PRAGMA journal_mode = DELETE");
            conn.exec(sql);
            conn.close();
          }
        };
        const gateArgs = { LITEWARDEN_VERIFY_ARGS: "--app vaultwarden --gate" };

        await onDisk();
        const b = await boot("orphan", gateArgs, true);
        assertEquals((await b.app()).boot, "orphan");
        const r = await b.stop();
        assertEquals(r.code, 0, r.stderr);
        assertMatch(r.stdout, /^OK with \d+ warning\(s\)/m);
        assertMatch(r.stdout, /WARN {2}db\.foreign-keys .*--strict fails it/);
        assertMatch(r.stdout, /WARN {2}app\.content\.orphans .*--strict fails it/);

        await onDisk();
        const strict =
          await (await boot("orphan-strict", { ...gateArgs, LITEWARDEN_STRICT: "1" }, true))
            .done();
        refused(strict, 6, "strict gate", "verify --file", "database unhealthy", "db.foreign-keys");

        // Effects present, bookkeeping row missing: Vaultwarden would re-run the migration and
        // die on the duplicate column, so the gate stops even without --strict.
        await onDisk(
          "DELETE FROM ciphers WHERE user_uuid NOT IN (SELECT uuid FROM users) AND user_uuid IS NOT NULL; DELETE FROM __diesel_schema_migrations WHERE version = '20230106151600'",
        );
        const crash = await (await boot("rerun", gateArgs, true)).done();
        refused(crash, 7, "migration re-run", "application check failed", "app.migrations");
        assert(!(await reports()).some((x) => x.boot === "orphan-strict" || x.boot === "rerun"));
      },
    );
  } finally {
    storage.close();
    await server.stop();
  }
});
