/**
 * `putStream` on the file backend and on a real S3 server: the bytes arrive whole, an existing
 * object is never replaced with `ifAbsent`, a source that gives the wrong number of bytes stores
 * nothing, and a retry reads the source again from the start.
 */
import { LitewardenError } from "../../src/errors.ts";
import { FileStorage } from "../../src/storage/file.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { bytesSource, readAll } from "../../src/storage/storage.ts";
import type { PutSource, Storage } from "../../src/storage/storage.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { bytes } from "../support/bytes.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { withTempDir } from "../support/tmp.ts";

/** A source yielding `data` in 64 KiB chunks, counting how often it was opened. */
function chunkedSource(data: Uint8Array, claimed = data.length): PutSource & { opens: number } {
  const src = {
    size: claimed,
    opens: 0,
    open() {
      src.opens++;
      let at = 0;
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          pull(ctrl) {
            if (at >= data.length) return ctrl.close();
            ctrl.enqueue(data.slice(at, at + (64 << 10)));
            at += 64 << 10;
          },
        }),
      );
    },
  };
  return src;
}

async function contract(storage: Storage, keys: () => Promise<string[]>) {
  const big = bytes(3 * 1024 * 1024 + 17, 7);
  const src = chunkedSource(big);
  assertEquals(await storage.putStream("files/a/big", src, { ifAbsent: true }), true);
  assertEquals(await readAll(await storage.get("files/a/big")), big);

  // ifAbsent: the existing object stays as it was, and the source is not even read.
  const other = chunkedSource(bytes(1000, 9));
  assertEquals(await storage.putStream("files/a/big", other, { ifAbsent: true }), false);
  assertEquals((await readAll(await storage.get("files/a/big"))).length, big.length);

  // Without ifAbsent the object is replaced whole.
  assertEquals(await storage.putStream("files/a/small", bytesSource(bytes(10, 1))), true);
  assertEquals(await storage.putStream("files/a/small", bytesSource(bytes(20, 2))), true);
  assertEquals(await readAll(await storage.get("files/a/small")), bytes(20, 2));

  // A source shorter or longer than its size stores nothing.
  for (const claimed of [5000, 3000]) {
    await assertRejects(
      () => storage.putStream(`files/a/wrong-${claimed}`, chunkedSource(bytes(4000, 3), claimed)),
      LitewardenError,
    );
  }
  assertEquals(await keys(), ["files/a/big", "files/a/small"]);
}

Deno.test("putStream on the file backend: whole, create-only, wrong sizes store nothing (no temp left)", async () => {
  await withTempDir(async (dir) => {
    const storage = new FileStorage(dir);
    await contract(storage, () => {
      const names = [...Deno.readDirSync(`${dir}/files/a`)].map((e) => e.name).sort();
      return Promise.resolve(names.map((n) => `files/a/${n}`));
    });
  });
});

Deno.test("putStream on S3: one streamed PUT with its length, create-only, wrong sizes store nothing", async () => {
  const server = await startS3Server();
  const bucket = `lw-${crypto.randomUUID().slice(0, 8)}`;
  await server.createBucket(bucket);
  const storage = new S3Storage(s3TargetFor(server, bucket, "vault"));
  try {
    await contract(
      storage,
      async () => (await Array.fromAsync(storage.list("files/"))).map((o) => o.key),
    );
  } finally {
    storage.close();
    await server.stop();
  }
});

Deno.test("putStream on S3 retries a failed attempt by reading the source again", async () => {
  let failures = 1;
  const server = await startS3Server({
    afterBody: (method, url) => {
      if (method === "PUT" && url.includes("files/x") && failures > 0) {
        failures--;
        throw Object.assign(new Error("injected"), { statusCode: 503 });
      }
    },
  });
  const bucket = `lw-${crypto.randomUUID().slice(0, 8)}`;
  await server.createBucket(bucket);
  const storage = new S3Storage(s3TargetFor(server, bucket, ""), { retryBaseDelayMs: 1 });
  try {
    const data = bytes(300_000, 5);
    const src = chunkedSource(data);
    assert(await storage.putStream("files/x", src));
    assertEquals(src.opens, 2);
    assertEquals(await readAll(await storage.get("files/x")), data);
  } finally {
    storage.close();
    await server.stop();
  }
});
