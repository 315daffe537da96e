import type { S3ReplicaTarget } from "../../src/config/target.ts";
import { describeTarget } from "../../src/config/target.ts";
import {
  ensureEndpointScheme,
  parseReplicaUrl,
  parseS3Host,
  safeUrl,
} from "../../src/config/url.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

const CWD = "/work/demo";
const ENV = { HOME: "/home/u" };

function s3(url: string, env: Record<string, string> = {}): S3ReplicaTarget {
  const t = parseReplicaUrl(url, { ...ENV, ...env }, { cwd: CWD });
  assert(t.type === "s3");
  return t;
}

Deno.test("file URLs: absolute, relative (demo forms), home, localhost", () => {
  const file = (u: string) => parseReplicaUrl(u, ENV, { cwd: CWD });
  assertEquals(file("file:///var/backups/app"), {
    type: "file",
    name: "file",
    path: "/var/backups/app",
  });
  assertEquals(file("file:///var/backups/app/").path, "/var/backups/app");
  assertEquals(file("file://./samples/replica").path, "/work/demo/samples/replica");
  assertEquals(file("file://samples/replica").path, "/work/demo/samples/replica");
  assertEquals(file("file://../up").path, "/work/up");
  assertEquals(file("file://~/bk").path, "/home/u/bk");
  assertEquals(file("file://localhost/srv/bk").path, "/srv/bk");
  assertEquals(file("file:///srv/with%20space?x=1").path, "/srv/with space");
  assertEquals(file("FILE:///srv/x").path, "/srv/x");
  assertThrows(() => file("file://"), LitewardenError, "no directory");
});

Deno.test("s3 URL: plain AWS bucket and prefix", () => {
  assertEquals(s3("s3://my-bucket/backups/app.db"), {
    type: "s3",
    name: "s3",
    bucket: "my-bucket",
    path: "backups/app.db",
    region: "us-east-1",
    regionGuessed: true,
    forcePathStyle: false,
    skipVerify: false,
  });
  assertEquals(s3("s3://b").path, "");
  assertEquals(s3("s3://b/").path, "");
  assertEquals(s3("s3://b//x/./y/../z/").path, "x/z");
  assertEquals(s3("s3://my.bucket.com/db").bucket, "my.bucket.com"); // any other host: the bucket
  assertEquals(s3("s3://my.bucket.com:443/db").bucket, "my.bucket.com");
});

Deno.test("s3 URL: AWS host forms carry the region", () => {
  const t = s3("s3://bkt.s3.eu-west-1.amazonaws.com/p");
  assertEquals([t.bucket, t.region, t.endpoint, t.forcePathStyle], [
    "bkt",
    "eu-west-1",
    undefined,
    false,
  ]);
  assertEquals(t.regionGuessed, undefined);
  const g = s3("s3://bkt.s3.amazonaws.com/p");
  assertEquals([g.bucket, g.region, g.regionGuessed], ["bkt", "us-east-1", true]);
});

Deno.test("s3 URL: provider host forms (v0.3 ParseHost)", () => {
  const cases: [string, string, string, string | undefined][] = [
    ["s3://bkt.localhost/p", "bkt", "http://localhost", "us-east-1"],
    ["s3://bkt.localhost:9000/p", "bkt", "http://localhost:9000", "us-east-1"],
    [
      "s3://bkt.s3.us-west-002.backblazeb2.com/p",
      "bkt",
      "https://s3.us-west-002.backblazeb2.com",
      "us-west-002",
    ],
    ["s3://bkt.s3.filebase.com/p", "bkt", "https://s3.filebase.com", undefined],
    [
      "s3://bkt.nyc3.digitaloceanspaces.com/p",
      "bkt",
      "https://nyc3.digitaloceanspaces.com",
      "nyc3",
    ],
    ["s3://bkt.s3.fr-par.scw.cloud/p", "bkt", "https://s3.fr-par.scw.cloud", "fr-par"],
    [
      "s3://bkt.us-east-1.linodeobjects.com/p",
      "bkt",
      "https://us-east-1.linodeobjects.com",
      "us-east-1",
    ],
    [
      "s3://my.dotted.bkt.nyc3.digitaloceanspaces.com/p",
      "my.dotted.bkt",
      "https://nyc3.digitaloceanspaces.com",
      "nyc3",
    ],
    // v0.5 MinIO form: BUCKET.HOST:PORT
    ["s3://bkt.minio:9000/p", "bkt", "http://minio:9000", "us-east-1"],
    ["s3://bkt.10.0.0.5:9000/p", "bkt", "http://10.0.0.5:9000", "us-east-1"],
  ];
  for (const [url, bucket, endpoint, region] of cases) {
    const t = s3(url);
    assertEquals(t.bucket, bucket, url);
    assertEquals(t.endpoint, endpoint, url);
    assertEquals(t.region, region ?? "us-east-1", url);
    assertEquals(t.forcePathStyle, true, url);
    assertEquals(t.path, "p", url);
    assertEquals(t.regionGuessed, undefined, url);
  }
  assertEquals(parseS3Host("bkt.s3.filebase.com").region, undefined);
});

Deno.test("s3 URL: a host form without bucket needs one", () => {
  for (const url of ["s3://localhost:9000/p", "s3:///p", "s3://minio:9000/p"]) {
    const err = assertThrows(() => s3(url), LitewardenError, "no bucket");
    assertEquals(err.exitCode, 2);
  }
});

Deno.test("s3 URL: v0.5 query parameters (both spellings)", () => {
  const t = s3("s3://bkt/db?endpoint=minio.internal:9000&region=eu-1");
  assertEquals(t.endpoint, "https://minio.internal:9000");
  assertEquals(t.region, "eu-1");
  assertEquals(t.forcePathStyle, true); // an endpoint implies path style
  assertEquals(s3("s3://bkt/db?endpoint=localhost:9000").endpoint, "http://localhost:9000");
  assertEquals(s3("s3://bkt/db?endpoint=127.0.0.1:9000").endpoint, "http://127.0.0.1:9000");
  assertEquals(s3("s3://bkt/db?endpoint=[::1]:9000").endpoint, "http://[::1]:9000");
  assertEquals(s3("s3://bkt/db?endpoint=http://s3.example:80").endpoint, "http://s3.example:80");
  assertEquals(s3("s3://bkt/db?endpoint=e.example&forcePathStyle=false").forcePathStyle, false);
  assertEquals(s3("s3://bkt/db?endpoint=e.example&force-path-style=false").forcePathStyle, false);
  assertEquals(s3("s3://bkt/db?forcePathStyle=true").forcePathStyle, true);
  assertEquals(s3("s3://bkt/db?force-path-style=1").forcePathStyle, true);
  assertEquals(s3("s3://bkt/db?skipVerify=true").skipVerify, true);
  assertEquals(s3("s3://bkt/db?skip-verify=yes").skipVerify, true);
  assertEquals(s3("s3://bkt/db?skip-verify=false").skipVerify, false);
  // query region beats the host form's region
  assertEquals(s3("s3://bkt.s3.eu-west-1.amazonaws.com/p?region=us-west-2").region, "us-west-2");
  // unknown / ignored v0.5 parameters are fine
  assertEquals(s3("s3://bkt/db?signPayload=false&partSize=5&storageClass=X").bucket, "bkt");
});

Deno.test("s3 URL: R2 account endpoint gets region auto", () => {
  const t = s3("s3://bkt/db?endpoint=https://0123abcd.r2.cloudflarestorage.com");
  assertEquals(t.region, "auto");
  assertEquals(t.forcePathStyle, true);
  assertEquals(s3("s3://bkt/db?endpoint=0123abcd.eu.r2.cloudflarestorage.com").region, "auto");
  assertEquals(
    s3("s3://bkt/db?endpoint=a.r2.cloudflarestorage.com", { AWS_REGION: "eu-west-1" }).region,
    "auto",
  );
  assertEquals(s3("s3://bkt/db?endpoint=a.r2.cloudflarestorage.com&region=wnam").region, "wnam");
});

Deno.test("s3 URL: region from AWS_REGION / AWS_DEFAULT_REGION", () => {
  assertEquals(s3("s3://b/p", { AWS_DEFAULT_REGION: "eu-2" }).region, "eu-2");
  assertEquals(s3("s3://b/p", { AWS_REGION: "eu-1", AWS_DEFAULT_REGION: "eu-2" }).region, "eu-1");
  assertEquals(s3("s3://b/p", { AWS_REGION: "eu-1" }).regionGuessed, undefined);
});

Deno.test("s3 URL: $LITESTREAM_S3_ENDPOINT applies when the URL names none (v0.5)", () => {
  const t = s3("s3://b/p", { LITESTREAM_S3_ENDPOINT: "localhost:9000" });
  assertEquals([t.endpoint, t.forcePathStyle], ["http://localhost:9000", true]);
  assertEquals(
    s3("s3://b/p?endpoint=x.example", { LITESTREAM_S3_ENDPOINT: "localhost:9000" }).endpoint,
    "https://x.example",
  );
});

Deno.test("s3 URL: access point ARN", () => {
  const t = s3(
    "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/backups/db?skipVerify=true",
  );
  assertEquals(t.bucket, "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap");
  assertEquals(t.region, "us-west-2");
  assertEquals(t.path, "backups/db");
  assertEquals(t.skipVerify, true);
});

Deno.test("s3 URL: credentials precedence: userinfo, AWS_*, LITESTREAM_*, SDK chain", () => {
  const env = {
    LITESTREAM_ACCESS_KEY_ID: "LSKEY",
    LITESTREAM_SECRET_ACCESS_KEY: "lssecret",
    AWS_ACCESS_KEY_ID: "AWSKEY",
    AWS_SECRET_ACCESS_KEY: "awssecret",
    AWS_SESSION_TOKEN: "awstoken",
  };
  assertEquals(s3("s3://URLKEY:url%2Fsecret@b/p", env).credentials, {
    accessKeyId: "URLKEY",
    secretAccessKey: "url/secret",
  });
  // AWS_* wins: Litestream copies LITESTREAM_* into AWS_* only when those are unset.
  assertEquals(s3("s3://b/p", env).credentials, {
    accessKeyId: "AWSKEY",
    secretAccessKey: "awssecret",
    sessionToken: "awstoken",
  });
  const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _b, ...lsOnly } = env;
  // The session token belongs to the AWS_* pair: never attached to LITESTREAM_* keys.
  assertEquals(s3("s3://b/p", lsOnly).credentials, {
    accessKeyId: "LSKEY",
    secretAccessKey: "lssecret",
  });
  // Empty AWS_* values count as unset.
  assertEquals(
    s3("s3://b/p", { ...lsOnly, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" }).credentials,
    { accessKeyId: "LSKEY", secretAccessKey: "lssecret" },
  );
  assertEquals(
    s3("s3://b/p", { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" }).credentials,
    undefined,
  );
  assertEquals(s3("s3://b/p", { AWS_SESSION_TOKEN: "awstoken" }).credentials, undefined);
  assertEquals(s3("s3://b/p").credentials, undefined);
  // Litestream copies each LITESTREAM_* variable on its own: halves combine, AWS_* first.
  assertEquals(
    s3("s3://b/p", { LITESTREAM_ACCESS_KEY_ID: "LSKEY", AWS_SECRET_ACCESS_KEY: "awssecret" })
      .credentials,
    { accessKeyId: "LSKEY", secretAccessKey: "awssecret" },
  );
  assertEquals(
    s3("s3://b/p", {
      AWS_ACCESS_KEY_ID: "AWSKEY",
      LITESTREAM_ACCESS_KEY_ID: "LSKEY",
      LITESTREAM_SECRET_ACCESS_KEY: "lssecret",
      AWS_SESSION_TOKEN: "awstoken",
    }).credentials,
    { accessKeyId: "AWSKEY", secretAccessKey: "lssecret" },
  );
});

Deno.test("s3 URL: userinfo is never echoed", () => {
  const t = s3("s3://AKIAXXXX:TopSecret123@bkt/p?endpoint=e.example");
  assert(!describeTarget(t).includes("TopSecret123"));
  assert(!describeTarget(t).includes("AKIAXXXX"));
  for (
    const bad of [
      "s3://AKIAXXXX:TopSecret123@/p",
      "s3://AKIAXXXX@bkt/p",
      "s3://AKIAXXXX:TopSecret123@bkt/p?endpoint=http://u:TopSecret123@e.example",
      "gcs://AKIAXXXX:TopSecret123@bkt/p",
      "ftp://AKIAXXXX:TopSecret123@bkt/p",
      "s3://AKIAXXXX:TopSecret123@bkt/%zz",
    ]
  ) {
    const err = assertThrows(() => s3(bad), LitewardenError);
    assertEquals(err.exitCode, 2, bad);
    assert(!err.message.includes("TopSecret123"), err.message);
  }
  assertEquals(safeUrl("s3://K:S@bkt/p?x=S#f"), "s3://bkt/p");
});

Deno.test("unsupported backends are a clear exit-2 error", () => {
  for (const scheme of ["webdav", "nats", "oss"]) {
    const err = assertThrows(() => parseReplicaUrl(`${scheme}://bkt/p`, ENV), LitewardenError);
    assertEquals(err.exitCode, 2);
    assertEquals(
      err.message,
      `replica type ${scheme} is not supported by litewarden yet (supported: file, s3, sftp, abs)`,
    );
  }
  assertThrows(
    () => parseReplicaUrl("webdavs://h/p", ENV),
    LitewardenError,
    "replica type webdav is not supported",
  );
  assertThrows(
    () => parseReplicaUrl("http://h/p", ENV),
    LitewardenError,
    "unknown replica URL scheme http://",
  );
  assertThrows(() => parseReplicaUrl("/not/a/url", ENV), LitewardenError, "not a replica URL");
});

Deno.test("ensureEndpointScheme: https by default, http for local hosts", () => {
  assertEquals(ensureEndpointScheme("s3.example.com"), "https://s3.example.com");
  assertEquals(ensureEndpointScheme("localhost:9000"), "http://localhost:9000");
  assertEquals(ensureEndpointScheme("minio.localhost"), "http://minio.localhost");
  assertEquals(ensureEndpointScheme("nas.local:9000"), "http://nas.local:9000");
  assertEquals(ensureEndpointScheme("127.0.0.1:9000"), "http://127.0.0.1:9000");
  assertEquals(ensureEndpointScheme("192.168.1.9:9000"), "http://192.168.1.9:9000");
  assertEquals(ensureEndpointScheme("172.20.0.2"), "http://172.20.0.2");
  assertEquals(ensureEndpointScheme("172.32.0.2"), "https://172.32.0.2");
  assertEquals(ensureEndpointScheme("[::1]:9000"), "http://[::1]:9000");
  assertEquals(ensureEndpointScheme("HTTPS://x.example"), "HTTPS://x.example");
});

Deno.test("s3 URL: a secret with an unencoded / (AWS style) is userinfo, never bucket or path", () => {
  const t = s3("s3://AKIAXXXX:Top/Secret+123@bkt/p@1/db?endpoint=http://127.0.0.1:9000");
  assertEquals([t.bucket, t.path], ["bkt", "p@1/db"]);
  assertEquals(t.credentials, { accessKeyId: "AKIAXXXX", secretAccessKey: "Top/Secret+123" });
  assertEquals(s3("s3://K:a/b@c@bkt/p").credentials?.secretAccessKey, "a/b@c");
  assertEquals(s3("s3://bkt.host:9000/p").bucket, "bkt"); // a port is not userinfo
  assertEquals(s3("s3://bkt.host:9000/p@1").path, "p@1"); // nor a path @ after a port
  assertEquals(s3("s3://bkt/p@2").path, "p@2"); // nor an @ in a plain path
  assertEquals(safeUrl("s3://AKIAXXXX:Top/Secret+123@bkt/p?x=1"), "s3://bkt/p");
  assertEquals(safeUrl("http://K:a/b@h:9/x"), "http://h:9/x");
  const sftp = parseReplicaUrl("sftp://vw:pa/ss-word@nas:2222/bk@2026", ENV, { cwd: CWD });
  assert(sftp.type === "sftp");
  assertEquals([sftp.user, sftp.password, sftp.host, sftp.port, sftp.path], [
    "vw",
    "pa/ss-word",
    "nas",
    2222,
    "/bk@2026",
  ]);
  for (
    const bad of [
      "s3://AKIAXXXX:Top/Secret123@/p",
      "s3://bkt/p?endpoint=http://u:Top/Secret123@e.example",
      "s3://bkt/p?endpoint=u:Top/Secret123@e.example",
    ]
  ) {
    const err = assertThrows(() => s3(bad), LitewardenError);
    assertEquals(err.exitCode, 2, bad);
    assert(!/Top|Secret123/.test(err.message), err.message);
  }
});
