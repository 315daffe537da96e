/**
 * "Never print credentials", end to end: a replica URL whose secret has an unencoded `/` (as AWS
 * secret keys often do), an endpoint with credentials (flag and config), a ping URL without a
 * scheme; SFTP passwords; Azure account keys. Scans everything a run emits — stdout, stderr, the JSON fields, the ping body, the
 * metrics file — for every part of the secret.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { withEnv } from "../support/env.ts";
import { startS3Server, uploadTree } from "../support/s3_server.ts";
import { haveSshd, startSftpServer } from "../support/sshd_server.ts";
import { makeTempDir } from "../support/tmp.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { AbsStorage } from "../../src/storage/abs.ts";
import { absTargetFor, startAzurite } from "../support/azurite_server.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;
const KEY_ID = "AKIAREDACTTEST7";
const SECRET = "wJalr/XUtnFEMI+K7MDENG/bPxRfiCYzzKEY";
/** Every piece of the secret that would betray it (each side of the `/`s, both halves). */
const LEAKS = [KEY_ID, ...SECRET.split("/"), encodeURIComponent(SECRET)];

function assertNoLeak(text: string, what: string): void {
  for (const piece of LEAKS) assert(!text.includes(piece), `${what} shows ${piece}: ${text}`);
}

/** A receiver that records ping bodies (127.0.0.1 only). */
function receiver() {
  const bodies: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    bodies.push(`${new URL(req.url).pathname} ${await req.text()}`);
    return new Response("OK");
  });
  return { base: `http://127.0.0.1:${server.addr.port}`, bodies, stop: () => server.shutdown() };
}

Deno.test("secrets in URLs never reach a message, a JSON field, the ping body or a metric", async (t) => {
  await using dir = await makeTempDir();
  const server = await startS3Server();
  const rx = receiver();
  try {
    await server.createBucket("vault");
    const storage = new S3Storage({
      type: "s3",
      name: "s3",
      bucket: "vault",
      path: "vw",
      endpoint: server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      skipVerify: false,
      credentials: server.credentials,
    });
    await uploadTree(storage, SAMPLE);
    storage.close();
    const ep = encodeURIComponent(server.endpoint);
    const url = (bucket: string) => `s3://${KEY_ID}:${SECRET}@${bucket}/vw?endpoint=${ep}`;
    const metrics = dir.join("lw.prom");

    await t.step(
      "a / in the secret: parsed as credentials, verify passes, nothing leaks",
      async () => {
        const r = await runCli([
          "verify",
          url("vault"),
          "--json",
          "--ping-url",
          `${rx.base}/ping/ok`,
          "--metrics-file",
          metrics,
        ]);
        assertEquals(r.code, 0, r.stdout + r.stderr);
        const doc = JSON.parse(r.stdout);
        assertEquals(doc.location, `s3://vault/vw (endpoint ${server.endpoint})`);
        assertEquals(doc.subject, doc.location);
        assertNoLeak(r.stdout + r.stderr, "verify output");
        assertEquals(rx.bodies.length, 1);
        assertNoLeak(rx.bodies.join("\n"), "the ping body");
        assertNoLeak(await Deno.readTextFile(metrics), "the metrics file");
      },
    );

    await t.step(
      "a failing run (no such bucket): the error line and JSON leak nothing",
      async () => {
        for (const cmd of ["list", "verify", "restore"]) {
          const out = cmd === "restore" ? ["-o", dir.join("restored.db")] : [];
          const r = await runCli([cmd, url("nope"), "--json", ...out]);
          assert(r.code === 3 || r.code === 4, `${cmd}: exit ${r.code} ${r.stderr}`);
          assertStringIncludes(r.stdout + r.stderr, "nope");
          assertNoLeak(r.stdout + r.stderr, `${cmd} output`);
        }
        const ping = await runCli([
          "verify",
          url("nope"),
          "--json",
          "--ping-url",
          `${rx.base}/ping/fail-case`,
          "--metrics-file",
          metrics,
        ]);
        assertEquals(ping.code, 4, ping.stderr);
        assertNoLeak(rx.bodies.join("\n"), "the ping body");
        assertNoLeak(await Deno.readTextFile(metrics), "the metrics file");
      },
    );

    await t.step(
      "credentials in an endpoint (URL and config, --all): exit 2, not echoed",
      async () => {
        const inUrl = await runCli([
          "list",
          `s3://vault/vw?endpoint=${encodeURIComponent(`http://${KEY_ID}:${SECRET}@127.0.0.1:9`)}`,
        ]);
        assertEquals(inUrl.code, 2, inUrl.stderr);
        assertStringIncludes(inUrl.stderr, "must not contain credentials");
        assertNoLeak(inUrl.stdout + inUrl.stderr, "list output");
        const config = dir.join("litestream.yml");
        await Deno.writeTextFile(
          config,
          [
            "dbs:",
            `  - path: ${dir.join("a.db")}`,
            "    replicas:",
            "      - type: s3",
            "        bucket: vault",
            "        path: vw",
            `        endpoint: http://${KEY_ID}:${SECRET}@127.0.0.1:9`,
            `  - path: ${dir.join("b.db")}`,
            "    replicas:",
            `      - url: s3://${KEY_ID}:${SECRET}@vault/vw?endpoint=http://${KEY_ID}:${SECRET}@127.0.0.1:9`,
            "",
          ].join("\n"),
        );
        const all = await runCli(["verify", "--all", "--config", config, "--json"]);
        assertEquals(all.code, 2, all.stdout);
        assertStringIncludes(all.stdout, "must not contain credentials");
        assertNoLeak(all.stdout + all.stderr, "verify --all output");
        const one = await runCli(["list", dir.join("a.db"), "--config", config]);
        assertEquals(one.code, 2, one.stderr);
        assertNoLeak(one.stdout + one.stderr, "list output");
      },
    );

    await t.step("a ping URL without a scheme: exit 2 before any work, not echoed", async () => {
      const r = await runCli([
        "verify",
        url("vault"),
        "--ping-url",
        "hc-ping.com/0f3e-uuid-secret",
      ]);
      assertEquals(r.code, 2, r.stderr);
      assertStringIncludes(r.stderr, "--ping-url is not an absolute http(s) URL");
      assert(!r.stderr.includes("0f3e-uuid-secret"), r.stderr);
      assertNoLeak(r.stdout + r.stderr, "verify output");
    });
  } finally {
    await rx.stop();
    await server.stop();
  }
});

Deno.test({
  name:
    "SFTP passwords (URL userinfo with a /, config) never reach a message, JSON, the ping body or a metric",
  ignore: !haveSshd(),
  async fn(t) {
    await using dir = await makeTempDir();
    await using server = await startSftpServer();
    const rx = receiver();
    const PASSWORD = "Xq7zz/Pa55+w0rd/very-secret";
    const pieces = [...PASSWORD.split("/"), encodeURIComponent(PASSWORD)];
    const noLeak = (text: string, what: string) => {
      for (const p of pieces) assert(!text.includes(p), `${what} shows ${p}: ${text}`);
    };
    const replica = `${server.dataDir}/vw`;
    const cp = await new Deno.Command("cp", { args: ["-a", SAMPLE, replica] }).output();
    assert(cp.success);
    const url = (path: string) => `sftp://${server.user}:${PASSWORD}@${server.hostPort}${path}`;
    const known = { LITEWARDEN_SFTP_KNOWN_HOSTS: server.knownHostsPath };
    const withKey = { ...known, LITEWARDEN_SFTP_KEY_PATH: server.keyPath };
    const cli = (env: Record<string, string | undefined>, args: string[]) =>
      withEnv(env, () => runCli(args));
    try {
      await t.step("verify with password and key: passes, nothing leaks", async () => {
        const metrics = dir.join("sftp.prom");
        const r = await cli(withKey, [
          "verify",
          url(replica),
          "--json",
          "--ping-url",
          `${rx.base}/ping/sftp`,
          "--metrics-file",
          metrics,
        ]);
        assertEquals(r.code, 0, r.stdout + r.stderr);
        assertEquals(JSON.parse(r.stdout).location, `sftp://${server.hostPort}${replica}`);
        noLeak(r.stdout + r.stderr, "verify output");
        noLeak(rx.bodies.join("\n"), "the ping body");
        noLeak(await Deno.readTextFile(metrics), "the metrics file");
      });
      await t.step("no backup at the path, and a refused password: nothing leaks", async () => {
        for (const cmd of ["list", "verify", "restore"]) {
          const out = cmd === "restore" ? ["-o", dir.join("restored.db")] : [];
          const r = await cli(withKey, [cmd, url(`${server.dataDir}/nothing`), "--json", ...out]);
          assertEquals(r.code, 3, `${cmd}: ${r.stdout}${r.stderr}`);
          noLeak(r.stdout + r.stderr, `${cmd} output`);
        }
        const r = await cli({ ...known, LITEWARDEN_SFTP_KEY_PATH: undefined }, [
          "list",
          url(replica),
        ]);
        assertEquals(r.code, 4, r.stderr);
        assertStringIncludes(r.stderr, "authentication refused");
        noLeak(r.stdout + r.stderr, "list output");
      });
      await t.step("the password in litestream.yml: nothing leaks", async () => {
        const config = dir.join("sftp.yml");
        await Deno.writeTextFile(
          config,
          [
            "dbs:",
            `  - path: ${dir.join("db.sqlite3")}`,
            "    replicas:",
            "      - type: sftp",
            `        host: ${server.hostPort}`,
            `        user: ${server.user}`,
            `        password: "${PASSWORD}"`,
            `        path: ${replica}`,
            "",
          ].join("\n"),
        );
        const r = await cli(known, ["list", "--config", config, "--json"]);
        assertEquals(r.code, 4, r.stdout + r.stderr);
        noLeak(r.stdout + r.stderr, "list output");
      });
    } finally {
      await rx.stop();
    }
  },
});

Deno.test("Azure account keys (config and $LITESTREAM_AZURE_ACCOUNT_KEY) never reach a message, JSON, the ping body or a metric", async (t) => {
  await using dir = await makeTempDir();
  const server = await startAzurite();
  const rx = receiver();
  // Every run-length of the base64 key between its '/' and '+' that could identify it.
  const pieces = [
    server.accountKey,
    ...server.accountKey.split(/[/+=]/).filter((p) => p.length >= 8),
  ];
  const noLeak = (text: string, what: string) => {
    for (const p of pieces) assert(!text.includes(p), `${what} shows ${p}: ${text}`);
  };
  const saved = Deno.env.get("LITESTREAM_AZURE_ACCOUNT_KEY");
  try {
    await server.createContainer("vault");
    await uploadTree(new AbsStorage(absTargetFor(server, "vault", "vw")), SAMPLE);
    const config = dir.join("abs.yml");
    const writeConfig = (container: string, key: string) =>
      Deno.writeTextFile(
        config,
        [
          "dbs:",
          `  - path: ${dir.join("db.sqlite3")}`,
          "    replicas:",
          "      - type: abs",
          `        account-name: ${server.accountName}`,
          `        account-key: "${key}"`,
          `        bucket: ${container}`,
          "        path: vw",
          `        endpoint: ${server.endpoint}`,
          "",
        ].join("\n"),
      );
    await t.step("the key in litestream.yml: verify passes, nothing leaks", async () => {
      await writeConfig("vault", server.accountKey);
      const metrics = dir.join("abs.prom");
      const r = await runCli([
        "verify",
        "--config",
        config,
        "--json",
        "--ping-url",
        `${rx.base}/ping/abs`,
        "--metrics-file",
        metrics,
      ]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      noLeak(r.stdout + r.stderr, "verify output");
      noLeak(rx.bodies.join("\n"), "the ping body");
      noLeak(await Deno.readTextFile(metrics), "the metrics file");
    });
    await t.step("a missing container, a wrong key: exit 4, nothing leaks", async () => {
      await writeConfig("nope", server.accountKey);
      for (const cmd of ["list", "verify", "restore"]) {
        const out = cmd === "restore" ? ["-o", dir.join("restored.db")] : [];
        const r = await runCli([cmd, "--config", config, "--json", ...out]);
        assertEquals(r.code, 4, `${cmd}: ${r.stdout}${r.stderr}`);
        assertStringIncludes(r.stdout + r.stderr, "container nope does not exist");
        noLeak(r.stdout + r.stderr, `${cmd} output`);
      }
      // A wrong key that shares most of the real one: neither is shown.
      const wrong = `${server.accountKey.slice(0, -8)}AAAAAAA=`;
      await writeConfig("vault", wrong);
      const r = await runCli(["list", "--config", config]);
      assertEquals(r.code, 4, r.stderr);
      assertStringIncludes(r.stderr, "Azure rejected the request");
      noLeak(r.stdout + r.stderr, "list output");
      assert(!r.stderr.includes(wrong.slice(0, 40)), r.stderr);
    });
    await t.step("URL form, key from the environment: nothing leaks", async () => {
      Deno.env.set("LITESTREAM_AZURE_ACCOUNT_KEY", server.accountKey);
      const url = `abs://${server.accountName}@vault/vw?endpoint=${server.endpoint}`;
      const r = await runCli(["list", url, "--json"]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      noLeak(r.stdout + r.stderr, "list output");
      const missing = await runCli(["verify", url.replace("@vault/", "@nope/"), "--json"]);
      assertEquals(missing.code, 4, missing.stdout);
      noLeak(missing.stdout + missing.stderr, "verify output");
    });
  } finally {
    if (saved === undefined) Deno.env.delete("LITESTREAM_AZURE_ACCOUNT_KEY");
    else Deno.env.set("LITESTREAM_AZURE_ACCOUNT_KEY", saved);
    await rx.stop();
    await server.stop();
  }
});
