/**
 * S3Storage behind the fault proxy (tests/support/fault_proxy.ts) in front of the real test S3
 * server: listings that page in circles fail with exit 4 after a handful of requests instead of
 * looping forever, and a body that stalls is dropped after the read-idle timeout and resumed.
 */
import { ExitCode, LitewardenError } from "../../src/errors.ts";
import { S3Storage, type S3StorageOptions } from "../../src/storage/s3.ts";
import { readAll } from "../../src/storage/storage.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { startFaultProxy } from "../support/fault_proxy.ts";
import type { FaultProxy } from "../support/fault_proxy.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import type { TestS3Server } from "../support/s3_server.ts";

const FAST: S3StorageOptions = {
  retryBaseDelayMs: 1,
  retryMaxDelayMs: 5,
  requestTimeoutMs: 5_000,
  readIdleTimeoutMs: 300,
  pageSize: 2,
};

async function withProxy(
  fn: (proxy: FaultProxy, storage: (o?: S3StorageOptions) => S3Storage) => Promise<void>,
): Promise<void> {
  const server: TestS3Server = await startS3Server();
  const proxy = startFaultProxy(server.endpoint);
  const opened: S3Storage[] = [];
  try {
    await server.createBucket("faults");
    const direct = new S3Storage(s3TargetFor(server, "faults", "db"));
    for (let i = 0; i < 5; i++) await direct.put(`wal/k${i}`, new Uint8Array(3000).fill(i));
    direct.close();
    await fn(proxy, (o) => {
      const s = new S3Storage(
        { ...s3TargetFor(server, "faults", "db"), endpoint: proxy.endpoint },
        { ...FAST, ...o },
      );
      opened.push(s);
      return s;
    });
  } finally {
    for (const s of opened) s.close();
    await proxy.stop();
    await server.stop();
  }
}

async function listKeys(s: S3Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of s.list("wal/")) keys.push(o.key);
  return keys;
}

const lists = (p: FaultProxy) => p.requests.filter((r) => r.isList).length;

Deno.test("S3 listing through the proxy: clean pages are all followed", async () => {
  await withProxy(async (proxy, storage) => {
    assertEquals(await listKeys(storage()), [0, 1, 2, 3, 4].map((i) => `wal/k${i}`));
    assertEquals(lists(proxy), 3);
  });
});

Deno.test("S3 listing that repeats its continuation token: exit 4 after 2 requests", async () => {
  await withProxy(async (proxy, storage) => {
    proxy.add({ when: (r) => r.isList, fault: { type: "repeatToken" } });
    const err = await assertRejects(() => listKeys(storage()), LitewardenError);
    assertEquals(err.exitCode, ExitCode.storage);
    assertStringIncludes(err.message, "is looping");
    assertStringIncludes(err.message, "continuation token");
    assertEquals(lists(proxy), 2);
  });
});

Deno.test("S3 listing of endless empty truncated pages: exit 4, bounded requests", async () => {
  await withProxy(async (proxy, storage) => {
    proxy.add({ when: (r) => r.isList, fault: { type: "emptyPages" } });
    const err = await assertRejects(() => listKeys(storage()), LitewardenError);
    assertEquals(err.exitCode, ExitCode.storage);
    assertStringIncludes(err.message, "empty pages in a row");
    assert(lists(proxy) <= 102, `${lists(proxy)} LIST requests`);
  });
});

Deno.test("a stalled body is dropped after the read-idle timeout and resumed", async () => {
  await withProxy(async (proxy, storage) => {
    proxy.add({
      when: (r) => r.method === "GET" && !r.isList,
      fault: { type: "stall", after: 1000 },
      times: 2,
    });
    const data = await readAll(await storage().get("wal/k3"));
    assertEquals(data, new Uint8Array(3000).fill(3));
    const gets = proxy.requests.filter((r) => r.method === "GET" && !r.isList);
    assertEquals(gets.map((r) => r.range), [null, "bytes=1000-2999", "bytes=2000-2999"]);
  });
});

Deno.test("a body that always stalls is exit 4 after max attempts, not a hang", async () => {
  await withProxy(async (proxy, storage) => {
    proxy.add({
      when: (r) => r.method === "GET" && !r.isList,
      fault: { type: "stall", after: 10 },
    });
    const err = await assertRejects(
      async () => await readAll(await storage({ maxAttempts: 3 }).get("wal/k1")),
      LitewardenError,
    );
    assertEquals(err.exitCode, ExitCode.storage);
    assertStringIncludes(err.message, "broke off 3 times");
    assertStringIncludes(err.message, "read-idle timeout");
  });
});

Deno.test("resets, cut bodies, 5xx bursts and latency: every byte arrives", async () => {
  await withProxy(async (proxy, storage) => {
    const get = (r: { method: string; isList: boolean }) => r.method === "GET" && !r.isList;
    proxy.add({ when: get, fault: { type: "reset" }, times: 1 });
    proxy.add({ when: get, fault: { type: "status", status: 503 }, times: 2 });
    proxy.add({ when: get, fault: { type: "cut", after: 1500 }, times: 1 });
    proxy.add({ when: get, fault: { type: "status", status: 500 }, times: 1 });
    proxy.add({ fault: { type: "latency", ms: 30 }, times: 3 });
    const s = storage();
    for (let i = 0; i < 5; i++) {
      assertEquals(await readAll(await s.get(`wal/k${i}`)), new Uint8Array(3000).fill(i));
    }
    const faults = proxy.requests.map((r) => r.fault).filter(Boolean);
    assertEquals(faults, [
      "reset",
      "status",
      "status",
      "cut",
      "status",
      "latency",
      "latency",
      "latency",
    ]);
  });
});
