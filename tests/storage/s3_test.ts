/**
 * S3Storage against a real S3-compatible server (fauxqs in-process, or the server named by
 * LITEWARDEN_TEST_S3_URL), plus small hand-written HTTP servers for failures a well-behaved
 * server never produces (rejections that echo credentials, 5xx, throttling, dropped connections,
 * providers without DeleteObjects, TLS).
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import type { S3ReplicaTarget } from "../../src/config/target.ts";
import { ExitCode, LitewardenError } from "../../src/errors.ts";
import { openStorage } from "../../src/storage/open.ts";
import {
  classifyS3Error,
  resolveRegion,
  S3Storage,
  type S3StorageOptions,
} from "../../src/storage/s3.ts";
import { readAll } from "../../src/storage/storage.ts";
import { bytes } from "../support/bytes.ts";
import { expectLitewardenError } from "../support/assert.ts";
import {
  decodeNumericEntities,
  s3TargetFor,
  startS3Server,
  type TestS3Server,
} from "../support/s3_server.ts";

// ---------- helpers ----------

/** Running against a real server named by LITEWARDEN_TEST_S3_URL instead of fauxqs. */
const EXTERNAL = Boolean(Deno.env.get("LITEWARDEN_TEST_S3_URL"));
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
const ACCESS_KEY = "AKIALITEWARDENTEST01";

const text = (s: string) => new TextEncoder().encode(s);

function uniqueBucket(): string {
  return `lw-${crypto.randomUUID().slice(0, 8)}`;
}

interface Ctx {
  server: TestS3Server;
  bucket: string;
  target(prefix: string): S3ReplicaTarget;
  storage(prefix: string, options?: S3StorageOptions): S3Storage;
  /** A raw SDK client for setting up objects the storage API cannot make. */
  client(): S3Client;
}

/** Runs `fn` with a fresh server and bucket, closing every client and the server afterwards. */
async function withS3(fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const server = await startS3Server();
  const closers: (() => void)[] = [];
  try {
    const bucket = uniqueBucket();
    await server.createBucket(bucket);
    const ctx: Ctx = {
      server,
      bucket,
      target: (prefix) => s3TargetFor(server, bucket, prefix),
      storage(prefix, options) {
        const s = new S3Storage(s3TargetFor(server, bucket, prefix), options);
        closers.push(() => s.close());
        return s;
      },
      client() {
        const c = new S3Client({
          endpoint: server.endpoint,
          region: "us-east-1",
          forcePathStyle: true,
          credentials: server.credentials,
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED",
        });
        closers.push(() => c.destroy());
        return c;
      },
    };
    await fn(ctx);
  } finally {
    for (const close of closers) close();
    await server.stop();
  }
}

const expectError = expectLitewardenError;

async function collect(s: S3Storage, prefix: string) {
  return await Array.fromAsync(s.list(prefix));
}

/** Puts many objects with bounded concurrency. */
async function putMany(s: S3Storage, entries: [string, Uint8Array][], concurrency = 32) {
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const [k, v] = entries[next++];
      await s.put(k, v);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const FAST: S3StorageOptions = {
  maxAttempts: 3,
  retryBaseDelayMs: 5,
  retryMaxDelayMs: 20,
  connectionTimeoutMs: 2000,
  requestTimeoutMs: 2000,
  socketTimeoutMs: 2000,
};

/** A hand-written S3 endpoint for failure modes; records each request. */
interface FakeServer {
  endpoint: string;
  requests: { method: string; url: URL; headers: Headers; body: string }[];
  stop(): Promise<void>;
}

function fakeS3(
  handler: (req: { method: string; url: URL; headers: Headers; body: string }, n: number) =>
    | Response
    | Promise<Response>,
  tls?: { cert: string; key: string },
): FakeServer {
  const requests: FakeServer["requests"] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, ...(tls ?? {}) },
    async (req) => {
      const rec = {
        method: req.method,
        url: new URL(req.url),
        headers: req.headers,
        body: await req.text(),
      };
      requests.push(rec);
      return await handler(rec, requests.length);
    },
  );
  return {
    endpoint: `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`,
    requests,
    stop: () => server.shutdown(),
  };
}

function fakeTarget(endpoint: string, path = "db"): S3ReplicaTarget {
  return {
    type: "s3",
    name: "s3",
    bucket: "bkt",
    path,
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    skipVerify: false,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
  };
}

const xml = (body: string, status = 200) =>
  new Response(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`, {
    status,
    headers: { "content-type": "application/xml" },
  });

const s3Error = (status: number, code: string, extra = "") =>
  xml(
    `<Error><Code>${code}</Code><Message>${code} happened</Message>${extra}<RequestId>R1</RequestId></Error>`,
    status,
  );

const listing = (keys: string[]) =>
  xml(
    `<ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated>${
      keys.map((k) =>
        `<Contents><Key>${k}</Key><Size>1</Size><LastModified>2024-05-01T00:00:00.000Z</LastModified></Contents>`
      ).join("")
    }</ListBucketResult>`,
  );

/** A port on 127.0.0.1 that nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

// ---------- against the S3 server ----------

Deno.test("S3Storage lists > 1000 keys across pages, relative to the prefix, in key order", async () => {
  await withS3(async (ctx) => {
    const s = ctx.storage("backups/vault");
    const entries: [string, Uint8Array][] = [];
    for (let i = 0; i < 1100; i++) {
      const idx = i.toString(16).padStart(8, "0");
      entries.push([`generations/0123456789abcdef/wal/${idx}_00000000.wal.lz4`, bytes(i % 7)]);
    }
    // Reverse insertion order, so the server's order (not ours) is what the test sees.
    await putMany(s, entries.slice().reverse());
    // Neighbours that must not show up: outside the prefix and a sibling sharing its start.
    await ctx.storage("backups").put("other/x", text("x"));
    await ctx.storage("backups/vault2").put("generations/y", text("y"));

    const all = await collect(s, "");
    assert.equal(all.length, 1100);
    assert.deepEqual(all.map((o) => o.key), entries.map(([k]) => k));
    assert.deepEqual(all.map((o) => o.size), entries.map(([, v]) => v.length));
    for (const o of all) {
      assert.ok(o.modified instanceof Date && !isNaN(o.modified.getTime()));
      assert.ok(Math.abs(o.modified.getTime() - Date.now()) < 3_600_000);
    }

    // A small page size takes more pages to the same result.
    const paged = await collect(ctx.storage("backups/vault", { pageSize: 97 }), "generations/");
    assert.deepEqual(paged.map((o) => o.key), entries.map(([k]) => k));

    // A sub-prefix, and a prefix that ends mid-name.
    const sub = await collect(s, "generations/0123456789abcdef/wal/000001");
    assert.deepEqual(
      sub.map((o) => o.key),
      entries.map(([k]) => k).filter((k) => k.includes("/wal/000001")),
    );
    assert.equal(sub.length, 256);
    assert.deepEqual(await collect(s, "nothing/"), []);

    // Stopping early is fine.
    let n = 0;
    for await (const _ of s.list("")) if (++n === 3) break;
    assert.equal(n, 3);
  });
});

Deno.test("S3Storage ranged gets: whole, first 100, last 16, middle, open-ended, empty", async () => {
  await withS3(async (ctx) => {
    const s = ctx.storage("db");
    const data = bytes(1000, 7);
    await s.put("generations/g/snapshots/00000000.snapshot.lz4", data);
    const key = "generations/g/snapshots/00000000.snapshot.lz4";
    assert.deepEqual(await readAll(await s.get(key)), data);
    assert.deepEqual(
      await readAll(await s.get(key, { offset: 0, length: 100 })),
      data.slice(0, 100),
    );
    assert.deepEqual(await readAll(await s.get(key, { offset: 984, length: 16 })), data.slice(984));
    assert.deepEqual(await readAll(await s.get(key, { offset: 984 })), data.slice(984));
    assert.deepEqual(
      await readAll(await s.get(key, { offset: 300, length: 50 })),
      data.slice(300, 350),
    );
    assert.deepEqual(await readAll(await s.get(key, { offset: 0 })), data);
    assert.equal((await readAll(await s.get(key, { offset: 10, length: 0 }))).length, 0);
    // A range past the end means the object is shorter than the caller was told: damaged.
    await expectError(s.get(key, { offset: 5000, length: 10 }), ExitCode.damaged, key);
  });
});

Deno.test("S3Storage get of a missing key is exit 5 and names the key", async () => {
  await withS3(async (ctx) => {
    const s = ctx.storage("db");
    await expectError(
      s.get("generations/0123456789abcdef/wal/00000001_00000000.wal.lz4"),
      ExitCode.damaged,
      "generations/0123456789abcdef/wal/00000001_00000000.wal.lz4",
      "s3://",
    );
  });
});

Deno.test("S3Storage put overwrites and get reads it back; a cancelled stream is fine", async () => {
  await withS3(async (ctx) => {
    const s = ctx.storage("db");
    await s.put("marker", text("one"));
    await s.put("marker", text("two!"));
    assert.deepEqual(await readAll(await s.get("marker")), text("two!"));
    assert.deepEqual((await collect(s, "")).map((o) => [o.key, o.size]), [["marker", 4]]);
    const big = bytes(300_000, 3);
    await s.put("big", big);
    const stream = await s.get("big");
    const reader = stream.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    await reader.cancel();
  });
});

Deno.test("S3Storage batch delete, batching, and idempotent re-delete", async () => {
  await withS3(async (ctx) => {
    const s = ctx.storage("db", { deleteBatchSize: 3 });
    const keys = Array.from({ length: 8 }, (_, i) => `ltx/0/${String(i).padStart(16, "0")}.ltx`);
    await putMany(s, keys.map((k) => [k, text(k)]));
    await s.delete([...keys.slice(0, 7), "ltx/0/never-existed.ltx", keys[0]]);
    assert.deepEqual((await collect(s, "")).map((o) => o.key), [keys[7]]);
    await s.delete(keys); // again: already gone is not an error
    await s.delete([]);
    assert.deepEqual(await collect(s, ""), []);
  });
});

Deno.test("S3Storage on a missing bucket is exit 4 naming the bucket", async () => {
  await withS3(async (ctx) => {
    const target = { ...ctx.target("db"), bucket: "lw-no-such-bucket-here" };
    const s = new S3Storage(target, FAST);
    try {
      const err = await expectError(
        collect(s, ""),
        ExitCode.storage,
        "lw-no-such-bucket-here",
        "does not exist",
        ctx.server.endpoint,
      );
      assert.ok(!err.message.includes(ctx.server.credentials.secretAccessKey));
      await expectError(s.get("x"), ExitCode.storage, "lw-no-such-bucket-here");
      await expectError(s.put("x", text("x")), ExitCode.storage, "lw-no-such-bucket-here");
    } finally {
      s.close();
    }
  });
});

Deno.test("S3Storage with a wrong secret never shows the secret (accepted or rejected)", async () => {
  await withS3(async (ctx) => {
    // fauxqs checks no signatures and accepts this; a real MinIO rejects it with exit 4.
    const target = {
      ...ctx.target("db"),
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    };
    const s = new S3Storage(target, FAST);
    try {
      await s.put("k", text("v"));
      await s.get("nope").catch((err: LitewardenError) => {
        assert.ok(!err.message.includes(SECRET));
        assert.ok(!JSON.stringify(err.cause ?? null).includes(SECRET));
      });
    } catch (err) {
      assert.ok(err instanceof LitewardenError);
      assert.equal(err.exitCode, ExitCode.storage);
      assert.ok(!err.message.includes(SECRET), err.message);
      assert.ok(!JSON.stringify(err.cause ?? null).includes(SECRET));
    } finally {
      s.close();
    }
  });
});

Deno.test("fauxqs completes a Go-style multipart upload (ETag quotes as &#34;) over 5 MiB", async () => {
  await withS3(async (ctx) => {
    const c = ctx.client();
    const key = "db/generations/0123456789abcdef/snapshots/00000001.snapshot.lz4";
    const part1 = bytes(5 * 1024 * 1024, 11);
    const part2 = bytes(700_000, 12);
    const { UploadId } = await c.send(
      new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key }),
    );
    const etags: string[] = [];
    for (const [i, body] of [part1, part2].entries()) {
      const r = await c.send(
        new UploadPartCommand({
          Bucket: ctx.bucket,
          Key: key,
          UploadId,
          PartNumber: i + 1,
          Body: body,
        }),
      );
      assert.ok(r.ETag?.startsWith('"'), "the server returns quoted ETags");
      etags.push(r.ETag!);
    }
    const complete = new CompleteMultipartUploadCommand({
      Bucket: ctx.bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    });
    // Encode the request body as Go's encoding/xml (Litestream) does: quotes as &#34;.
    let sentBody = "";
    complete.middlewareStack.add(
      (next) => (args) => {
        const req = args.request as { body?: unknown; headers: Record<string, string> };
        if (typeof req.body === "string") {
          // Only character data: the SDK writes ETag quotes as &quot; (or raw), Go as &#34;.
          sentBody = req.body.replace(
            /<ETag>(.*?)<\/ETag>/g,
            (_, v: string) =>
              `<ETag>${v.replaceAll("&quot;", "&#34;").replaceAll('"', "&#34;")}</ETag>`,
          );
          req.body = sentBody;
          req.headers["content-length"] = String(text(sentBody).length);
        }
        return next(args);
      },
      { step: "build", priority: "low", name: "goStyleXml" },
    );
    await c.send(complete);
    if (!EXTERNAL) assert.ok(sentBody.includes("&#34;"));

    const s = ctx.storage("db");
    const rel = "generations/0123456789abcdef/snapshots/00000001.snapshot.lz4";
    const listed = await collect(s, "generations/");
    assert.deepEqual(listed.map((o) => [o.key, o.size]), [[rel, part1.length + part2.length]]);
    // A range across the part boundary.
    const got = await readAll(await s.get(rel, { offset: part1.length - 10, length: 20 }));
    assert.deepEqual(got, new Uint8Array([...part1.slice(-10), ...part2.slice(0, 10)]));
    assert.deepEqual(await readAll(await s.get(rel, { offset: part1.length })), part2);
  });
});

Deno.test("a single PUT over the 11 MiB fauxqs default body limit works", async () => {
  await withS3(async (ctx) => {
    const s = ctx.storage("db");
    const data = bytes(12 * 1024 * 1024, 5);
    await s.put("big.snapshot", data);
    const tail = await readAll(await s.get("big.snapshot", { offset: data.length - 16 }));
    assert.deepEqual(tail, data.slice(-16));
  });
});

Deno.test("decodeNumericEntities keeps XML-special characters escaped", () => {
  const dec = (s: string) => new TextDecoder().decode(decodeNumericEntities(text(s)));
  assert.equal(dec("<ETag>&#34;abc&#34;</ETag>"), "<ETag>&quot;abc&quot;</ETag>");
  assert.equal(dec("<Key>a&#38;amp;b&#x41;&#233;</Key>"), "<Key>a&amp;amp;bAé</Key>");
  assert.equal(dec("<Key>plain</Key>"), "<Key>plain</Key>");
});

Deno.test("S3Storage with an empty root reads Litestream v0.5's '/'-prefixed keys", async () => {
  await withS3(async (ctx) => {
    const c = ctx.client();
    try {
      await c.send(
        new PutObjectCommand({ Bucket: ctx.bucket, Key: "/0000/a.ltx", Body: text("A") }),
      );
    } catch (err) {
      // A real server may refuse such keys (then it cannot hold such replicas either).
      if (EXTERNAL) return;
      throw err;
    }
    await c.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: "0000/b.ltx", Body: text("BB") }));
    await c.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: "0000/c.ltx", Body: text("C") }));
    await c.send(
      new PutObjectCommand({ Bucket: ctx.bucket, Key: "generations/g/x", Body: text("G") }),
    );

    const s = ctx.storage("");
    const l0 = await collect(s, "0000/");
    // A real server may normalise the key away; fauxqs keeps it as Litestream wrote it.
    if (EXTERNAL && !l0.some((o) => o.key === "0000/a.ltx")) return;
    assert.deepEqual(l0.map((o) => [o.key, o.size]), [["0000/a.ltx", 1], ["0000/b.ltx", 2], [
      "0000/c.ltx",
      1,
    ]]);
    assert.deepEqual((await collect(s, "")).map((o) => o.key), [
      "0000/a.ltx",
      "0000/b.ltx",
      "0000/c.ltx",
      "generations/g/x",
    ]);
    assert.deepEqual(await readAll(await s.get("0000/a.ltx")), text("A"));
    // A fresh storage that has not listed yet finds it too.
    assert.deepEqual(await readAll(await ctx.storage("").get("0000/a.ltx")), text("A"));
    await s.delete(["0000/a.ltx", "0000/b.ltx"]);
    assert.deepEqual((await collect(s, "0000/")).map((o) => o.key), ["0000/c.ltx"]);
  });
});

Deno.test("openStorage gives an S3Storage for s3 targets", async () => {
  const s = await openStorage(fakeTarget("http://127.0.0.1:9", "db"));
  assert.ok(s instanceof S3Storage);
  assert.equal(s.location, "s3://bkt/db");
  s.close();
});

// ---------- failure modes (hand-written servers) ----------

Deno.test("an unreachable endpoint is exit 4 quickly, with bounded retries", async () => {
  const endpoint = `http://127.0.0.1:${closedPort()}`;
  const s = new S3Storage(fakeTarget(endpoint), FAST);
  const t0 = performance.now();
  try {
    await expectError(
      collect(s, ""),
      ExitCode.storage,
      `cannot reach S3 endpoint ${endpoint}`,
      "connection refused",
      "3 attempts",
    );
    await expectError(s.get("x"), ExitCode.storage, "cannot reach S3 endpoint");
  } finally {
    s.close();
  }
  assert.ok(performance.now() - t0 < 5000);
});

Deno.test("error classification: what is retried, and what the user is told", () => {
  // Shapes as the SDK / Node produce them; no request leaves the machine for these.
  const nodeErr = (code: string, message: string) => Object.assign(new Error(message), { code });
  const c1 = classifyS3Error(nodeErr("ENOTFOUND", "getaddrinfo ENOTFOUND s3.example.invalid"));
  assert.deepEqual([c1.network, c1.retryable, c1.reason], [
    true,
    false,
    "host not found (DNS) (ENOTFOUND)",
  ]);
  const c2 = classifyS3Error(nodeErr("EAI_AGAIN", "getaddrinfo EAI_AGAIN"));
  assert.deepEqual([c2.network, c2.retryable], [true, true]);
  const c3 = classifyS3Error(nodeErr("ECONNRESET", "socket hang up"));
  assert.deepEqual([c3.network, c3.retryable], [true, true]);
  const agg = Object.assign(
    new AggregateError([nodeErr("ECONNREFUSED", "connect ECONNREFUSED ::1:9000")]),
    {},
  );
  assert.equal(classifyS3Error(agg).code, "ECONNREFUSED");
  const svc = (name: string, status: number) =>
    Object.assign(new Error(`${name} with ${SECRET}`), {
      name,
      $fault: status >= 500 ? "server" : "client",
      $metadata: { httpStatusCode: status },
    });
  assert.equal(classifyS3Error(svc("SlowDown", 503)).retryable, true);
  assert.equal(classifyS3Error(svc("InternalError", 500)).retryable, true);
  assert.equal(classifyS3Error(svc("NotImplemented", 501)).retryable, false);
  assert.equal(classifyS3Error(svc("AccessDenied", 403)).retryable, false);
  assert.equal(classifyS3Error(svc("Unknown", 429)).retryable, true);
  assert.equal(classifyS3Error(svc("Unknown", 502)).code, "HTTP 502");
  assert.ok(!JSON.stringify(classifyS3Error(svc("AccessDenied", 403))).includes(SECRET));
  const timeout = Object.assign(
    new Error(
      "@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 2000 ms.",
    ),
    { name: "TimeoutError" },
  );
  assert.deepEqual(
    [classifyS3Error(timeout).retryable, classifyS3Error(timeout).reason],
    [true, "no connection within 2000 ms (timeout)"],
  );
});

Deno.test("rejections never leak credentials, even when the server echoes them", async () => {
  const fake = fakeS3((req) =>
    s3Error(
      403,
      "SignatureDoesNotMatch",
      `<AWSAccessKeyId>${ACCESS_KEY}</AWSAccessKeyId><StringToSign>${
        req.headers.get("authorization")
      }</StringToSign><SignatureProvided>${SECRET}</SignatureProvided><Secret>${SECRET}</Secret>`,
    )
  );
  const s = new S3Storage(fakeTarget(fake.endpoint), FAST);
  try {
    for (
      const p of [
        collect(s, ""),
        s.get("generations/x"),
        s.put("k", text("v")),
        s.delete(["k"]),
      ]
    ) {
      const err = await expectError(p, ExitCode.storage);
      const all = `${err.message} ${err.stack} ${JSON.stringify(err.cause ?? null)}`;
      assert.ok(!all.includes(SECRET), all);
      assert.ok(!all.includes(ACCESS_KEY), all);
    }
    const err = await expectError(collect(s, ""), ExitCode.storage, "access denied to s3://bkt/db");
    assert.ok(err.message.includes("check the access key, secret and region"));
    assert.equal(fake.requests.length, 5, "access errors are not retried");
  } finally {
    s.close();
    await fake.stop();
  }
});

Deno.test("throttling and 5xx are retried; persistent 5xx is exit 4 after max attempts", async () => {
  let mode: "flaky" | "down" = "flaky";
  let n = 0;
  const fake = fakeS3(() => {
    n++;
    if (mode === "down") return s3Error(500, "InternalError");
    if (n === 1) return s3Error(503, "SlowDown");
    if (n === 2) return new Response("Too Many Requests", { status: 429 });
    if (n === 3) return new Response("<html>bad gateway</html>", { status: 502 });
    return listing(["db/a", "db/b"]);
  });
  const s = new S3Storage(fakeTarget(fake.endpoint), { ...FAST, maxAttempts: 4 });
  try {
    assert.deepEqual((await collect(s, "")).map((o) => o.key), ["a", "b"]);
    assert.equal(n, 4);
    mode = "down";
    n = 0;
    await expectError(s.get("a"), ExitCode.storage, "InternalError", "HTTP 500", "4 attempts");
    assert.equal(n, 4);
  } finally {
    s.close();
    await fake.stop();
  }
});

Deno.test("dropped connections (socket hang up) are retried", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let conns = 0;
  const body =
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated><Contents><Key>db/k</Key><Size>1</Size><LastModified>2024-05-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>`;
  const serve = (async () => {
    for await (const conn of listener) {
      conns++;
      const buf = new Uint8Array(65536);
      await conn.read(buf).catch(() => null);
      if (conns <= 2) {
        conn.close(); // drop it: the client sees "socket hang up" / ECONNRESET
        continue;
      }
      const head = `HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: ${
        text(body).length
      }\r\nconnection: close\r\n\r\n`;
      await conn.write(text(head + body)).catch(() => 0);
      conn.close();
    }
  })();
  const s = new S3Storage(fakeTarget(`http://127.0.0.1:${port}`), FAST);
  try {
    assert.deepEqual((await collect(s, "")).map((o) => o.key), ["k"]);
    assert.equal(conns, 3);
  } finally {
    s.close();
    listener.close();
    await serve.catch(() => {});
  }
});

Deno.test("a slow server hits the request timeout and is exit 4", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const fake = fakeS3(async () => {
    await held;
    return listing([]);
  });
  const s = new S3Storage(fakeTarget(fake.endpoint), {
    ...FAST,
    maxAttempts: 2,
    requestTimeoutMs: 150,
  });
  try {
    await expectError(
      collect(s, ""),
      ExitCode.storage,
      "cannot reach S3 endpoint",
      "no response within 150 ms",
    );
  } finally {
    s.close();
    release();
    await fake.stop();
  }
});

Deno.test("DeleteObjects sends Content-MD5, not CRC32; per-key AccessDenied is exit 4", async () => {
  const fake = fakeS3((req) => {
    if (req.method === "POST" && req.url.searchParams.has("delete")) {
      return xml(
        `<DeleteResult><Error><Key>db/b</Key><Code>AccessDenied</Code><Message>no</Message></Error><Error><Key>db/c</Key><Code>NoSuchKey</Code><Message>gone</Message></Error></DeleteResult>`,
      );
    }
    return s3Error(400, "Unexpected");
  });
  const s = new S3Storage(fakeTarget(fake.endpoint), FAST);
  try {
    await expectError(
      s.delete(["a", "b", "c"]),
      ExitCode.storage,
      "permission denied: cannot delete b",
      "s3:DeleteObject",
    );
    const req = fake.requests[0];
    const md5 = req.headers.get("content-md5");
    assert.ok(md5, "Content-MD5 is sent");
    const { createHash } = await import("node:crypto");
    assert.equal(md5, createHash("md5").update(req.body).digest("base64"));
    assert.equal(req.headers.get("x-amz-checksum-crc32"), null);
    assert.equal(req.headers.get("x-amz-sdk-checksum-algorithm"), null);
    assert.ok(req.body.includes("<Key>db/a</Key>") && req.body.includes("<Quiet>true</Quiet>"));
  } finally {
    s.close();
    await fake.stop();
  }
});

Deno.test("providers without DeleteObjects fall back to single deletes", async () => {
  const deleted: string[] = [];
  const fake = fakeS3((req) => {
    if (req.method === "POST") return s3Error(501, "NotImplemented");
    if (req.method === "DELETE") {
      const key = decodeURIComponent(req.url.pathname.replace(/^\/bkt\//, ""));
      if (key === "db/forbidden") return s3Error(403, "AccessDenied");
      if (key === "db/gone") return s3Error(404, "NoSuchKey");
      deleted.push(key);
      return new Response(null, { status: 204 });
    }
    return s3Error(400, "Unexpected");
  });
  const s = new S3Storage(fakeTarget(fake.endpoint), FAST);
  try {
    await s.delete(["a", "b", "gone"]);
    assert.deepEqual(deleted.sort(), ["db/a", "db/b"]);
    await s.delete(["c"]); // remembered: no second batch attempt
    assert.equal(fake.requests.filter((r) => r.method === "POST").length, 1);
    await expectError(
      s.delete(["forbidden"]),
      ExitCode.storage,
      "permission denied: cannot delete forbidden from s3://bkt/db",
      "s3:DeleteObject",
    );
  } finally {
    s.close();
    await fake.stop();
  }
});

Deno.test("a body that keeps dropping mid-way fails with exit 4 after max attempts", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let conns = 0;
  const serve = (async () => {
    for await (const conn of listener) {
      conns++;
      await conn.read(new Uint8Array(65536)).catch(() => null);
      const head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000\r\n\r\n";
      await conn.write(text(head + "x".repeat(100))).catch(() => 0);
      conn.close();
    }
  })();
  const s = new S3Storage(fakeTarget(`http://127.0.0.1:${port}`), { ...FAST, maxAttempts: 3 });
  try {
    const stream = await s.get("k");
    await expectError(readAll(stream), ExitCode.storage, "broke off 3 times");
    assert.equal(conns, 3);
  } finally {
    s.close();
    listener.close();
    await serve.catch(() => {});
  }
});

Deno.test("a body that drops once resumes with a ranged GET and yields every byte", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const object = new Uint8Array(5000).map((_, i) => (i * 7) % 251);
  const ranges: (string | null)[] = [];
  let dropAfter: number | undefined = 1234; // the next response breaks off after this many bytes
  const serve = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(65536);
      const n = await conn.read(buf).catch(() => null);
      const req = new TextDecoder().decode(buf.subarray(0, n ?? 0));
      const range = /\r\nrange: bytes=(\d+)-(\d*)/i.exec(req);
      ranges.push(range ? `${range[1]}-${range[2]}` : null);
      const from = range ? Number(range[1]) : 0;
      const to = range && range[2] ? Number(range[2]) + 1 : object.length;
      const part = object.subarray(from, to);
      const head = `HTTP/1.1 ${
        range ? "206 Partial Content" : "200 OK"
      }\r\ncontent-type: application/octet-stream\r\ncontent-length: ${part.length}\r\nconnection: close\r\n\r\n`;
      await conn.write(text(head)).catch(() => 0);
      await conn.write(dropAfter !== undefined ? part.subarray(0, dropAfter) : part).catch(() => 0);
      dropAfter = undefined;
      conn.close();
    }
  })();
  const s = new S3Storage(fakeTarget(`http://127.0.0.1:${port}`), FAST);
  try {
    assert.deepEqual(await readAll(await s.get("k")), object);
    assert.deepEqual(ranges, [null, "1234-4999"]);
    // A ranged read resumes inside its own range.
    ranges.length = 0;
    assert.deepEqual(
      await readAll(await s.get("k", { offset: 100, length: 50 })),
      object.subarray(100, 150),
    );
  } finally {
    s.close();
    listener.close();
    await serve.catch(() => {});
  }
});

Deno.test("listing pages are followed via continuation tokens", async () => {
  const fake = fakeS3((req) => {
    const token = req.url.searchParams.get("continuation-token");
    const page = token === null ? 0 : Number(token);
    const keys = [`db/wal/k${page}a`, `db/wal/k${page}b`];
    const more = page < 2;
    return xml(
      `<ListBucketResult><Name>bkt</Name><IsTruncated>${more}</IsTruncated>${
        more ? `<NextContinuationToken>${page + 1}</NextContinuationToken>` : ""
      }${
        keys.map((k) =>
          `<Contents><Key>${k}</Key><Size>3</Size><LastModified>2024-05-01T00:00:00.000Z</LastModified></Contents>`
        ).join("")
      }</ListBucketResult>`,
    );
  });
  const s = new S3Storage(fakeTarget(fake.endpoint), FAST);
  try {
    const got = await collect(s, "wal/");
    assert.deepEqual(got.map((o) => o.key), [
      "wal/k0a",
      "wal/k0b",
      "wal/k1a",
      "wal/k1b",
      "wal/k2a",
      "wal/k2b",
    ]);
    assert.deepEqual(got[0].modified, new Date("2024-05-01T00:00:00.000Z"));
    assert.equal(fake.requests.length, 3);
    assert.equal(fake.requests[0].url.searchParams.get("prefix"), "db/wal/");
    assert.equal(fake.requests[0].url.searchParams.get("list-type"), "2");
  } finally {
    s.close();
    await fake.stop();
  }
});

async function selfSignedCert(): Promise<{ cert: string; key: string } | undefined> {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) return undefined;
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } catch {
    return undefined; // no openssl on this machine
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("skipVerify accepts a self-signed certificate; without it the TLS error is exit 4", async (t) => {
  const tls = await selfSignedCert();
  if (!tls) {
    await t.step({ name: "openssl not available", ignore: true, fn() {} });
    return;
  }
  const fake = fakeS3(() => listing(["db/a"]), tls);
  const strict = new S3Storage(fakeTarget(fake.endpoint), FAST);
  const lax = new S3Storage({ ...fakeTarget(fake.endpoint), skipVerify: true }, FAST);
  try {
    await expectError(collect(strict, ""), ExitCode.storage, "cannot reach S3 endpoint", "TLS");
    assert.deepEqual((await collect(lax, "")).map((o) => o.key), ["a"]);
  } finally {
    strict.close();
    lax.close();
    await fake.stop();
  }
});

Deno.test("an https:// endpoint on a plain-HTTP server is named as such, not as a certificate problem", async () => {
  const server = await startS3Server();
  const storage = new S3Storage(fakeTarget(server.endpoint.replace("http://", "https://")), FAST);
  try {
    const err = await expectError(
      collect(storage, ""),
      ExitCode.storage,
      "speaks plain HTTP, not TLS",
      "use an http:// endpoint",
    );
    assert.ok(!/certificate|skip-verify/.test(err.message), err.message);
  } finally {
    storage.close();
    await server.stop();
  }
});

Deno.test("resolveRegion: configured, default us-east-1, auto for R2", () => {
  assert.equal(resolveRegion({ region: "eu-west-1", endpoint: undefined }), "eu-west-1");
  assert.equal(resolveRegion({ region: "", endpoint: undefined }), "us-east-1");
  assert.equal(resolveRegion({ region: "", endpoint: "http://127.0.0.1:9000" }), "us-east-1");
  const r2 = "https://0123abcd.r2.cloudflarestorage.com";
  assert.equal(resolveRegion({ region: "", endpoint: r2 }), "auto");
  assert.equal(resolveRegion({ region: "us-east-1", endpoint: r2 }), "auto");
  assert.equal(resolveRegion({ region: "wnam", endpoint: r2 }), "wnam");
});
