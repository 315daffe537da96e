import { DEFAULT_CONFIG_PATH, resolveTarget, selectReplicas } from "../../src/config/resolve.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import { withTempDir } from "../support/tmp.ts";

const CONFIG = `
access-key-id: CfgKeyId
secret-access-key: CfgSecretValue
dbs:
  - path: /var/lib/vw/db.sqlite3
    replicas:
      - url: s3://vw/db
      - url: gcs://vw/db
        name: offsite
  - path: data/app.db
    replica:
      path: backups/app
  - path: /only/gcs.db
    replica: {url: "gs://b/p"}
  - path: /no/replicas.db
  - dir: /tenants
    pattern: "*.db"
    replica: {url: "s3://t/p"}
`;

async function withConfig(
  text: string,
  fn: (dir: string, cfg: string) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const cfg = `${dir}/litestream.yml`;
    await Deno.writeTextFile(cfg, text);
    await fn(dir, cfg);
  });
}

async function rejects2(p: () => Promise<unknown>, message: string): Promise<LitewardenError> {
  const err = await assertRejects(p, LitewardenError);
  assertEquals(err.exitCode, 2);
  assertEquals(err.message, message);
  return err;
}

const defaultConfigExists = (() => {
  try {
    Deno.statSync(DEFAULT_CONFIG_PATH);
    return true;
  } catch {
    return false;
  }
})();

Deno.test("URL form: s3 and relative file URLs", async () => {
  const r = await resolveTarget("s3://bkt/prefix?region=eu-1", { env: {}, cwd: "/w" });
  assertEquals(r.source, "url");
  assertEquals(r.dbPath, undefined);
  assertEquals(r.replicas.length, 1);
  assertEquals(r.replicas[0].type === "s3" && [r.replicas[0].bucket, r.replicas[0].region], [
    "bkt",
    "eu-1",
  ]);
  const f = await resolveTarget("file://./samples/replica", { env: {}, cwd: "/w" });
  assertEquals(f.replicas, [{ type: "file", name: "file", path: "/w/samples/replica" }]);
});

Deno.test("URL form: --config together with a URL is refused; $LITESTREAM_CONFIG is ignored", async () => {
  await rejects2(
    () => resolveTarget("s3://b/p", { configPath: "/x.yml", env: {}, cwd: "/" }),
    "use either a replica URL or --config, not both",
  );
  const r = await resolveTarget("s3://b/p", {
    env: { LITESTREAM_CONFIG: "/does/not/exist.yml" },
    cwd: "/",
  });
  assertEquals(r.source, "url");
});

Deno.test("URL form: unsupported backends; abs needs its account key", async () => {
  await rejects2(
    () => resolveTarget("nats://h/p", { env: {}, cwd: "/" }),
    "replica type nats is not supported by litewarden yet (supported: file, s3, sftp, abs)",
  );
  await rejects2(
    () => resolveTarget("abs://acct@container/p", { env: {}, cwd: "/" }),
    "no account key for abs replica abs in abs://container/p; set account-key or $LITESTREAM_AZURE_ACCOUNT_KEY",
  );
});

Deno.test("config form: database path matched exactly, replicas carry dbPath", async () => {
  await withConfig(CONFIG, async (dir, cfg) => {
    const r = await resolveTarget("/var/lib/vw/db.sqlite3", { configPath: cfg, env: {}, cwd: dir });
    assertEquals(r.source, "config");
    assertEquals(r.configPath, cfg);
    assertEquals(r.dbPath, "/var/lib/vw/db.sqlite3");
    assertEquals(r.replicas.map((x) => [x.name, x.type, x.dbPath]), [
      ["s3", "s3", "/var/lib/vw/db.sqlite3"],
    ]);
    assertEquals(r.unusable?.map((u) => [u.name, u.kind, u.type]), [[
      "offsite",
      "unsupported",
      "gcs",
    ]]);

    // relative database path (and relative db path in the config) against cwd
    const rel = await resolveTarget("./data/../data/app.db", {
      configPath: cfg,
      env: {},
      cwd: dir,
    });
    assertEquals(rel.dbPath, `${dir}/data/app.db`);
    assertEquals(rel.replicas, [{
      type: "file",
      name: "file",
      path: `${dir}/backups/app`,
      dbPath: `${dir}/data/app.db`,
    }]);
    assertEquals(rel.unusable, undefined);

    // v0.5 accepts sqlite:// database paths
    const sq = await resolveTarget("sqlite:///var/lib/vw/db.sqlite3", {
      configPath: cfg,
      env: {},
      cwd: dir,
    });
    assertEquals(sq.dbPath, "/var/lib/vw/db.sqlite3");
  });
});

Deno.test("config form: unknown database lists the configured ones", async () => {
  await withConfig(CONFIG, async (dir, cfg) => {
    await rejects2(
      () => resolveTarget("/var/lib/vw/other.db", { configPath: cfg, env: {}, cwd: dir }),
      `database /var/lib/vw/other.db not found in ${cfg}; configured databases: ` +
        `/var/lib/vw/db.sqlite3, ${dir}/data/app.db, /only/gcs.db, /no/replicas.db, ` +
        "dir /tenants (pattern *.db, not supported yet)",
    );
  });
});

Deno.test("config form: the database's only replica is unsupported / it has none", async () => {
  await withConfig(CONFIG, async (dir, cfg) => {
    await rejects2(
      () => resolveTarget("/only/gcs.db", { configPath: cfg, env: {}, cwd: dir }),
      `replica type gs has no native backend in litewarden; read it through GCS's S3-compatible XML API: s3://b/p?endpoint=https://storage.googleapis.com with an HMAC key in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (in litestream.yml: type: s3, endpoint: https://storage.googleapis.com, access-key-id and secret-access-key = the HMAC key); see ${cfg} line 14 (database /only/gcs.db)`,
    );
    await rejects2(
      () => resolveTarget("/no/replicas.db", { configPath: cfg, env: {}, cwd: dir }),
      `database /no/replicas.db has no replica configured in ${cfg}`,
    );
  });
});

Deno.test("config form: v0.5 directory entries are reported as not supported yet", async () => {
  await withConfig(CONFIG, async (dir, cfg) => {
    await rejects2(
      () => resolveTarget("/tenants/acme/a.db", { configPath: cfg, env: {}, cwd: dir }),
      `database /tenants/acme/a.db is configured in ${cfg} through dir: /tenants (pattern *.db); ` +
        "litewarden does not support directory entries yet: pass the replica URL instead",
    );
  });
  await withConfig("dbs:\n  - dir: /t\n    pattern: '*.db'\n", async (dir, cfg) => {
    await rejects2(
      () => resolveTarget(undefined, { configPath: cfg, env: {}, cwd: dir }),
      `the only database entry is configured in ${cfg} through dir: /t (pattern *.db); ` +
        "litewarden does not support directory entries yet: pass the replica URL instead",
    );
  });
});

Deno.test("config form: no argument uses the only database, else lists them", async () => {
  await withConfig("dbs:\n  - path: /a.db\n    replica: {url: 's3://b/a'}\n", async (dir, cfg) => {
    const r = await resolveTarget(undefined, { configPath: cfg, env: {}, cwd: dir });
    assertEquals(r.dbPath, "/a.db");
  });
  await withConfig(
    "dbs:\n  - path: /a.db\n    replica: {url: 's3://b/a'}\n  - path: /b.db\n    replica: {url: 's3://b/b'}\n",
    async (dir, cfg) => {
      await rejects2(
        () => resolveTarget(undefined, { configPath: cfg, env: {}, cwd: dir }),
        `${cfg} configures several databases; name one: /a.db, /b.db`,
      );
    },
  );
});

Deno.test("config path: --config, then $LITESTREAM_CONFIG, relative to cwd", async () => {
  await withConfig("dbs:\n  - path: /a.db\n    replica: {url: 's3://b/a'}\n", async (dir) => {
    const viaEnv = await resolveTarget("/a.db", {
      env: { LITESTREAM_CONFIG: "litestream.yml" },
      cwd: dir,
    });
    assertEquals(viaEnv.configPath, `${dir}/litestream.yml`);
    const viaFlag = await resolveTarget("/a.db", {
      configPath: "./litestream.yml",
      env: { LITESTREAM_CONFIG: "/nope.yml" },
      cwd: dir,
    });
    assertEquals(viaFlag.configPath, `${dir}/litestream.yml`);
    await rejects2(
      () => resolveTarget("/a.db", { configPath: "missing.yml", env: {}, cwd: dir }),
      `config file ${dir}/missing.yml (from --config) not found; pass --config PATH or a replica URL`,
    );
    await rejects2(
      () => resolveTarget(undefined, { env: { LITESTREAM_CONFIG: `${dir}/gone.yml` }, cwd: dir }),
      `config file ${dir}/gone.yml (from $LITESTREAM_CONFIG) not found; pass --config PATH or a replica URL`,
    );
  });
});

Deno.test({
  name: "default config path missing: hint for no argument, not-found for a database path",
  ignore: defaultConfigExists,
  async fn() {
    await rejects2(
      () => resolveTarget(undefined, { env: {}, cwd: "/" }),
      "no replica given: pass a replica URL (s3://bucket/prefix, file:///dir) or a database path with --config",
    );
    await rejects2(
      () => resolveTarget("/var/lib/app.db", { env: {}, cwd: "/" }),
      "config file /etc/litestream.yml not found; pass --config PATH or a replica URL",
    );
  },
});

Deno.test("config errors keep their own message (syntax, structure)", async () => {
  await withConfig("dbs:\n  - path: /a\n\tx: 1\n", async (dir, cfg) => {
    await rejects2(
      () => resolveTarget("/a", { configPath: cfg, env: {}, cwd: dir }),
      `invalid YAML in ${cfg} at line 3, column 1: tabs are not allowed as indentation`,
    );
  });
});

Deno.test("duplicate replica names for the chosen database are refused", async () => {
  await withConfig(
    "dbs:\n  - path: /a.db\n    replicas:\n      - {url: 's3://b/a'}\n      - {url: 's3://c/a'}\n",
    async (dir, cfg) => {
      await rejects2(
        () => resolveTarget("/a.db", { configPath: cfg, env: {}, cwd: dir }),
        `database /a.db in ${cfg} has two replicas named s3; give each one a distinct name: key`,
      );
    },
  );
});

Deno.test("selectReplicas: all, by name, unsupported by name, unknown name", async () => {
  await withConfig(CONFIG, async (dir, cfg) => {
    const r = await resolveTarget("/var/lib/vw/db.sqlite3", { configPath: cfg, env: {}, cwd: dir });
    assertEquals(selectReplicas(r).map((x) => x.name), ["s3"]);
    assertEquals(selectReplicas(r, "s3").map((x) => x.name), ["s3"]);
    const err = assertThrows(() => selectReplicas(r, "offsite"), LitewardenError);
    assertEquals(err.exitCode, 2);
    assert(
      err.message.startsWith("replica type gcs has no native backend in litewarden"),
      err.message,
    );
    assertThrows(
      () => selectReplicas(r, "nope"),
      LitewardenError,
      "no replica named nope for /var/lib/vw/db.sqlite3; replicas: s3, offsite",
    );
  });
});

Deno.test("resolve errors never contain secrets from the config or the environment", async () => {
  const env = {
    AWS_SECRET_ACCESS_KEY: "EnvAwsSecret0001",
    LITESTREAM_SECRET_ACCESS_KEY: "EnvLsSecret00002",
  };
  await withConfig(CONFIG, async (dir, cfg) => {
    for (const arg of [undefined, "/nope.db", "/only/gcs.db", "/no/replicas.db", "/tenants/x.db"]) {
      const err = await assertRejects(
        () => resolveTarget(arg, { configPath: cfg, env, cwd: dir }),
        LitewardenError,
      );
      for (const s of ["CfgSecretValue", ...Object.values(env)]) {
        assert(!err.message.includes(s), `${err.message} leaks ${s}`);
      }
    }
  });
  for (
    const url of [
      "s3://KEY:UrlSecret77@/p",
      "gcs://KEY:UrlSecret77@b/p",
      "s3://KEY:UrlSecret77@b/p?endpoint=https://u:UrlSecret77@h",
    ]
  ) {
    const err = await assertRejects(() => resolveTarget(url, { env, cwd: "/" }), LitewardenError);
    assert(!err.message.includes("UrlSecret77"), err.message);
  }
});
