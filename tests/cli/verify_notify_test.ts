/**
 * `verify --ping-url` and `--metrics-file` on a real Vaultwarden replica (the sample Litestream
 * v0.3.13 wrote, copied), the way cron and node_exporter's textfile collector consume them:
 * what the ping receiver gets (URL, `/fail` with a query kept a query, the JSON body), that a
 * monitoring problem never changes the verdict, and that the metrics file is valid text format,
 * replaced atomically and keeps the last success across failed runs.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { copyTree, makeTempDir } from "../support/tmp.ts";
import type { TempDir } from "../support/tmp.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;

interface Hit {
  method: string;
  path: string;
  search: string;
  contentType: string | null;
  body: string;
}

interface PingDoc {
  ok: boolean;
  exitCode: number;
  command: string;
  subject: string;
  app: { name: string } | null;
}

/** A healthchecks-style receiver on 127.0.0.1; paths under /broken answer HTTP 500. */
function receiver() {
  const hits: Hit[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    hits.push({
      method: req.method,
      path: u.pathname,
      search: u.search,
      contentType: req.headers.get("content-type"),
      body: await req.text(),
    });
    return new Response("OK", { status: u.pathname.startsWith("/broken") ? 500 : 200 });
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    hits,
    stop: () => server.shutdown(),
  };
}

/** Flips a byte in the middle of one WAL segment: the restore fails (exit 5). */
async function damage(replica: string): Promise<void> {
  const gen = [...Deno.readDirSync(`${replica}/generations`)][0].name;
  const wal = `${replica}/generations/${gen}/wal`;
  const seg = [...Deno.readDirSync(wal)].map((e) => e.name).sort()[1];
  const bytes = await Deno.readFile(`${wal}/${seg}`);
  bytes[bytes.length >> 1] ^= 0x08;
  await Deno.writeFile(`${wal}/${seg}`, bytes);
}

/** A clean and a damaged copy of the sample replica. */
async function replicas(dir: TempDir): Promise<{ clean: string; damaged: string }> {
  const clean = dir.join("clean");
  const damaged = dir.join("damaged");
  await copyTree(SAMPLE, clean);
  await copyTree(SAMPLE, damaged);
  await damage(damaged);
  return { clean: `file://${clean}`, damaged: `file://${damaged}` };
}

Deno.test("verify --ping-url: the URL on success, <url>/fail on failure, the report as body", async () => {
  await using dir = await makeTempDir();
  const { clean, damaged } = await replicas(dir);
  const rx = receiver();
  try {
    const url = `${rx.base}/ping/abc?rid=7`;
    const ok = await runCli(["verify", clean, "--json", "--ping-url", url]);
    assertEquals(ok.code, 0, ok.stdout);
    assertEquals(ok.stderr, "");
    // stdout stays the plain report.
    assertEquals((JSON.parse(ok.stdout) as PingDoc).exitCode, 0);
    const bad = await runCli(["verify", damaged, "--ping-url", url]);
    assertEquals(bad.code, 5, bad.stdout);
    // healthchecks.io: https://hc-ping.com/UUID/fail?rid=… — the query stays a query.
    const slash = await runCli(["verify", damaged, "--ping-url", `${rx.base}/ping/def/`]);
    assertEquals(slash.code, 5);
    assertEquals(
      rx.hits.map((h) => [h.method, h.path, h.search]),
      [
        ["POST", "/ping/abc", "?rid=7"],
        ["POST", "/ping/abc/fail", "?rid=7"],
        ["POST", "/ping/def/fail", ""],
      ],
    );
    for (const h of rx.hits) assertEquals(h.contentType, "application/json");
    // The body is the same document `--json` prints: one report for one database.
    const [okBody, badBody] = rx.hits.map((h) => JSON.parse(h.body) as PingDoc);
    assertEquals(
      [okBody.ok, okBody.exitCode, okBody.command, okBody.app?.name],
      [true, 0, "verify", "vaultwarden"],
    );
    assertEquals([badBody.ok, badBody.exitCode], [false, 5]);
    for (const h of rx.hits) assert(!EMAIL.test(h.body), "an e-mail address was sent");
    assert(!/\b2\.[A-Za-z0-9+/=]{8,}\|/.test(rx.hits.map((h) => h.body).join("")));
  } finally {
    await rx.stop();
  }
});

Deno.test("verify --ping-url: a receiver error or an unreachable URL only warns", async () => {
  await using dir = await makeTempDir();
  const { clean, damaged } = await replicas(dir);
  const rx = receiver();
  try {
    const http500 = await runCli(["verify", clean, "--ping-url", `${rx.base}/broken/abc`]);
    assertEquals(http500.code, 0);
    assertStringIncludes(http500.stderr, "warning: ping to");
    assertStringIncludes(http500.stderr, "answered HTTP 500");
    // Unreachable, on a failing run: the verdict stays 5; only scheme and host are printed (the
    // path of a healthchecks.io URL is the check's secret UUID; userinfo and query likewise).
    const unreachable = await runCli([
      "verify",
      damaged,
      "--json",
      "--ping-url",
      "http://user:t0ken-x@127.0.0.1:9/ping/abc?key=qu3ry-x",
    ]);
    assertEquals(unreachable.code, 5);
    assertEquals((JSON.parse(unreachable.stdout) as PingDoc).exitCode, 5);
    assertStringIncludes(unreachable.stderr, "warning: ping to http://127.0.0.1:9/… failed");
    assert(
      !/t0ken-x|qu3ry-x|ping\/abc/.test(unreachable.stderr + unreachable.stdout),
      unreachable.stderr,
    );
  } finally {
    await rx.stop();
  }
});

/** Prometheus text format, checked line by line; returns `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  assert(text.endsWith("\n"), "the file ends with a newline");
  const samples = new Map<string, number>();
  const seen: string[] = [];
  let current = "";
  for (const line of text.slice(0, -1).split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-z_]+) (.+)$/.exec(line);
    const name = meta ? meta[2] : /^([a-z_]+)\{/.exec(line)?.[1];
    assert(name, `not a text-format line: ${line}`);
    // Each metric's HELP, TYPE and samples form one group (the text format requires it).
    if (name !== current) {
      assert(!seen.includes(name), `${name} appears in two groups`);
      seen.push(name);
      current = name;
      assert(line.startsWith(`# HELP ${name} `), `${name} starts without HELP`);
    }
    if (meta) {
      if (meta[1] === "TYPE") assertEquals(meta[3], "gauge");
      continue;
    }
    const m = /^([a-z_]+\{database="(?:[^"\\\n]|\\["\\n])*"\}) (-?\d+(?:\.\d+)?)$/.exec(line);
    assert(m, `bad sample line: ${line}`);
    assert(!samples.has(m[1]), `duplicate sample ${m[1]}`);
    samples.set(m[1], Number(m[2]));
  }
  return samples;
}

Deno.test("verify --metrics-file: text format, replaced atomically, last success kept", async () => {
  await using dir = await makeTempDir();
  const replica = dir.join("replica");
  await copyTree(SAMPLE, replica);
  const db = dir.join("vault.db");
  const config = dir.join("litestream.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${db}\n    replicas:\n      - path: ${replica}\n`,
  );
  const metricsDir = dir.join("textfile");
  await Deno.mkdir(metricsDir);
  const metrics = `${metricsDir}/litewarden.prom`;
  const label = `{database="${db}"}`;
  const get = (m: Map<string, number>, name: string) => m.get(`${name}${label}`);

  const t0 = Math.floor(Date.now() / 1000);
  const first = await runCli([
    "verify",
    db,
    "--config",
    config,
    "--json",
    "--metrics-file",
    metrics,
  ]);
  assertEquals(first.code, 0, first.stdout);
  const age = (JSON.parse(first.stdout) as { restorePoint: { ageSeconds: number } }).restorePoint
    .ageSeconds;
  const m1 = parseMetrics(await Deno.readTextFile(metrics));
  assertEquals(get(m1, "litewarden_verify_success"), 1);
  assertEquals(get(m1, "litewarden_verify_exit_code"), 0);
  assertEquals(get(m1, "litewarden_verify_check_failures"), 0);
  assertEquals(get(m1, "litewarden_verify_check_warnings"), 0);
  const run1 = get(m1, "litewarden_verify_last_run_timestamp_seconds")!;
  assert(run1 >= t0 && run1 <= Date.now() / 1000 + 1, String(run1));
  assertEquals(get(m1, "litewarden_verify_last_success_timestamp_seconds"), run1);
  assert(Math.abs(get(m1, "litewarden_restore_point_age_seconds")! - age) <= 2);
  const inode1 = (await Deno.stat(metrics)).ino;

  // The replica is damaged in place; a second later verify runs again.
  await damage(replica);
  await new Promise((r) => setTimeout(r, 1100));
  const second = await runCli(["verify", db, "--config", config, "--metrics-file", metrics]);
  assertEquals(second.code, 5, second.stdout);
  const m2 = parseMetrics(await Deno.readTextFile(metrics));
  assertEquals(get(m2, "litewarden_verify_success"), 0);
  assertEquals(get(m2, "litewarden_verify_exit_code"), 5);
  assertEquals(get(m2, "litewarden_verify_check_failures"), 1);
  assertEquals(get(m2, "litewarden_verify_check_warnings"), 0);
  assert(get(m2, "litewarden_verify_last_run_timestamp_seconds")! > run1);
  assertEquals(get(m2, "litewarden_verify_last_success_timestamp_seconds"), run1);
  // The point was found (only its restore failed), so its age is still reported.
  assert(get(m2, "litewarden_restore_point_age_seconds")! >= age);
  // Replaced by a rename (a reader never sees half a file), and no temp file is left.
  if (inode1 !== null) assert((await Deno.stat(metrics)).ino !== inode1, "rewritten in place");
  assertEquals([...Deno.readDirSync(metricsDir)].map((e) => e.name), ["litewarden.prom"]);
});

Deno.test("verify --all --metrics-file: one series per database, odd paths escaped", async () => {
  await using dir = await makeTempDir();
  const { clean, damaged } = await replicas(dir);
  // A quote and a backslash in a database path must not break the file for node_exporter.
  const odd = dir.join('va"ult\\1.db');
  const plain = dir.join("plain.db");
  const config = dir.join("litestream.yml");
  const yamlQuote = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const write = (oddReplica: string) =>
    Deno.writeTextFile(
      config,
      `dbs:\n  - path: ${yamlQuote(odd)}\n    replicas:\n      - url: ${oddReplica}\n` +
        `  - path: ${plain}\n    replicas:\n      - url: ${damaged}\n`,
    );
  const metrics = dir.join("litewarden.prom");
  const oddLabel = `{database="${odd.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"}`;
  const plainLabel = `{database="${plain}"}`;

  await write(clean);
  const first = await runCli(["verify", "--all", "--config", config, "--metrics-file", metrics]);
  assertEquals(first.code, 5, first.stdout);
  const m1 = parseMetrics(await Deno.readTextFile(metrics));
  assertEquals(m1.get(`litewarden_verify_success${oddLabel}`), 1);
  assertEquals(m1.get(`litewarden_verify_success${plainLabel}`), 0);
  assertEquals(m1.get(`litewarden_verify_exit_code${plainLabel}`), 5);
  const success = m1.get(`litewarden_verify_last_success_timestamp_seconds${oddLabel}`);
  assert(success !== undefined);
  // Never succeeded: no last-success sample rather than a made-up one.
  assertEquals(m1.has(`litewarden_verify_last_success_timestamp_seconds${plainLabel}`), false);

  // Now the odd one fails too: its last success survives, read back through the escaping.
  await write(damaged);
  const second = await runCli(["verify", "--all", "--config", config, "--metrics-file", metrics]);
  assertEquals(second.code, 5);
  const m2 = parseMetrics(await Deno.readTextFile(metrics));
  assertEquals(m2.get(`litewarden_verify_success${oddLabel}`), 0);
  assertEquals(m2.get(`litewarden_verify_last_success_timestamp_seconds${oddLabel}`), success);
});

Deno.test("verify --metrics-file in a missing directory warns; the verdict and the ping stand", async () => {
  await using dir = await makeTempDir();
  const { clean } = await replicas(dir);
  const rx = receiver();
  try {
    const r = await runCli([
      "verify",
      clean,
      "--metrics-file",
      dir.join("no-such-dir", "litewarden.prom"),
      "--ping-url",
      `${rx.base}/ping/abc`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stderr, "warning: could not write the metrics file");
    assertEquals(rx.hits.map((h) => h.path), ["/ping/abc"]);
  } finally {
    await rx.stop();
  }
});

Deno.test("verify --metrics-file counts warnings, which exit 0 alone cannot tell cron", async () => {
  await using dir = await makeTempDir();
  // An LTX tree with a hole in level 0 (the snapshot still covers the latest point): exit 0 with
  // a chain.levels warning.
  const tree = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;
  const replica = dir.join("replica");
  await copyTree(tree, replica);
  await Deno.remove(`${replica}/ltx/0/0000000000000003-0000000000000003.ltx`);
  const metrics = dir.join("m.prom");
  const r = await runCli([
    "verify",
    `file://${replica}`,
    "--app",
    "none",
    "--metrics-file",
    metrics,
  ]);
  assertEquals(r.code, 0, r.stdout);
  const m = parseMetrics(await Deno.readTextFile(metrics));
  const label = `{database="file://${replica}"}`;
  assertEquals(m.get(`litewarden_verify_check_warnings${label}`), 1);
  assertEquals(m.get(`litewarden_verify_success${label}`), 1);
});
