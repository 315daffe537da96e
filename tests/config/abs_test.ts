/**
 * Azure Blob (`abs`) replica settings as Litestream v0.3.13 reads them, and the advice for GCS
 * (`gcs`/`gs`), in both the URL form and litestream.yml.
 */
import { parseLitestreamConfig } from "../../src/config/litestream_yml.ts";
import { describeTarget } from "../../src/config/target.ts";
import type { AbsReplicaTarget } from "../../src/config/target.ts";
import { parseReplicaUrl } from "../../src/config/url.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

const KEY = btoa("an account key of sixty-four bytes, like Azure's, for the tests!!");
const ENV_KEY = btoa("another key, this one from LITESTREAM_AZURE_ACCOUNT_KEY......");
const F = "/etc/litestream.yml";

function url(u: string, env: Record<string, string> = {}): AbsReplicaTarget {
  const t = parseReplicaUrl(u, env, { cwd: "/" });
  assert(t.type === "abs");
  return t;
}

function config(replica: string, env: Record<string, string> = {}) {
  const cfg = parseLitestreamConfig(`dbs:\n  - path: /a.db\n    replica: ${replica}\n`, F, env, {
    cwd: "/",
  });
  return cfg.dbs[0];
}

function urlError(u: string, env: Record<string, string> = {}): string {
  const err = assertThrows(() => parseReplicaUrl(u, env, { cwd: "/" }), LitewardenError);
  assertEquals(err.exitCode, 2);
  return err.message;
}

Deno.test("abs URL form: account, container and path; key from $LITESTREAM_AZURE_ACCOUNT_KEY", () => {
  const env = { LITESTREAM_AZURE_ACCOUNT_KEY: ENV_KEY };
  assertEquals(url("abs://myacct@backups/vw/db.sqlite3/", env), {
    type: "abs",
    name: "abs",
    accountName: "myacct",
    container: "backups",
    path: "vw/db.sqlite3",
    accountKey: ENV_KEY,
  });
  // Litestream cleans the path: no path, "/", "." and "a/../" are all the container root.
  for (const u of ["abs://a@c", "abs://a@c/", "abs://a@c/.", "abs://a@c/x/../"]) {
    assertEquals(url(u, env).path, "", u);
  }
  assertEquals(url("abs://a@c//x//y/./z", env).path, "x/y/z");
  // An emulator endpoint (a litewarden extension of the URL form).
  const emu = url(
    "abs://devstoreaccount1@c/p?endpoint=http://127.0.0.1:10000/devstoreaccount1/",
    env,
  );
  assertEquals(emu.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
  assertEquals(
    describeTarget(emu),
    "abs://devstoreaccount1@c/p (endpoint http://127.0.0.1:10000/devstoreaccount1)",
  );
  assertEquals(describeTarget(url("abs://a@c", env)), "abs://a@c");
});

Deno.test("abs URL form: what cannot work is one clear exit-2 line, never echoing a key", () => {
  const env = { LITESTREAM_AZURE_ACCOUNT_KEY: ENV_KEY };
  assertEquals(
    urlError("abs://myacct@backups/db"),
    "no account key for abs replica abs in abs://backups/db; set account-key or $LITESTREAM_AZURE_ACCOUNT_KEY",
  );
  assertEquals(
    urlError("abs://backups/db", env),
    "no storage account for an abs replica in abs://backups/db; set account-name or use abs://ACCOUNT@CONTAINER/PATH",
  );
  const withPassword = urlError(`abs://myacct:${KEY}@backups/db`, env);
  assert(withPassword.includes("carries a password"), withPassword);
  assert(!withPassword.includes(KEY) && !withPassword.includes(KEY.slice(0, 20)), withPassword);
  const badKey = urlError("abs://a@c/p", { LITESTREAM_AZURE_ACCOUNT_KEY: "not base64 at all!" });
  assert(badKey.includes("is not base64"), badKey);
  assert(!badKey.includes("not base64 at all!"), badKey);
  for (const endpoint of ["127.0.0.1:10000/acct", "ftp://h/x", "http://u:pw@h/acct"]) {
    const msg = urlError(`abs://a@c/p?endpoint=${endpoint}`, env);
    assert(msg.includes("endpoint"), msg);
    assert(!msg.includes("pw"), msg);
  }
});

Deno.test("abs in litestream.yml: type abs with account-name, account-key, bucket, path, endpoint", () => {
  const db = config(
    `{type: abs, name: azure, account-name: acct, account-key: "${KEY}", bucket: vault, path: /vw/db/, endpoint: "http://127.0.0.1:10000/acct"}`,
    { LITESTREAM_AZURE_ACCOUNT_KEY: ENV_KEY },
  );
  assertEquals(db.unusable, []);
  assertEquals(db.replicas, [{
    type: "abs",
    name: "azure",
    dbPath: "/a.db",
    accountName: "acct",
    container: "vault",
    path: "vw/db",
    // The config key wins over the environment.
    accountKey: KEY,
    endpoint: "http://127.0.0.1:10000/acct",
  }]);
  // The key from the environment; the URL's account only when account-name is not set.
  const fromUrl = config(`{url: "abs://urlacct@vault/p", account-name: cfgacct}`, {
    LITESTREAM_AZURE_ACCOUNT_KEY: ENV_KEY,
  }).replicas[0];
  assert(fromUrl.type === "abs");
  assertEquals([fromUrl.accountName, fromUrl.container, fromUrl.path, fromUrl.accountKey], [
    "cfgacct",
    "vault",
    "p",
    ENV_KEY,
  ]);
});

Deno.test("abs in litestream.yml: settings Litestream rejects are markers; keys never in messages", () => {
  const env = { LITESTREAM_AZURE_ACCOUNT_KEY: ENV_KEY };
  const cases: [string, string][] = [
    [`{url: "abs://a@c/p", bucket: c2}`, "cannot specify url and bucket for an abs replica"],
    [`{url: "abs://a@c/p", path: q}`, "cannot specify url and path for an abs replica"],
    [`{type: abs, account-name: a, path: p}`, "no container for an abs replica"],
    [`{type: abs, bucket: c}`, "no storage account for an abs replica"],
    [`{type: abs, bucket: c, account-name: a, account-key: "${KEY}x"}`, "is not base64"],
  ];
  for (const [replica, expected] of cases) {
    const db = config(replica, env);
    assertEquals(db.replicas, [], replica);
    assertEquals(db.unusable.length, 1, replica);
    const u = db.unusable[0];
    assertEquals([u.kind, u.type], ["invalid", "abs"]);
    assert(u.message.includes(expected), `${u.message} lacks ${expected}`);
    assert(u.message.includes(`${F} (line 3)`), u.message);
    assert(!u.message.includes(KEY) && !u.message.includes(ENV_KEY), u.message);
  }
  // account-key must be text (a list fails the whole load, like Go's yaml.Unmarshal).
  const err = assertThrows(
    () => config("{type: abs, bucket: c, account-name: a, account-key: [x]}"),
    LitewardenError,
  );
  assert(err.message.includes("account-key must be a text value"), err.message);
});

const GCS_ADVICE = (type: string, where: string) =>
  `replica type ${type} has no native backend in litewarden; read it through GCS's S3-compatible XML API: s3://${where}?endpoint=https://storage.googleapis.com with an HMAC key in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (in litestream.yml: type: s3, endpoint: https://storage.googleapis.com, access-key-id and secret-access-key = the HMAC key)`;

Deno.test("gcs and gs give the S3 XML API route, with the bucket and path filled in", () => {
  assertEquals(urlError("gcs://vault-backups/vw/db"), GCS_ADVICE("gcs", "vault-backups/vw/db"));
  assertEquals(urlError("gs://b"), GCS_ADVICE("gs", "b"));
  // Userinfo in a gcs URL is not echoed.
  const msg = urlError("gcs://KEY:GcsUrlSecret1@b/p");
  assertEquals(msg, GCS_ADVICE("gcs", "b/p"));
  const db = config(`{type: gcs, bucket: vault, path: vw/db, name: offsite}`);
  assertEquals(db.unusable.length, 1);
  assertEquals(db.unusable[0].kind, "unsupported");
  assertEquals(
    db.unusable[0].message,
    `${GCS_ADVICE("gcs", "vault/vw/db")}; see ${F} line 3 (database /a.db)`,
  );
  assertEquals(
    config(`{type: gcs}`).unusable[0].message,
    `${GCS_ADVICE("gcs", "BUCKET/PATH")}; see ${F} line 3 (database /a.db)`,
  );
  // The advised URL really parses as an S3 target for GCS.
  const s3 = parseReplicaUrl("s3://vault/vw/db?endpoint=https://storage.googleapis.com", {}, {});
  assert(s3.type === "s3");
  assertEquals([s3.bucket, s3.path, s3.endpoint, s3.forcePathStyle], [
    "vault",
    "vw/db",
    "https://storage.googleapis.com",
    true,
  ]);
});
