import { assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import { makeTempDir } from "../support/tmp.ts";

const LTX = new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;

/** A healthchecks-style receiver on 127.0.0.1 that records what it was sent. */
function receiver() {
  const hits: { path: string; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    hits.push({ path: new URL(req.url).pathname, body: await req.text() });
    return new Response("OK");
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/ping/abc`,
    hits,
    stop: () => server.shutdown(),
  };
}

Deno.test("verify --ping-url: success pings the URL, failure pings URL/fail, with the JSON report", async () => {
  const rx = receiver();
  try {
    const ok = await runCli(["verify", `file://${LTX}`, "--app", "none", "--ping-url", rx.url]);
    assertEquals(ok.code, 0);
    const bad = await runCli([
      "verify",
      `file://${LTX}`,
      "--app",
      "none",
      "--max-age",
      "1h",
      "--ping-url",
      rx.url,
    ]);
    assertEquals(bad.code, 8);
    assertEquals(rx.hits.map((h) => h.path), ["/ping/abc", "/ping/abc/fail"]);
    const body = JSON.parse(rx.hits[1].body) as { exitCode: number }[];
    assertEquals(body[0].exitCode, 8);
    // An unreachable ping URL only warns; the verdict stays.
    const unreachable = await runCli([
      "verify",
      `file://${LTX}`,
      "--app",
      "none",
      "--ping-url",
      "http://127.0.0.1:9/ping",
    ]);
    assertEquals(unreachable.code, 0);
    assertStringIncludes(unreachable.stderr, "warning: ping to http://127.0.0.1:9/ping failed");
  } finally {
    await rx.stop();
  }
});

Deno.test("verify --metrics-file: Prometheus gauges, written atomically, last success kept", async () => {
  await using dir = await makeTempDir();
  const metrics = dir.join("litewarden.prom");
  const first = await runCli([
    "verify",
    `file://${LTX}`,
    "--app",
    "none",
    "--metrics-file",
    metrics,
  ]);
  assertEquals(first.code, 0);
  const text1 = await Deno.readTextFile(metrics);
  assertMatch(text1, /^litewarden_verify_success\{database="[^"]+"\} 1$/m);
  assertMatch(text1, /^litewarden_restore_point_age_seconds\{database="[^"]+"\} \d+$/m);
  const lastSuccess =
    /^litewarden_verify_last_success_timestamp_seconds\{[^}]+\} (\d+)$/m.exec(text1)![1];
  const second = await runCli([
    "verify",
    `file://${LTX}`,
    "--app",
    "none",
    "--max-age",
    "1h",
    "--metrics-file",
    metrics,
  ]);
  assertEquals(second.code, 8);
  const text2 = await Deno.readTextFile(metrics);
  assertMatch(text2, /^litewarden_verify_success\{database="[^"]+"\} 0$/m);
  assertMatch(text2, /^litewarden_verify_exit_code\{database="[^"]+"\} 8$/m);
  assertMatch(text2, /^litewarden_verify_check_failures\{database="[^"]+"\} 1$/m);
  // The failed run keeps the earlier success time.
  assertStringIncludes(text2, `} ${lastSuccess}\n`);
  // Only the metrics file is left in the directory: the temp file was renamed into place.
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name), ["litewarden.prom"]);
});

Deno.test("verify --all: one report per database, exit code of the worst", async () => {
  await using dir = await makeTempDir();
  const broken = dir.join("broken");
  await Deno.mkdir(broken);
  const config = dir.join("litestream.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${dir.join("good.db")}\n    replicas:\n      - path: ${LTX}\n  - path: ${
      dir.join("bad.db")
    }\n    replicas:\n      - path: ${broken}\n`,
  );
  const r = await runCliJson<
    { ok: boolean; exitCode: number; results: { subject: string; exitCode: number }[] }
  >([
    "verify",
    "--all",
    "--config",
    config,
    "--app",
    "none",
    "--json",
  ]);
  assertEquals(r.code, 3);
  assertEquals(r.json.exitCode, 3);
  assertEquals(r.json.results.map((x) => [x.subject, x.exitCode]), [
    [dir.join("good.db"), 0],
    [dir.join("bad.db"), 3],
  ]);
});
