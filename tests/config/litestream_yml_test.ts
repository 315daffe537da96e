import {
  type LitestreamConfig,
  loadLitestreamConfig,
  parseLitestreamConfig,
} from "../../src/config/litestream_yml.ts";
import type { S3ReplicaTarget } from "../../src/config/target.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import { withTempDir } from "../support/tmp.ts";

const F = "/etc/litestream.yml";
const CWD = "/srv/app";
const BASE_ENV = { HOME: "/home/u" };

function parse(text: string, env: Record<string, string> = {}): LitestreamConfig {
  return parseLitestreamConfig(text, F, { ...BASE_ENV, ...env }, { cwd: CWD, pid: 4242 });
}

function fail(text: string, env: Record<string, string> = {}): LitewardenError {
  const err = assertThrows(() => parse(text, env), LitewardenError);
  assertEquals(err.exitCode, 2);
  return err;
}

function onlyS3(cfg: LitestreamConfig, db = 0): S3ReplicaTarget {
  const r = cfg.dbs[db].replicas[0];
  assert(r.type === "s3");
  return r;
}

const V03 = `
addr: ":9090"
access-key-id: GLOBALKEY
secret-access-key: globalsecret
logging: {level: debug}
dbs:
  - path: /var/lib/vaultwarden/db.sqlite3
    monitor-interval: 1s
    replicas:
      - url: s3://vw-backups/vaultwarden
        retention: 72h
        snapshot-interval: 24h
      - name: local
        type: file
        path: /backups/vw
      - name: second-s3
        type: s3
        bucket: other
        path: /vw/db/
        region: eu-central-1
        access-key-id: OWNKEY
        secret-access-key: ownsecret
  - path: data/other.db
    replicas:
      - path: ~/bk/other
`;

Deno.test("v0.3 schema: replicas list, global keys, names, paths", () => {
  const cfg = parse(V03);
  assertEquals(cfg.path, F);
  assertEquals(cfg.dirs, []);
  assertEquals(cfg.dbs.map((d) => d.path), [
    "/var/lib/vaultwarden/db.sqlite3",
    "/srv/app/data/other.db",
  ]);
  const [a, b, c] = cfg.dbs[0].replicas;
  assertEquals(a, {
    type: "s3",
    name: "s3",
    bucket: "vw-backups",
    path: "vaultwarden",
    region: "us-east-1",
    regionGuessed: true,
    forcePathStyle: false,
    skipVerify: false,
    credentials: { accessKeyId: "GLOBALKEY", secretAccessKey: "globalsecret" },
    dbPath: "/var/lib/vaultwarden/db.sqlite3",
  });
  assertEquals(b, {
    type: "file",
    name: "local",
    path: "/backups/vw",
    dbPath: "/var/lib/vaultwarden/db.sqlite3",
  });
  assert(c.type === "s3");
  assertEquals(c.name, "second-s3");
  assertEquals([c.bucket, c.path, c.rawPath, c.region], [
    "other",
    "vw/db",
    "/vw/db/",
    "eu-central-1",
  ]);
  assertEquals(c.credentials, { accessKeyId: "OWNKEY", secretAccessKey: "ownsecret" });
  assertEquals(cfg.dbs[1].replicas, [{
    type: "file",
    name: "file",
    path: "/home/u/bk/other",
    dbPath: "/srv/app/data/other.db",
  }]);
  assertEquals(cfg.dbs[0].unusable, []);
});

const V05 = `
access-key-id: \${R2_KEY}
secret-access-key: \${R2_SECRET}
endpoint: https://acct123.r2.cloudflarestorage.com
bucket: vw
snapshot: {interval: 24h, retention: 72h}
levels: [{interval: 30s}, {interval: 5m}]
l0-retention: 5m
retention: {enabled: true}
dbs:
  - path: sqlite:///data/db.sqlite3
    busy-timeout: 5s
    replica:
      type: s3
      path: vaultwarden
      sync-interval: 1s
      sign-payload: true
  - path: /data/icons.sqlite3
    replica:
      url: s3://vw/icons
  - path: /data/minio.sqlite3
    replica:
      url: s3://bkt/m?endpoint=localhost:9000
`;

Deno.test("v0.5 schema: singular replica, global bucket/endpoint defaults, sqlite:// prefix", () => {
  const cfg = parse(V05, { R2_KEY: "r2key", R2_SECRET: "r2secret" });
  assertEquals(cfg.dbs.map((d) => d.path), [
    "/data/db.sqlite3",
    "/data/icons.sqlite3",
    "/data/minio.sqlite3",
  ]);
  assertEquals(onlyS3(cfg), {
    type: "s3",
    name: "s3",
    bucket: "vw",
    path: "vaultwarden",
    endpoint: "https://acct123.r2.cloudflarestorage.com",
    region: "auto",
    forcePathStyle: true,
    skipVerify: false,
    credentials: { accessKeyId: "r2key", secretAccessKey: "r2secret" },
    dbPath: "/data/db.sqlite3",
  });
  // A URL replica: the global bucket does not clash with url: (Litestream would refuse),
  // the global endpoint still applies.
  const icons = onlyS3(cfg, 1);
  assertEquals([icons.bucket, icons.path, icons.endpoint], [
    "vw",
    "icons",
    "https://acct123.r2.cloudflarestorage.com",
  ]);
  // The URL's own endpoint wins over the global one.
  assertEquals(onlyS3(cfg, 2).endpoint, "http://localhost:9000");
  assertEquals(onlyS3(cfg, 2).region, "us-east-1");
});

Deno.test("v0.5 deprecated replicas: list, and several entries accepted (v0.3 style)", () => {
  const cfg = parse(`
dbs:
  - path: /a.db
    replicas:
      - {type: file, path: /bk/a1, name: one}
      - {type: file, path: /bk/a2, name: two}
`);
  assertEquals(cfg.dbs[0].replicas.map((r) => r.name), ["one", "two"]);
});

Deno.test("global region / force-path-style / skip-verify defaults; replica keys win", () => {
  const cfg = parse(`
region: eu-west-3
endpoint: s3.example.net
force-path-style: false
skip-verify: yes
dbs:
  - path: /a.db
    replica: {type: s3, bucket: b1}
  - path: /b.db
    replica: {type: s3, bucket: b2, region: us-west-1, endpoint: "minio:9000", force-path-style: on, skip-verify: off}
`);
  const a = onlyS3(cfg, 0);
  assertEquals([a.region, a.endpoint, a.forcePathStyle, a.skipVerify], [
    "eu-west-3",
    "https://s3.example.net",
    false,
    true,
  ]);
  const b = onlyS3(cfg, 1);
  assertEquals([b.region, b.endpoint, b.forcePathStyle, b.skipVerify], [
    "us-west-1",
    "https://minio:9000",
    true,
    false,
  ]);
});

Deno.test("endpoint implies path style; localhost endpoints get http", () => {
  const cfg = parse(`
dbs:
  - path: /a.db
    replica: {type: s3, bucket: b, endpoint: "localhost:9000"}
  - path: /b.db
    replica: {type: s3, bucket: b, endpoint: "https://s3.example", force-path-style: false}
`);
  assertEquals([onlyS3(cfg, 0).endpoint, onlyS3(cfg, 0).forcePathStyle], [
    "http://localhost:9000",
    true,
  ]);
  assertEquals(onlyS3(cfg, 1).forcePathStyle, false);
});

Deno.test("type: from the URL scheme, else type, else file", () => {
  const cfg = parse(`
dbs:
  - path: /a.db
    replicas:
      - {type: file, url: "s3://b/p", name: x}
      - {path: /bk/y, name: y}
      - {url: "file:///bk/z", name: z}
`);
  assertEquals(cfg.dbs[0].replicas.map((r) => `${r.name}:${r.type}`), ["x:s3", "y:file", "z:file"]);
});

Deno.test("env expansion: $VAR, ${VAR}, unset, $ in a secret", () => {
  const text = `
access-key-id: $KEY_ID
secret-access-key: \${SECRET}
dbs:
  - path: \${DATA_DIR}/db.sqlite3
    replica:
      url: s3://$BUCKET/\${PREFIX}vw
  - path: /x$UNSET.db
    replica:
      type: s3
      bucket: b
      access-key-id: literal
      secret-access-key: abc$def
  - path: /y.db
    replica:
      type: s3
      bucket: b
      access-key-id: literal
      secret-access-key: 'pa$$word'
`;
  const cfg = parse(text, {
    KEY_ID: "AKID",
    SECRET: "s3cr$t/with$dollar",
    DATA_DIR: "/data",
    BUCKET: "bkt",
  });
  assertEquals(cfg.dbs.map((d) => d.path), ["/data/db.sqlite3", "/x.db", "/y.db"]);
  const a = onlyS3(cfg, 0);
  assertEquals([a.bucket, a.path], ["bkt", "vw"]); // ${PREFIX} unset → ""
  // A value coming from the environment is inserted as is: its $ survives.
  assertEquals(a.credentials, { accessKeyId: "AKID", secretAccessKey: "s3cr$t/with$dollar" });
  // A $ written in the file is expanded, as Litestream does (unset → "").
  assertEquals(onlyS3(cfg, 1).credentials?.secretAccessKey, "abc");
  assertEquals(onlyS3(cfg, 2).credentials?.secretAccessKey, "paword");
});

Deno.test("env expansion can be turned off (-no-expand-env)", () => {
  const cfg = parseLitestreamConfig(
    "dbs:\n  - path: /a.db\n    replica: {type: s3, bucket: b, access-key-id: k, secret-access-key: p$$w}\n",
    F,
    {},
    { cwd: CWD, expandEnv: false },
  );
  assertEquals(onlyS3(cfg).credentials?.secretAccessKey, "p$$w");
});

Deno.test("$PID expands to the given pid (v0.5)", () => {
  assertEquals(parse("dbs:\n  - path: /tmp/$PID.db\n").dbs[0].path, "/tmp/4242.db");
});

Deno.test("credentials: config keys, then AWS_* (+ token), then LITESTREAM_*, else SDK chain", () => {
  const env = {
    LITESTREAM_ACCESS_KEY_ID: "LSKEY",
    LITESTREAM_SECRET_ACCESS_KEY: "lssecret",
    AWS_ACCESS_KEY_ID: "AWSKEY",
    AWS_SECRET_ACCESS_KEY: "awssecret",
    AWS_SESSION_TOKEN: "awstoken",
  };
  const withKeys =
    "dbs:\n  - path: /a.db\n    replica: {type: s3, bucket: b, access-key-id: CFG, secret-access-key: cfgsecret}\n";
  const without = "dbs:\n  - path: /a.db\n    replica: {type: s3, bucket: b}\n";
  assertEquals(onlyS3(parse(withKeys, env)).credentials, {
    accessKeyId: "CFG",
    secretAccessKey: "cfgsecret",
  });
  assertEquals(onlyS3(parse(without, env)).credentials, {
    accessKeyId: "AWSKEY",
    secretAccessKey: "awssecret",
    sessionToken: "awstoken",
  });
  assertEquals(
    onlyS3(
      parse(without, {
        LITESTREAM_ACCESS_KEY_ID: "LSKEY",
        LITESTREAM_SECRET_ACCESS_KEY: "lssecret",
        AWS_SESSION_TOKEN: "awstoken",
      }),
    )
      .credentials,
    { accessKeyId: "LSKEY", secretAccessKey: "lssecret" },
  );
  assertEquals(onlyS3(parse(without)).credentials, undefined);
  // Replica keys and global keys merge per field, as Litestream's propagation does.
  const merged = parse(
    "access-key-id: GLOBAL\ndbs:\n  - path: /a.db\n    replica: {type: s3, bucket: b, secret-access-key: own}\n",
  );
  assertEquals(onlyS3(merged).credentials, { accessKeyId: "GLOBAL", secretAccessKey: "own" });
  // A config URL's userinfo is used after config keys, before the environment.
  const urlCreds = parse("dbs:\n  - path: /a.db\n    replica: {url: 's3://UK:us@b/p'}\n", env);
  assertEquals(onlyS3(urlCreds).credentials, { accessKeyId: "UK", secretAccessKey: "us" });
});

Deno.test("half a key pair in the config is reported for that replica", () => {
  const cfg = parse(
    "dbs:\n  - path: /a.db\n    replica: {type: s3, bucket: b, access-key-id: ONLYKEY}\n",
    { AWS_SECRET_ACCESS_KEY: "awssecret" },
  );
  assertEquals(cfg.dbs[0].replicas, []);
  const u = cfg.dbs[0].unusable[0];
  assertEquals([u.kind, u.name, u.type], ["invalid", "s3", "s3"]);
  assertEquals(
    u.message,
    "access-key-id is set but secret-access-key is empty for replica s3 of /a.db in /etc/litestream.yml (line 3)",
  );
});

Deno.test("unsupported replica types are kept as markers; other dbs still work", () => {
  const cfg = parse(`
dbs:
  - path: /a.db
    replicas:
      - url: gcs://bkt/a
      - type: s3
        bucket: b
  - path: /b.db
    replica:
      url: abs://acct@container/b
  - path: /c.db
    replica:
      type: sftp
      host: h
      name: remote
  - path: /d.db
    replica: {type: nats}
  - path: /e.db
    replica: {url: "webdavs://h/p"}
`);
  assertEquals(cfg.dbs[0].replicas.length, 1);
  assertEquals(cfg.dbs[0].unusable, [{
    kind: "unsupported",
    name: "gcs",
    type: "gcs",
    dbPath: "/a.db",
    message:
      "replica type gcs has no native backend in litewarden; read it through GCS's S3-compatible XML API: s3://bkt/a?endpoint=https://storage.googleapis.com with an HMAC key in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (in litestream.yml: type: s3, endpoint: https://storage.googleapis.com, access-key-id and secret-access-key = the HMAC key); see /etc/litestream.yml line 5 (database /a.db)",
  }]);
  assertEquals(cfg.dbs[1].unusable[0].type, "abs");
  assertEquals(cfg.dbs[2].unusable[0].name, "remote");
  assertEquals(cfg.dbs[3].unusable[0].type, "nats");
  assertEquals(cfg.dbs[4].unusable[0].type, "webdav");
  for (const db of cfg.dbs.slice(1)) assertEquals(db.replicas, []);
});

Deno.test("invalid replica settings are markers with Litestream's reasons", () => {
  const cfg = parse(`
dbs:
  - path: /a.db
    replicas:
      - {url: "s3://b/p", path: other, name: r1}
      - {url: "s3://b/p", bucket: other, name: r2}
      - {type: s3, path: "s3://b/p", name: r3}
      - {type: s3, name: r4}
      - {type: file, name: r5}
      - {url: "file:///x", path: /y, name: r6}
      - {type: S3, bucket: b, name: r7}
      - {url: "/no/scheme", name: r8}
      - {type: s3, bucket: b, endpoint: "https://u:EndpointSecret1@e.example", name: r9}
`);
  const msgs = cfg.dbs[0].unusable.map((u) => `${u.name}: ${u.message}`);
  const where = (n: string, l: number) =>
    `for replica ${n} of /a.db in /etc/litestream.yml (line ${l})`;
  assertEquals(msgs, [
    `r1: cannot specify url and path for an s3 replica ${where("r1", 5)}`,
    `r2: cannot specify url and bucket for an s3 replica ${where("r2", 6)}`,
    `r3: replica path cannot be a url; use url: instead (s3://b/p) ${where("r3", 7)}`,
    `r4: bucket required for an s3 replica ${where("r4", 8)}`,
    `r5: file replica path required ${where("r5", 9)}`,
    `r6: cannot specify url and path for a file replica ${where("r6", 10)}`,
    `r7: unknown replica type "S3" ${where("r7", 11)} (supported: file, s3, sftp, abs)`,
    `r8: replica url needs a scheme (s3://…, file://…) ${where("r8", 12)}`,
    `r9: endpoint https://e.example ${
      where("r9", 13)
    } must not contain credentials; use access-key-id/secret-access-key or the environment`,
  ]);
  assert(cfg.dbs[0].unusable.every((u) => u.kind === "invalid"));
});

Deno.test("v0.5 dir + pattern entries are kept apart (not supported yet)", () => {
  const cfg = parse(`
dbs:
  - dir: tenants
    pattern: "*.db"
    recursive: true
    replica: {url: "s3://b/tenants"}
  - path: /a.db
    replica: {url: "s3://b/a"}
`);
  assertEquals(cfg.dirs, [{ dir: "/srv/app/tenants", pattern: "*.db", line: 3 }]);
  assertEquals(cfg.dbs.map((d) => d.path), ["/a.db"]);
});

Deno.test("structural errors fail the load with file and line (exit 2)", () => {
  const cases: [string, string][] = [
    ["", "config file /etc/litestream.yml is empty; it needs a dbs: list"],
    ["# only a comment\n", "config file /etc/litestream.yml is empty; it needs a dbs: list"],
    [
      "- a\n- b\n",
      "invalid config /etc/litestream.yml: the top level must be a mapping with a dbs: list (line 1)",
    ],
    [
      "addr: ':9090'\n",
      "config file /etc/litestream.yml has no dbs: list; it configures no database",
    ],
    [
      "dbs: []\n",
      "invalid config /etc/litestream.yml: dbs is empty; it configures no database (line 1)",
    ],
    ["dbs: /a.db\n", "invalid config /etc/litestream.yml: dbs must be a list (line 1)"],
    [
      "dbs:\n  - /a.db\n",
      "invalid config /etc/litestream.yml: dbs entry #1 must be a mapping (line 2)",
    ],
    [
      "dbs:\n  - path: /a.db\n  - replica: {url: 's3://b/p'}\n",
      "invalid config /etc/litestream.yml: dbs entry #2 has no path (line 3)",
    ],
    [
      "dbs:\n  - path: ''\n",
      "invalid config /etc/litestream.yml: dbs entry #1 has no path (line 2)",
    ],
    [
      "dbs:\n  - path: /a.db\n    dir: /d\n    pattern: '*.db'\n",
      "invalid config /etc/litestream.yml: dbs entry #1: cannot specify both path and dir (line 2)",
    ],
    [
      "dbs:\n  - dir: /d\n",
      "invalid config /etc/litestream.yml: dbs entry #1: pattern is required with dir (line 2)",
    ],
    [
      "dbs:\n  - path: /a.db\n    replica: {url: 's3://b/p'}\n    replicas: [{url: 's3://b/q'}]\n",
      "invalid config /etc/litestream.yml: database /a.db: cannot specify both replica and replicas (line 2)",
    ],
    [
      "dbs:\n  - path: /a.db\n    replicas: {url: 's3://b/p'}\n",
      "invalid config /etc/litestream.yml: database /a.db: replicas must be a list (line 3)",
    ],
    [
      "dbs:\n  - path: /a.db\n    replicas:\n      - s3://b/p\n",
      "invalid config /etc/litestream.yml: database /a.db: replicas entry #1 must be a mapping (line 4)",
    ],
    [
      "dbs:\n  - path: [a, b]\n",
      "invalid config /etc/litestream.yml: dbs entry #1: path must be a text value (line 2)",
    ],
    [
      "dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      force-path-style: maybe\n",
      "invalid config /etc/litestream.yml: dbs entry #1: replica.force-path-style must be true or false (line 5)",
    ],
    [
      "bucket: {a: b}\ndbs:\n  - path: /a.db\n",
      "invalid config /etc/litestream.yml: bucket must be a text value (line 1)",
    ],
    [
      "dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/p\n     bad: indent\n",
      "invalid YAML in /etc/litestream.yml at line 5, column 1: bad indentation",
    ],
  ];
  for (const [text, message] of cases) {
    assertEquals(fail(text).message, message, JSON.stringify(text));
  }
});

Deno.test("a db with no replicas still loads (reported when it is used)", () => {
  const cfg = parse("dbs:\n  - path: /a.db\n");
  assertEquals(cfg.dbs, [{ path: "/a.db", replicas: [], unusable: [], line: 2 }]);
});

Deno.test("unknown keys are ignored, as Litestream does", () => {
  const cfg = parse(`
mcp-addr: ":3001"
unknown-top: {x: 1}
dbs:
  - path: /a.db
    totally-unknown: [1, 2]
    replica:
      type: file
      path: /bk
      age: {}
      webdav-url: x
`);
  assertEquals(cfg.dbs[0].replicas, [{ type: "file", name: "file", path: "/bk", dbPath: "/a.db" }]);
});

Deno.test("relative file replica path and relative db path use cwd", () => {
  const cfg = parse("dbs:\n  - path: ./db.sqlite\n    replica: {path: ../backups}\n");
  assertEquals(cfg.dbs[0].path, "/srv/app/db.sqlite");
  assertEquals(
    cfg.dbs[0].replicas[0].type === "file" && cfg.dbs[0].replicas[0].path,
    "/srv/backups",
  );
});

Deno.test("loadLitestreamConfig: reads a file; missing, directory and non-UTF-8 are exit 2", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/ls.yml`, "dbs:\n  - path: x.db\n    replica: {path: bk}\n");
    const cfg = await loadLitestreamConfig("ls.yml", {}, { cwd: dir });
    assertEquals(cfg.path, `${dir}/ls.yml`);
    assertEquals(cfg.dbs[0].path, `${dir}/x.db`);

    const missing = await assertRejects(
      () => loadLitestreamConfig(`${dir}/nope.yml`, {}),
      LitewardenError,
    );
    assertEquals(missing.exitCode, 2);
    assertEquals(
      missing.message,
      `config file ${dir}/nope.yml not found; pass --config PATH or a replica URL`,
    );
    const isDir = await assertRejects(() => loadLitestreamConfig(dir, {}), LitewardenError);
    assertEquals(isDir.exitCode, 2);
    assert(isDir.message.startsWith(`cannot read config file ${dir}`), isDir.message);

    await Deno.writeFile(`${dir}/bad.yml`, new Uint8Array([0x64, 0x62, 0x73, 0x3a, 0xff, 0x0a]));
    await assertRejects(
      () => loadLitestreamConfig(`${dir}/bad.yml`, {}),
      LitewardenError,
      "not UTF-8",
    );

    await Deno.writeTextFile(`${dir}/bom.yml`, "\uFEFFdbs:\n  - path: /a.db\n");
    assertEquals((await loadLitestreamConfig(`${dir}/bom.yml`, {})).dbs[0].path, "/a.db");
  });
});

Deno.test("no error message contains a secret from the config or the environment", () => {
  const SECRETS = {
    AWS_SECRET_ACCESS_KEY: "EnvAwsSecret0001",
    LITESTREAM_SECRET_ACCESS_KEY: "EnvLsSecret00002",
    AWS_SESSION_TOKEN: "EnvSessionTok003",
    CFG_SECRET: "CfgSecretValue04",
  };
  const values = [...Object.values(SECRETS), "InlineSecret0005", "UrlSecret000006"];
  const texts = [
    // YAML broken by the expanded secret
    "secret-access-key: ${CFG_SECRET}: x\ndbs: []\n",
    'secret-access-key: "\\q${CFG_SECRET}"\ndbs:\n  - path: /a\n',
    "secret-access-key: *${CFG_SECRET}\ndbs:\n  - path: /a\n",
    "secret-access-key: [${CFG_SECRET}\n",
    // structural errors in files holding secrets
    "secret-access-key: InlineSecret0005\ndbs: []\n",
    "secret-access-key: InlineSecret0005\n",
    "secret-access-key: ${CFG_SECRET}\ndbs:\n  - path: /a\n    replica: {type: s3, force-path-style: InlineSecret0005}\n",
    "dbs:\n  - path: /a\n    replica: {type: s3, secret-access-key: {x: InlineSecret0005}}\n",
  ];
  for (const text of texts) {
    const err = fail(text, SECRETS);
    for (const v of values) assert(!err.message.includes(v), `${err.message} leaks ${v}`);
  }
  // replica-level problems (reported later) must be clean too
  const cfg = parse(
    `
secret-access-key: \${CFG_SECRET}
dbs:
  - path: /a
    replicas:
      - {url: "s3://K:UrlSecret000006@b/p", path: x, name: a}
      - {type: s3, secret-access-key: InlineSecret0005, name: b}
      - {type: s3, path: "s3://K:UrlSecret000006@b/p", name: c}
      - {url: "gcs://K:UrlSecret000006@b/p", name: d}
      - {url: "s3://K:UrlSecret000006@b/p?endpoint=x%zz", name: e}
      - {url: "s3://K:UrlSecret000006@b/p?endpoint=https://K:UrlSecret000006@h", name: f}
`,
    SECRETS,
  );
  assertEquals(cfg.dbs[0].unusable.length, 6);
  for (const u of cfg.dbs[0].unusable) {
    for (const v of values) assert(!u.message.includes(v), `${u.message} leaks ${v}`);
  }
});

Deno.test("replica problems found by the URL parser are located too", () => {
  const cfg = parse("dbs:\n  - path: /a.db\n    replica: {url: 'file://'}\n");
  assertEquals(
    cfg.dbs[0].unusable[0].message,
    "no directory in replica URL file://; use file:///abs/dir for replica file of /a.db in /etc/litestream.yml (line 3)",
  );
});

Deno.test("v0.3 age settings are read into the replica target, keys kept as texts", () => {
  const cfg = parse(`
dbs:
  - path: /a.db
    replicas:
      - url: s3://b/a
        age:
          identities: ["AGE-SECRET-KEY-1AAA"]
          recipients: [age1qqq, age1rrr]
      - {url: "s3://b/plain", name: plain, age: {recipients: []}}
      - {path: /r, name: typo, age: {identities: ["AGE-SECRET-KEY-1BBB"], recipient: [age1qqq]}}
`);
  assertEquals(cfg.dbs[0].unusable, []);
  const [enc, plain, typo] = cfg.dbs[0].replicas;
  assertEquals(enc.age, {
    identities: [{
      text: "AGE-SECRET-KEY-1AAA",
      source: "age.identities entry #1 of /etc/litestream.yml (line 7)",
    }],
    recipients: [
      { text: "age1qqq", source: "age.recipients entry #1 of /etc/litestream.yml (line 8)" },
      { text: "age1rrr", source: "age.recipients entry #2 of /etc/litestream.yml (line 8)" },
    ],
    unknownKeys: [],
  });
  // `recipients: []` configures nothing: Litestream writes and expects plaintext.
  assertEquals(plain.age, undefined);
  // A misspelt key is kept, so verify can say why Litestream wrote plaintext (#603).
  assertEquals(typo.type, "file");
  assertEquals(typo.age?.unknownKeys, ["recipient"]);
  assertEquals(typo.age?.recipients, []);

  // A wrong kind of value fails the load without echoing the key.
  const err = fail(
    "dbs:\n  - path: /a.db\n    replica: {path: /r, age: {identities: AGE-SECRET-KEY-1CCC}}\n",
  );
  assertEquals(err.exitCode, 2);
  assert(err.message.includes("age.identities must be a list of text values"), err.message);
  assert(!err.message.includes("AGE-SECRET-KEY-1CCC"), err.message);
  const notMap = fail("dbs:\n  - path: /a.db\n    replica: {path: /r, age: AGE-SECRET-KEY-1DDD}\n");
  assert(notMap.message.includes("age must be a mapping"), notMap.message);
  assert(!notMap.message.includes("AGE-SECRET-KEY-1DDD"), notMap.message);
});

Deno.test("a config error names the ${VAR}s left unset, not only the empty field", () => {
  const text = `
dbs:
  - path: /a.db
    replicas:
      - type: s3
        bucket: \${LITESTREAM_BUCKET}
        path: \${LITESTREAM_PATH}
`;
  const unset = parse(text).dbs[0].unusable.map((u) => u.message);
  assertEquals(unset, [
    "bucket required for an s3 replica for replica s3 of /a.db in /etc/litestream.yml (line 5); " +
    "the config uses ${LITESTREAM_BUCKET}, ${LITESTREAM_PATH}, which are not set in the environment: set them",
  ]);
  // Set, the same config is fine and says nothing about variables.
  const set = parse(text, { LITESTREAM_BUCKET: "vault", LITESTREAM_PATH: "db" });
  assertEquals(set.dbs[0].unusable, []);
  assertEquals(onlyS3(set).bucket, "vault");
  // An error thrown for the whole file gets the same hint.
  const err = fail(`dbs:\n  - path: \${DB_PATH}\n    replicas: nope\n`);
  assert(err.message.includes("the config uses ${DB_PATH}, which is not set"), err.message);
});
