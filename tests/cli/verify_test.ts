/**
 * `verify` end to end on what an operator runs it against, complementing verify_faults_test.ts:
 * a Vaultwarden database that keeps changing while real Litestream v0.3.13 replicates it (items
 * edited, folders added, several WAL indexes), to a file and an S3 replica at once. Asserts the
 * report against the source database (row counts, last activity, release range), the exact place a
 * deleted WAL segment is reported, severity across replicas and databases (`--all`), storage
 * errors, `verify --file` on every Vaultwarden fixture without touching it, the stable `--json`
 * shape, that no e-mail address, encrypted string or S3 secret is ever printed, and that no temp
 * directory survives success, failure or SIGINT (also with several databases at once).
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import type { CliResult } from "../support/cli.ts";
import {
  fileReplicaObjects,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import { openWalDatabase, userTableNames } from "../support/sqlite_writer.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";
import { S3Storage } from "../../src/storage/s3.ts";

const VW = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;
const LTX = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

interface CheckDoc {
  id: string;
  status: "pass" | "warn" | "fail" | "skip";
  message: string;
}

interface VerifyDoc {
  ok: boolean;
  exitCode: number;
  command: string;
  subject: string;
  location: string | null;
  format: string | null;
  restorePoint: {
    format: string;
    generation: string | null;
    index: number | null;
    txid: string | null;
    time: string;
    ageSeconds: number;
  } | null;
  checks: CheckDoc[];
  app: {
    name: string;
    releases: { min: string; max: string } | null;
    migrations: { applied: number; highest: string | null; unknown: string[]; missing: string[] };
    rowCounts: Record<string, number>;
    lastActivity: string | null;
  } | null;
  seconds: number;
  replicas?: {
    location: string;
    ok: boolean;
    exitCode: number;
    format: string | null;
    restorePoint: VerifyDoc["restorePoint"];
    failedChecks: string[];
  }[];
}

interface VerifyAllDoc {
  ok: boolean;
  exitCode: number;
  results: VerifyDoc[];
}

/** The documented `verify --json` fields, in their documented order. */
const DOC_KEYS = [
  "ok",
  "exitCode",
  "command",
  "subject",
  "location",
  "format",
  "restorePoint",
  "checks",
  "app",
  "seconds",
];
const POINT_KEYS = ["format", "generation", "index", "txid", "time", "ageSeconds"];
const APP_KEYS = ["name", "releases", "migrations", "rowCounts", "lastActivity"];

const check = (doc: VerifyDoc, id: string) => doc.checks.find((c) => c.id === id);
const failed = (doc: VerifyDoc) => doc.checks.filter((c) => c.status === "fail").map((c) => c.id);
const hex8 = (n: number) => n.toString(16).padStart(8, "0");

/** Asserts the shape of one verify document: fields, order, types, check ids. */
function assertDocShape(doc: VerifyDoc): void {
  // `replicas` (each replica's verdict) is there exactly when the database has several; `files`
  // (after `app`) exactly when the files layer ran: on a Vaultwarden point.
  const keys = doc.app?.name === "vaultwarden" && doc.format !== "file"
    ? [...DOC_KEYS.slice(0, -1), "files", ...DOC_KEYS.slice(-1)]
    : DOC_KEYS;
  assertEquals(Object.keys(doc), doc.replicas ? [...keys, "replicas"] : keys);
  for (const v of doc.replicas ?? []) {
    assertEquals(Object.keys(v), [
      "location",
      "ok",
      "exitCode",
      "format",
      "restorePoint",
      "failedChecks",
    ]);
    assertEquals(v.ok, v.exitCode === 0);
    if (v.restorePoint) assertEquals(Object.keys(v.restorePoint), POINT_KEYS);
  }
  assertEquals(doc.command, "verify");
  assertEquals(doc.ok, doc.exitCode === 0);
  assertEquals(typeof doc.seconds, "number");
  if (doc.restorePoint) assertEquals(Object.keys(doc.restorePoint), POINT_KEYS);
  if (doc.app) assertEquals(Object.keys(doc.app), APP_KEYS);
  for (const c of doc.checks) {
    assertEquals(Object.keys(c), ["id", "status", "message"]);
    assertMatch(c.id, /^[a-z]+(\.[a-z0-9-]+)*$/);
    assert(["pass", "warn", "fail", "skip"].includes(c.status), c.status);
    assert(c.message.length > 0 && !c.message.includes("\n"), `${c.id}: ${c.message}`);
  }
  assertEquals(doc.exitCode !== 0, doc.checks.some((c) => c.status === "fail"));
}

/** Name → size, mtime and SHA-256 of every file in `dir` (not recursive). */
async function dirState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    const path = `${dir}/${e.name}`;
    const st = await Deno.stat(path);
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", await Deno.readFile(path)),
    );
    const sha = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    out[e.name] = `${st.size} ${st.mtime?.getTime()} ${sha}`;
  }
  return out;
}

/** Every output, so the test can show at the end that nothing secret was ever printed. */
const printed: string[] = [];

async function verify(...args: string[]): Promise<CliResult & { json: VerifyDoc }> {
  const r = await runCliJson<VerifyDoc>(["verify", ...args, "--json"]);
  printed.push(r.stdout, r.stderr);
  assertDocShape(r.json);
  return r;
}

/** A Diesel timestamp (UTC, nanoseconds) as Vaultwarden writes them. */
const diesel = (iso: string) => `${iso.replace("T", " ").replace("Z", "")}.000000000`;

/** What the source looked like when replication stopped. */
interface Source {
  dbPath: string;
  config: string;
  fileReplica: string;
  counts: Record<string, number>;
  emails: string[];
  /** Encrypted names of the folders the test added (they must never be printed). */
  secrets: string[];
  newestActivity: string;
}

/**
 * Copies the populated Vaultwarden fixture and replicates it with real Litestream to a file
 * replica and (when `s3` is given) an S3 replica, while editing it as Vaultwarden would: single
 * item edits, a new folder for an existing user, and a bulk edit of every item that starts a new
 * WAL index. Three rounds: one snapshot, four WAL indexes, several segments per index.
 */
async function replicateVault(
  dir: string,
  s3?: { endpoint: string; bucket: string; secret: string },
): Promise<Source> {
  const dbPath = `${dir}/db.sqlite3`;
  await Deno.copyFile(`${VW}vw-1.37.2-populated.sqlite3`, dbPath);
  await Deno.chmod(dbPath, 0o644);
  const fileReplica = `${dir}/replica`;
  const config = await writeLitestreamConfig(dir, [{
    path: dbPath,
    minCheckpointPageCount: 20,
    replicas: [
      { name: "file", path: fileReplica },
      ...(s3
        ? [{
          name: "s3",
          type: "s3" as const,
          bucket: s3.bucket,
          path: "vw",
          endpoint: s3.endpoint,
          forcePathStyle: true,
          accessKeyId: "verify-test-key",
          secretAccessKey: s3.secret,
        }]
        : []),
    ],
  }]);
  const db = openWalDatabase(dbPath);
  const secrets: string[] = [];
  let newestActivity = "";
  try {
    const owner = String(
      db.prepare("SELECT uuid FROM users WHERE email = 'alice@example.com'").get()?.uuid,
    );
    const rep = await startReplicate(config);
    try {
      for (let round = 1; round <= 3; round++) {
        const day = `2026-11-0${round}`;
        for (let i = 0; i < 3; i++) {
          db.prepare(
            "UPDATE ciphers SET updated_at = ? WHERE uuid = (SELECT uuid FROM ciphers ORDER BY uuid LIMIT 1 OFFSET ?)",
          ).run(diesel(`${day}T10:0${i}:00Z`), round * 10 + i);
          await rep.waitForSync();
        }
        const name = `2.${btoa(`iv-${round}-${crypto.randomUUID()}`)}|${
          btoa(`ct-${crypto.randomUUID()}`)
        }|${btoa(`mac-${round}`)}`;
        secrets.push(name);
        const at = diesel(`${day}T11:00:00Z`);
        db.prepare(
          "INSERT INTO folders (uuid, created_at, updated_at, user_uuid, name) VALUES (?, ?, ?, ?, ?)",
        ).run(crypto.randomUUID(), at, at, owner, name);
        await rep.waitForSync();
        // Touch every item: more frames than min-checkpoint-page-count, so a new WAL index starts.
        newestActivity = `${day}T12:30:00Z`;
        db.prepare("UPDATE ciphers SET updated_at = ?").run(diesel(newestActivity));
        await rep.waitForSync();
      }
    } finally {
      await rep.stop();
    }
    const counts: Record<string, number> = {};
    for (const t of userTableNames(db)) {
      counts[t] = Number(db.prepare(`SELECT count(*) AS n FROM "${t}"`).get()?.n);
    }
    const emails = db.prepare("SELECT email FROM users").all().map((r) => String(r.email));
    return { dbPath, config, fileReplica, counts, emails, secrets, newestActivity };
  } finally {
    db.close();
  }
}

Deno.test("verify: a Vaultwarden replica written by real Litestream while the vault changes", async (t) => {
  await using dir = await makeTempDir();
  // verify's temp directories go here, so the test can see that none is left behind.
  const tmpdir = dir.join("tmp");
  await Deno.mkdir(tmpdir);
  const oldTmp = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmpdir);
  try {
    // The redirection works (else the final "nothing left" assertion would prove nothing).
    const probe = Deno.makeTempDirSync({ prefix: "probe-" });
    assert(probe.startsWith(`${tmpdir}/`), probe);
    Deno.removeSync(probe);

    const src = await replicateVault(dir.path);
    const objects = await fileReplicaObjects(src.fileReplica);
    const wal = objects.filter((o) => o.kind === "wal");
    const indexes = [...new Set(wal.map((o) => o.index))];
    assert(indexes.length >= 3, `expected several WAL indexes, got ${indexes}`);
    const url = `file://${src.fileReplica}`;
    const faulty = async (name: string, inject: (root: string) => Promise<void>) => {
      const root = dir.join(`fault-${name}`);
      await copyTree(src.fileReplica, root);
      await inject(root);
      return root;
    };

    await t.step("clean: exit 0; the report matches the source database", async () => {
      const r = await verify(url);
      assertEquals(r.code, 0, r.stdout);
      assertEquals(r.json.format, "v0.3");
      assertEquals(r.json.subject, url);
      assertEquals(r.json.location, url);
      assertEquals(r.json.restorePoint?.index, Math.max(...indexes));
      assertEquals(r.json.restorePoint?.generation, objects[0].generation);
      for (const id of ["listing.found", "chain.plan", "restore.apply", "db.integrity"]) {
        assertEquals(check(r.json, id)?.status, "pass", id);
      }
      assertEquals(failed(r.json), []);
      assertEquals(r.json.checks.filter((c) => c.status === "warn"), []);
      // Each id at most once: a monitoring rule can key on it.
      const ids = r.json.checks.map((c) => c.id);
      assertEquals(new Set(ids).size, ids.length, ids.join(","));
      const app = r.json.app!;
      assertEquals(app.name, "vaultwarden");
      assertEquals(app.releases, { min: "1.37.0", max: "1.37.2" });
      assertEquals(app.migrations, {
        applied: 56,
        highest: "20260505120000",
        unknown: [],
        missing: [],
      });
      // Every count equals the source's at the moment replication stopped (3 folders added).
      for (const [table, n] of Object.entries(app.rowCounts)) {
        assertEquals(n, src.counts[table], table);
      }
      assertEquals(app.rowCounts.folders, 9 + 3);
      assertEquals(app.rowCounts.ciphers, 200);
      assertEquals(app.lastActivity, src.newestActivity);

      const text = await runCli(["verify", url]);
      printed.push(text.stdout, text.stderr);
      assertEquals(text.code, 0);
      const [first, ...rest] = text.stdout.split("\n");
      assertMatch(
        first,
        /^OK — file:\/\/.+; restore point .+ \(generation [0-9a-f]{16} index \d+, /,
      );
      assertStringIncludes(first, "vaultwarden 1.37.0 – 1.37.2");
      assert(rest.some((l) => l.includes("folders 12")), text.stdout);
    });

    await t.step("--quick runs quick_check instead of integrity_check", async () => {
      const r = await verify(url, "--quick");
      assertEquals(r.code, 0, r.stdout);
      assertStringIncludes(check(r.json, "db.integrity")!.message, "quick_check");
    });

    await t.step(
      "a segment deleted from the middle of an index: exit 5 naming the gap",
      async () => {
        const index = indexes.find((i) => wal.filter((o) => o.index === i).length >= 3);
        assert(index !== undefined, "no WAL index with three segments");
        const segs = wal.filter((o) => o.index === index);
        const root = await faulty("gap", (root) => Deno.remove(`${root}/${segs[1].key}`));
        const r = await verify(`file://${root}`);
        assertEquals(r.code, 5, r.stdout);
        // Names alone cannot show the gap (v0.3 names carry offsets into the uncompressed WAL,
        // the listing knows only compressed sizes): the plan passes, the restore finds it.
        assertEquals(check(r.json, "chain.plan")?.status, "pass");
        assertEquals(failed(r.json), ["restore.apply"]);
        const msg = check(r.json, "restore.apply")!.message;
        assertStringIncludes(msg, `WAL index ${hex8(index)} of generation ${segs[0].generation}`);
        assertStringIncludes(msg, `should start at offset ${segs[1].offset}`);
        assertStringIncludes(msg, segs[2].key);
        assertStringIncludes(msg, "a WAL segment is missing");
        // Nothing restored, so nothing to judge further: later layers are not reported as passing.
        assertEquals(check(r.json, "db.integrity"), undefined);
        assertEquals(r.json.app, null);
      },
    );

    await t.step("--max-age 1s on an old point: exit 8, every other layer passes", async () => {
      const old = new Date(Date.now() - 60_000);
      const root = await faulty("stale", async (root) => {
        for (const o of objects) await Deno.utime(`${root}/${o.key}`, old, old);
      });
      const r = await verify(`file://${root}`, "--max-age", "1s");
      assertEquals(r.code, 8, r.stdout);
      assertEquals(failed(r.json), ["freshness"]);
      assertStringIncludes(check(r.json, "freshness")!.message, "older than --max-age 1s");
      assertEquals(r.json.app?.releases, { min: "1.37.0", max: "1.37.2" });
      assert(r.json.restorePoint!.ageSeconds >= 59, String(r.json.restorePoint!.ageSeconds));
      assertEquals((await verify(`file://${root}`, "--max-age", "5m")).code, 0);
      // Stale and damaged: the damage is the more severe finding.
      await Deno.remove(`${root}/${wal.find((o) => o.index === indexes[1])!.key}`);
      assertEquals((await verify(`file://${root}`, "--max-age", "1s")).code, 5);
    });

    await t.step("--all: one report per database, exit code of the worse", async () => {
      const broken = await faulty("all-broken", async (root) => {
        const seg = wal.filter((o) => o.index === indexes[1]).at(-1)!;
        const bytes = await Deno.readFile(`${root}/${seg.key}`);
        bytes[bytes.length >> 1] ^= 0x20;
        await Deno.writeFile(`${root}/${seg.key}`, bytes);
      });
      const config = dir.join("all.yml");
      await Deno.writeTextFile(
        config,
        `dbs:\n  - path: ${
          dir.join("vault.db")
        }\n    replicas:\n      - path: ${src.fileReplica}\n` +
          `  - path: ${dir.join("broken.db")}\n    replicas:\n      - path: ${broken}\n`,
      );
      const r = await runCliJson<VerifyAllDoc>(["verify", "--all", "--config", config, "--json"]);
      printed.push(r.stdout, r.stderr);
      assertEquals(r.code, 5, r.stdout);
      assertEquals(Object.keys(r.json), ["ok", "exitCode", "results"]);
      assertEquals(r.json.ok, false);
      assertEquals(r.json.exitCode, 5);
      r.json.results.forEach(assertDocShape);
      assertEquals(
        r.json.results.map((d) => [d.subject, d.exitCode, d.app?.name ?? null]),
        [[dir.join("vault.db"), 0, "vaultwarden"], [dir.join("broken.db"), 5, null]],
      );
      assertEquals(failed(r.json.results[1]), ["restore.apply"]);

      const text = await runCli(["verify", "--all", "--config", config]);
      printed.push(text.stdout, text.stderr);
      assertEquals(text.code, 5);
      const reports = text.stdout.split("\n\n");
      assertEquals(reports.length, 2, text.stdout);
      assert(reports[0].startsWith(`OK — ${dir.join("vault.db")}`), reports[0]);
      assert(reports[1].startsWith("FAILED (exit 5): 1 check(s) failed"), reports[1]);
    });

    await t.step(
      "a run in a child process leaves no temp directory, passing or failing",
      async () => {
        const childTmp = dir.join("child-tmp");
        await Deno.mkdir(childTmp);
        for (const [replica, code] of [[src.fileReplica, 0], [dir.join("fault-gap"), 5]] as const) {
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", MAIN, "verify", `file://${replica}`, "--app", "none"],
            env: { TMPDIR: childTmp, NO_COLOR: "1" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const stdout = new TextDecoder().decode(out.stdout);
          printed.push(stdout, new TextDecoder().decode(out.stderr));
          assertEquals(out.code, code, stdout);
          assertEquals([...Deno.readDirSync(childTmp)].map((e) => e.name), [], replica);
        }
      },
    );

    await t.step("nothing secret was printed by any run above", () => {
      const all = printed.join("\n");
      assert(src.emails.length === 6, src.emails.join(","));
      for (const email of src.emails) assert(!all.includes(email), `${email} was printed`);
      for (const s of src.secrets) assert(!all.includes(s), "a folder name was printed");
      assert(!/\b2\.[A-Za-z0-9+/=]{8,}\|/.test(all), "an encrypted string was printed");
      assert(!/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}/.test(all), "an e-mail was printed");
    });

    await t.step("no verify temp directory is left behind in-process", () => {
      assertEquals([...Deno.readDirSync(tmpdir)].map((e) => e.name), []);
    });
  } finally {
    if (oldTmp === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", oldTmp);
  }
});

Deno.test("verify: a database with a file and an S3 replica — the worst replica decides", async (t) => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  const secret = "verify-s3-secret-7f3a9c";
  let storage: S3Storage | undefined;
  try {
    await server.createBucket("vault");
    const src = await replicateVault(dir.path, {
      endpoint: server.endpoint,
      bucket: "vault",
      secret,
    });
    storage = new S3Storage(s3TargetFor(server, "vault", "vw"));
    const s3Keys: string[] = [];
    for await (const o of storage.list("")) s3Keys.push(o.key);
    const walKeys = s3Keys.filter((k) => k.includes("/wal/")).sort();
    const byConfig = (...extra: string[]) => verify(src.dbPath, "--config", src.config, ...extra);

    await t.step("clean: both replicas verified, exit 0", async () => {
      const r = await byConfig();
      assertEquals(r.code, 0, r.stdout);
      assertEquals(r.json.subject, src.dbPath);
      assertStringIncludes(check(r.json, "replicas")!.message, "2 replicas verified");
      assertEquals(check(r.json, "replicas")!.status, "pass");
      // Each replica's verdict and restore point, in config order.
      assertEquals(r.json.replicas?.map((v) => [v.location.split(":")[0], v.exitCode]), [
        ["file", 0],
        ["s3", 0],
      ]);
      for (const v of r.json.replicas!) {
        assertEquals(v.restorePoint?.index, r.json.restorePoint?.index, v.location);
      }
      const text = await runCli(["verify", src.dbPath, "--config", src.config]);
      printed.push(text.stdout, text.stderr);
      assertEquals(text.code, 0, text.stdout);
      for (const v of r.json.replicas!) {
        const line = text.stdout.split("\n").find((l) => l.startsWith(`  replica ${v.location}: `));
        assert(line, text.stdout);
        assertStringIncludes(line, ": OK; restore point ");
        assertStringIncludes(
          line,
          `(generation ${v.restorePoint!.generation} index ${hex8(v.restorePoint!.index!)}, `,
        );
      }
      assertEquals(r.json.app?.rowCounts.folders, 12);
      const s3 = await byConfig("--replica", "s3");
      assertEquals(s3.code, 0, s3.stdout);
      assertMatch(s3.json.location!, /^s3:\/\/vault\/vw/);
      assertEquals(s3.json.restorePoint?.index, r.json.restorePoint?.index);
    });

    await t.step("a whole WAL index deleted on S3 only: exit 5, the S3 report shown", async () => {
      const index = walKeys[Math.floor(walKeys.length / 2)].match(/\/wal\/([0-9a-f]{8})_/)![1];
      await storage!.delete(walKeys.filter((k) => k.includes(`/wal/${index}_`)));
      const r = await byConfig();
      assertEquals(r.code, 5, r.stdout);
      assertMatch(r.json.location!, /^s3:\/\//);
      assertEquals(check(r.json, "chain.plan")?.status, "fail");
      assertStringIncludes(check(r.json, "chain.plan")!.message, `missing WAL index`);
      assertStringIncludes(check(r.json, "chain.plan")!.message, index);
      assertEquals((await byConfig("--replica", "file")).code, 0);
    });

    await t.step("file replica stale (8), S3 damaged (5): exit 5, both named", async () => {
      const old = new Date(Date.now() - 3_600_000);
      for (const o of await fileReplicaObjects(src.fileReplica)) {
        await Deno.utime(`${src.fileReplica}/${o.key}`, old, old);
      }
      const r = await byConfig("--max-age", "10m");
      assertEquals(r.code, 5, r.stdout);
      assertMatch(r.json.location!, /^s3:\/\//);
      const replicas = check(r.json, "replicas")!;
      assertEquals(replicas.status, "warn");
      assertMatch(replicas.message, /\(file:\/\/\S+ exit 8, s3:\/\/vault\/vw .*exit 5\)/);
      const [file, s3] = r.json.replicas!;
      assertEquals([file.exitCode, file.failedChecks], [8, ["freshness"]]);
      assert(file.restorePoint, "the stale replica still has its restore point");
      assertEquals([s3.exitCode, s3.failedChecks.includes("chain.plan")], [5, true]);
    });

    await t.step("storage errors: exit 4; an empty prefix: exit 3", async () => {
      const ep = encodeURIComponent(server.endpoint);
      const old = {
        id: Deno.env.get("AWS_ACCESS_KEY_ID"),
        key: Deno.env.get("AWS_SECRET_ACCESS_KEY"),
      };
      Deno.env.set("AWS_ACCESS_KEY_ID", "verify-test-key");
      Deno.env.set("AWS_SECRET_ACCESS_KEY", secret);
      try {
        const noBucket = await verify(`s3://nope/vw?endpoint=${ep}`);
        assertEquals(noBucket.code, 4, noBucket.stdout);
        assertEquals(failed(noBucket.json), ["listing.found"]);
        assertStringIncludes(check(noBucket.json, "listing.found")!.message, "nope");
        const empty = await verify(`s3://vault/elsewhere?endpoint=${ep}`);
        assertEquals(empty.code, 3, empty.stdout);
        await server.stop();
        // S3 unreachable, the file replica fine: the storage error decides.
        const down = await byConfig("--max-age", "1000d");
        assertEquals(down.code, 4, down.stdout);
        assertStringIncludes(check(down.json, "listing.found")!.message, "cannot reach");
      } finally {
        for (const [k, v] of [["AWS_ACCESS_KEY_ID", old.id], ["AWS_SECRET_ACCESS_KEY", old.key]]) {
          if (v === undefined) Deno.env.delete(k!);
          else Deno.env.set(k!, v);
        }
      }
    });

    await t.step("the S3 secret and vault contents were never printed", () => {
      const all = printed.join("\n");
      assert(!all.includes(secret), "the S3 secret was printed");
      for (const email of src.emails) assert(!all.includes(email), `${email} was printed`);
      assert(!/\b2\.[A-Za-z0-9+/=]{8,}\|/.test(all), "an encrypted string was printed");
    });
  } finally {
    storage?.close?.();
    await server.stop();
  }
});

Deno.test("verify --file: every Vaultwarden fixture as its README says, the directory untouched", async () => {
  await using dir = await makeTempDir();
  const fixtures = [...Deno.readDirSync(VW)].map((e) => e.name).filter((n) =>
    n.endsWith(".sqlite3")
  );
  assertEquals(fixtures.length, 7);
  for (const f of fixtures) {
    await Deno.copyFile(`${VW}${f}`, dir.join(f));
    // A backup directory is often read-only; verify --file needs no write access at all.
    await Deno.chmod(dir.join(f), 0o444);
  }
  const before = await dirState(dir.path);
  const run = (f: string) => verify("--file", dir.join(f));
  const release = (min: string, max: string) => ({ min, max });

  const empty: [string, { min: string; max: string }, number, string, number][] = [
    ["vw-1.20.0.sqlite3", release("1.20.0", "1.21.0"), 22, "20210315163412", 17],
    ["vw-1.30.0.sqlite3", release("1.30.0", "1.30.1"), 41, "20231021221242", 25],
    ["vw-1.37.2.sqlite3", release("1.37.0", "1.37.2"), 56, "20260505120000", 29],
  ];
  for (const [f, releases, applied, highest, tables] of empty) {
    const r = await run(f);
    assertEquals(r.code, 0, `${f}: ${r.stdout}`);
    assertEquals(r.json.format, "file");
    assertEquals(r.json.location, null);
    assertEquals(r.json.restorePoint, null);
    assertEquals(r.json.app?.releases, releases, f);
    assertEquals(r.json.app?.migrations.applied, applied, f);
    assertEquals(r.json.app?.migrations.highest, highest, f);
    assertStringIncludes(check(r.json, "app.detect")!.message, `${tables} tables`, f);
    assertEquals(r.json.app?.rowCounts.users, 0, f);
    // An empty vault is worth a look, not a failure.
    assertEquals(check(r.json, "app.summary")?.status, "warn", f);
  }

  const populated = await run("vw-1.37.2-populated.sqlite3");
  assertEquals(populated.code, 0, populated.stdout);
  assertEquals(populated.json.app?.releases, release("1.37.0", "1.37.2"));
  const readme = {
    users: 6,
    organizations: 1,
    users_organizations: 6,
    ciphers: 200,
    folders: 9,
    folders_ciphers: 88,
    collections: 3,
    attachments: 5,
    devices: 8,
    sends: 2,
    twofactor: 2,
  };
  for (const [table, n] of Object.entries(readme)) {
    assertEquals(populated.json.app?.rowCounts[table], n, table);
  }

  // A corrupt leaf of `ciphers`: the count still says 200, integrity_check does not.
  const corrupt = await run("vw-1.37.2-populated-corrupt-page.sqlite3");
  assertEquals(corrupt.code, 6, corrupt.stdout);
  assertEquals(check(corrupt.json, "db.integrity")?.status, "fail");
  assertStringIncludes(check(corrupt.json, "db.integrity")!.message, "ciphers");

  // Dangling cipher → user: a database-level finding (exit 6), named by the app layer too.
  const orphan = await run("vw-1.37.2-populated-orphan-cipher.sqlite3");
  assertEquals(orphan.code, 6, orphan.stdout);
  assertEquals(check(orphan.json, "db.integrity")?.status, "pass");
  assertStringIncludes(check(orphan.json, "db.foreign-keys")!.message, "ciphers → users: 1 row");
  assertEquals(check(orphan.json, "app.content.orphans")?.status, "fail");

  // A table missing that the recorded migrations created: the app layer (exit 7).
  const missing = await run("vw-1.37.2-populated-missing-table.sqlite3");
  assertEquals(missing.code, 7, missing.stdout);
  assertEquals(failed(missing.json), ["app.schema"]);
  assertStringIncludes(check(missing.json, "app.schema")!.message, "twofactor");
  assertEquals(missing.json.app?.releases, release("1.37.0", "1.37.2"));

  // Not Vaultwarden at all: auto skips the app layer, --app vaultwarden fails it.
  const other = dir.join("other.db");
  await Deno.copyFile(new URL("../fixtures/ltx/states/small.db", import.meta.url), other);
  assertEquals((await verify("--file", other)).code, 0);
  const demanded = await verify("--file", other, "--app", "vaultwarden");
  assertEquals(demanded.code, 7, demanded.stdout);
  assertEquals(failed(demanded.json), ["app.detect"]);
  await Deno.remove(other);

  // Not one byte, mtime or sidecar file changed.
  assertEquals(await dirState(dir.path), before);
  const all = printed.join("\n");
  assert(!/[A-Za-z0-9._%+-]+@example\.(com|org|net)/.test(all), "an e-mail address was printed");
  assert(!/\b2\.[A-Za-z0-9+/=]{8,}\|/.test(all), "an encrypted string was printed");
});

Deno.test("verify: an LTX file whose header breaks the format rules fails the listing (exit 5)", async () => {
  await using dir = await makeTempDir();
  const cases: [string, string, (v: DataView) => void, string][] = [
    ["flags", "ltx/0/0000000000000003-0000000000000003.ltx", (v) => v.setUint32(4, 6), "flags"],
    [
      "page-size",
      "ltx/9/0000000000000001-0000000000000004.ltx",
      (v) => v.setUint32(8, 1000),
      "1000",
    ],
  ];
  for (const [name, key, edit, words] of cases) {
    const root = dir.join(name);
    await copyTree(LTX, root);
    const bytes = await Deno.readFile(`${root}/${key}`);
    edit(new DataView(bytes.buffer));
    await Deno.writeFile(`${root}/${key}`, bytes);
    const r = await verify(`file://${root}`, "--app", "none");
    assertEquals(r.code, 5, r.stdout);
    const bad = r.json.checks.filter((c) => c.status === "fail");
    assertEquals(bad.length, 1, r.stdout);
    assert(bad[0].id.startsWith("listing."), bad[0].id);
    assertStringIncludes(bad[0].message, key);
    assertStringIncludes(bad[0].message, words);
  }
});

/** A replica big enough (~24 MB of random pages) that restoring it takes a moment. */
async function bigReplica(dir: string): Promise<string> {
  const dbPath = `${dir}/big.db`;
  const replica = `${dir}/big-replica`;
  const config = await writeLitestreamConfig(
    dir,
    [{ path: dbPath, replicas: [{ path: replica }] }],
    {
      fileName: "big.yml",
    },
  );
  const db = openWalDatabase(dbPath);
  try {
    db.exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
    const rep = await startReplicate(config);
    try {
      db.exec("BEGIN");
      for (let i = 0; i < 24; i++) {
        db.prepare("INSERT INTO blobs (b) VALUES (randomblob(1000000))").run();
      }
      db.exec("COMMIT");
      await rep.waitForSync({ timeoutMs: 60_000 });
    } finally {
      await rep.stop();
    }
  } finally {
    db.close();
  }
  return replica;
}

Deno.test("verify --all: SIGINT while several databases restore removes every temp directory", async () => {
  await using dir = await makeTempDir();
  const replica = await bigReplica(dir.path);
  await copyTree(replica, dir.join("big-replica-2"));
  const config = dir.join("all.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${dir.join("a.db")}\n    replicas:\n      - path: ${replica}\n` +
      `  - path: ${dir.join("b.db")}\n    replicas:\n      - path: ${dir.join("big-replica-2")}\n`,
  );
  const tmpdir = dir.join("tmp");
  await Deno.mkdir(tmpdir);
  const verifyDirs = () =>
    [...Deno.readDirSync(tmpdir)].filter((e) => e.name.startsWith("litewarden-verify-")).length;
  let interrupted = false;
  for (let attempt = 0; attempt < 5 && !interrupted; attempt++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "verify", "--all", "--config", config, "--app", "none"],
      env: { TMPDIR: tmpdir, NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let exited = false;
    child.status.then(() => (exited = true));
    // Signal once both restores have their temp directory.
    const deadline = Date.now() + 20_000;
    while (!exited && Date.now() < deadline && verifyDirs() < 2) {
      await new Promise((r) => setTimeout(r, 2));
    }
    try {
      child.kill("SIGINT");
    } catch {
      // Already finished: try again.
    }
    const status = await child.output();
    if (status.code === 130) {
      // Exited through the cleanup handler, not killed by the signal's default action.
      assertEquals(status.signal, null);
      interrupted = true;
    } else {
      assertEquals(status.code, 0, new TextDecoder().decode(status.stderr));
    }
    assertEquals([...Deno.readDirSync(tmpdir)].map((e) => e.name), []);
  }
  assert(interrupted, "verify finished before it could be interrupted, five times");
});
