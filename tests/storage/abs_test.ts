/**
 * AbsStorage against a real Azure Blob emulator (azurite, started by the suite on 127.0.0.1),
 * which checks every Shared Key signature; failures a healthy server never produces (throttling,
 * 5xx, bodies that break off) come from a small proxy in front of it that forwards everything
 * else unchanged.
 */
import assert from "node:assert/strict";
import type { AbsReplicaTarget } from "../../src/config/target.ts";
import { ExitCode } from "../../src/errors.ts";
import { AbsStorage, type AbsStorageOptions, parseBlobList } from "../../src/storage/abs.ts";
import { openStorage } from "../../src/storage/open.ts";
import { readAll } from "../../src/storage/storage.ts";
import { expectLitewardenError } from "../support/assert.ts";
import { absTargetFor, startAzurite, type TestAzurite } from "../support/azurite_server.ts";

const FAST: AbsStorageOptions = {
  maxAttempts: 3,
  retryBaseDelayMs: 5,
  retryMaxDelayMs: 20,
  requestTimeoutMs: 3000,
  readIdleTimeoutMs: 3000,
};

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const expectError = expectLitewardenError;

let containerSeq = 0;
async function freshContainer(server: TestAzurite): Promise<string> {
  const name = `lw-${Date.now().toString(36)}-${++containerSeq}`;
  await server.createContainer(name);
  return name;
}

const keys = (infos: { key: string }[]) => infos.map((i) => i.key);

async function roundTrip(server: TestAzurite, t: Deno.TestContext) {
  const container = await freshContainer(server);
  const s = new AbsStorage(absTargetFor(server, container, "vw/db"), { ...FAST, pageSize: 2 });
  const other = new AbsStorage(absTargetFor(server, container, "vw/other"), FAST);
  const object = bytes(70_000, 3);
  // Names that exercise signing and encoding: spaces, '+', '%', unicode, deep paths.
  const names = [
    "generations/0123456789abcdef/snapshots/00000000.snapshot.lz4",
    "generations/0123456789abcdef/wal/00000000_00000000.wal.lz4",
    "generations/0123456789abcdef/wal/00000000_00001000.wal.lz4",
    "ltx/0/0000000000000001-0000000000000001.ltx",
    "odd name + 100%/é.bin",
  ];
  await t.step("put and list", async () => {
    for (const [i, n] of names.entries()) await s.put(n, i === 0 ? object : bytes(10 + i, i));
    await other.put("generations/ffffffffffffffff/snapshots/00000000.snapshot.lz4", bytes(5));
    const all = await Array.fromAsync(s.list(""));
    assert.deepEqual(keys(all), [...names].sort());
    assert.equal(all[0].size, object.length);
    const before = Date.now();
    for (const info of all) {
      assert.ok(Math.abs(info.modified.getTime() - before) < 120_000, "creation time is now-ish");
      assert.equal(info.modified.getMilliseconds(), 0, "Azure times have whole seconds");
    }
    assert.deepEqual(keys(await Array.fromAsync(s.list("generations/0123456789abcdef/wal/"))), [
      names[1],
      names[2],
    ]);
    assert.deepEqual(await Array.fromAsync(s.list("nothing/")), []);
    // Another prefix in the same container is not mixed in.
    assert.deepEqual(keys(await Array.fromAsync(other.list(""))), [
      "generations/ffffffffffffffff/snapshots/00000000.snapshot.lz4",
    ]);
  });
  await t.step("ranged gets", async () => {
    const get = async (offset?: number, length?: number) =>
      await readAll(
        await s.get(names[0], offset === undefined ? undefined : { offset, length }),
      );
    assert.deepEqual(await get(), object);
    assert.deepEqual(await get(0, 100), object.subarray(0, 100));
    assert.deepEqual(await get(object.length - 16, 16), object.subarray(object.length - 16));
    assert.deepEqual(await get(1000, 5000), object.subarray(1000, 6000));
    assert.deepEqual(await get(65_000), object.subarray(65_000));
    assert.deepEqual(await get(10, 0), new Uint8Array(0));
    assert.deepEqual(await readAll(await s.get(names[4])), bytes(14, 4));
    // A read past the end is a truncated object (exit 5).
    await expectError(
      s.get(names[0], { offset: object.length + 10, length: 4 }),
      ExitCode.damaged,
      "shorter than expected",
    );
  });
  await t.step("missing object is exit 5; delete is idempotent", async () => {
    await expectError(s.get("generations/x/wal/nope.wal.lz4"), ExitCode.damaged, "nope.wal.lz4");
    await s.delete([names[1], names[2], "never/existed"]);
    await s.delete([names[1]]);
    assert.deepEqual(keys(await Array.fromAsync(s.list("generations/0123456789abcdef/wal/"))), []);
    await s.put(names[4], new Uint8Array([9]));
    assert.deepEqual(await readAll(await s.get(names[4])), new Uint8Array([9]));
  });
}

async function parallelDeletes(server: TestAzurite) {
  const container = await freshContainer(server);
  const s = new AbsStorage(absTargetFor(server, container, ""), FAST);
  const names = Array.from({ length: 60 }, (_, i) => `k/${String(i).padStart(3, "0")}`);
  await Promise.all(names.map((n) => s.put(n, bytes(3, 1))));
  assert.equal((await Array.fromAsync(s.list("k/"))).length, 60);
  await s.delete([...names, ...names.slice(0, 5)]);
  assert.deepEqual(await Array.fromAsync(s.list("")), []);
}

async function failuresHideTheKey(server: TestAzurite) {
  const container = await freshContainer(server);
  await new AbsStorage(absTargetFor(server, container, "p"), FAST).put("a", bytes(4));
  const wrongKey = btoa("x".repeat(64));
  const bad: AbsReplicaTarget = { ...absTargetFor(server, container, "p"), accountKey: wrongKey };
  const e1 = await expectError(
    Array.fromAsync(new AbsStorage(bad, FAST).list("")),
    ExitCode.storage,
    "Azure rejected the request",
    "account key",
  );
  await expectError(new AbsStorage(bad, FAST).get("a"), ExitCode.storage, "Azure rejected");
  const e2 = await expectError(
    Array.fromAsync(new AbsStorage(absTargetFor(server, "no-such-container", "p"), FAST).list("")),
    ExitCode.storage,
    "container no-such-container does not exist",
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down: AbsReplicaTarget = {
    ...absTargetFor(server, container, "p"),
    endpoint: `http://127.0.0.1:${port}/${server.accountName}`,
  };
  const e3 = await expectError(
    Array.fromAsync(new AbsStorage(down, FAST).list("")),
    ExitCode.storage,
    "cannot reach Azure Blob endpoint",
    "connection refused",
    "after 3 attempts",
  );
  for (const e of [e1, e2, e3]) {
    assert.ok(!e.message.includes(server.accountKey), e.message);
    assert.ok(!e.message.includes(wrongKey), e.message);
    assert.ok(!JSON.stringify(e.cause ?? {}).includes(wrongKey));
  }
}

async function openStorageGivesAbs(server: TestAzurite) {
  const container = await freshContainer(server);
  const s = await openStorage(absTargetFor(server, container, "x/y"));
  assert.ok(s instanceof AbsStorage);
  assert.equal(s.location, `abs://${server.accountName}@${container}/x/y`);
  await s.put("m", bytes(2));
  assert.deepEqual(keys(await Array.fromAsync(s.list(""))), ["m"]);
}

// ---------------------------------------------------------------------------------------------
// Faults, through a proxy in front of azurite

interface Proxy {
  endpoint: string;
  /** Requests seen: method, path+query, x-ms-range. */
  seen: { method: string; path: string; range: string | null }[];
  stop(): Promise<void>;
}

/**
 * Forwards to azurite unless `fault` returns a response (or a byte count: forward, but cut the
 * body off after that many bytes and drop the connection).
 */
function faultProxy(
  server: TestAzurite,
  fault: (req: Request, n: number) => Response | number | undefined,
): Proxy {
  const upstream = new URL(server.endpoint).origin;
  const seen: Proxy["seen"] = [];
  const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    seen.push({
      method: req.method,
      path: u.pathname + u.search,
      range: req.headers.get("x-ms-range"),
    });
    const f = fault(req, seen.length);
    if (f instanceof Response) return f;
    const headers = new Headers(req.headers);
    headers.delete("host");
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
    const res = await fetch(upstream + u.pathname + u.search, {
      method: req.method,
      headers,
      body,
    });
    if (f === undefined || !res.body) return res;
    const reader = res.body.getReader();
    let sent = 0;
    const cut = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        const { done, value } = await reader.read();
        if (done) return ctrl.close();
        const room = f - sent;
        if (value.length >= room) {
          if (room > 0) ctrl.enqueue(value.subarray(0, room));
          sent = f;
          reader.cancel().catch(() => {});
          ctrl.close(); // short of Content-Length: the server drops the connection
          return;
        }
        sent += value.length;
        ctrl.enqueue(value);
      },
    });
    return new Response(cut, { status: res.status, headers: res.headers });
  });
  return {
    endpoint: `http://127.0.0.1:${srv.addr.port}/${server.accountName}`,
    seen,
    stop: () => srv.shutdown(),
  };
}

const busy = () =>
  new Response("<Error><Code>ServerBusy</Code></Error>", {
    status: 503,
    headers: { "x-ms-error-code": "ServerBusy" },
  });

async function retriesThrottling(server: TestAzurite) {
  const container = await freshContainer(server);
  await new AbsStorage(absTargetFor(server, container, "p"), FAST).put("a", bytes(100));
  let failFirst = 2;
  const proxy = faultProxy(server, (_req, n) => (n <= failFirst ? busy() : undefined));
  try {
    const s = new AbsStorage(
      { ...absTargetFor(server, container, "p"), endpoint: proxy.endpoint },
      FAST,
    );
    assert.deepEqual(keys(await Array.fromAsync(s.list(""))), ["a"]);
    assert.equal(proxy.seen.length, 3);
    failFirst = 1000;
    await expectError(
      s.get("a"),
      ExitCode.storage,
      "kept failing",
      "ServerBusy (HTTP 503)",
      "after 3 attempts",
    );
  } finally {
    await proxy.stop();
  }
}

async function resumesBrokenBodies(server: TestAzurite) {
  const container = await freshContainer(server);
  const object = bytes(200_000, 9);
  await new AbsStorage(absTargetFor(server, container, "p"), FAST).put("big", object);
  let cutNext: number | undefined = 70_000;
  const proxy = faultProxy(server, (req) => {
    if (req.method !== "GET" || new URL(req.url).search.includes("comp=list")) return undefined;
    return cutNext;
  });
  try {
    const s = new AbsStorage(
      { ...absTargetFor(server, container, "p"), endpoint: proxy.endpoint },
      FAST,
    );
    const stream = await s.get("big");
    cutNext = undefined; // only the first body breaks off
    assert.deepEqual(await readAll(stream), object);
    const ranges = proxy.seen.map((r) => r.range);
    assert.equal(ranges[0], null);
    assert.match(ranges[1] ?? "", /^bytes=\d+-199999$/);
    const resumedAt = Number(/bytes=(\d+)-/.exec(ranges[1]!)![1]);
    assert.ok(resumedAt > 0 && resumedAt <= 70_000, `resumed at ${resumedAt}`);
    // Within a range, the resume stays inside it.
    proxy.seen.length = 0;
    cutNext = 1000;
    const part = await s.get("big", { offset: 5000, length: 50_000 });
    cutNext = undefined;
    assert.deepEqual(await readAll(part), object.subarray(5000, 55_000));
    assert.equal(proxy.seen[0].range, "bytes=5000-54999");
    assert.match(proxy.seen[1].range ?? "", /^bytes=\d+-54999$/);
    // Always breaking off: bounded.
    cutNext = 10;
    await expectError(readAll(await s.get("big")), ExitCode.storage, "broke off 3 times");
  } finally {
    await proxy.stop();
  }
}

Deno.test("parseBlobList reads names, sizes, creation times, markers and encoded names", () => {
  const xml = `<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>p/</Prefix><MaxResults>2</MaxResults><Blobs>
<Blob><Name>p/a&amp;b</Name><Properties><Creation-Time>Thu, 03 Dec 2026 10:00:01 GMT</Creation-Time><Last-Modified>Thu, 03 Dec 2026 10:00:05 GMT</Last-Modified><Content-Length>12</Content-Length></Properties></Blob>
<Blob><Name Encoded="true">p/%EF%BF%BE</Name><Properties><Last-Modified>Thu, 03 Dec 2026 10:00:09 GMT</Last-Modified><Content-Length>0</Content-Length></Properties></Blob>
</Blobs><NextMarker>2!72!abc</NextMarker></EnumerationResults>`;
  const page = parseBlobList(xml);
  assert.deepEqual(page.blobs, [
    { name: "p/a&b", size: 12, time: new Date("2026-12-03T10:00:01Z") },
    { name: "p/\uFFFE", size: 0, time: new Date("2026-12-03T10:00:09Z") },
  ]);
  assert.equal(page.nextMarker, "2!72!abc");
  assert.equal(
    parseBlobList("<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>").nextMarker,
    "",
  );
});

Deno.test("AbsStorage against azurite", async (t) => {
  // One server for every step: its start-up costs about a second.
  const server = await startAzurite();
  try {
    await t.step(
      "put, paged list in key order, ranged gets, delete",
      (st) => roundTrip(server, st),
    );
    await t.step("deletes many blobs in parallel", () => parallelDeletes(server));
    await t.step(
      "wrong key, missing container, unreachable endpoint never show the key",
      () => failuresHideTheKey(server),
    );
    await t.step(
      "openStorage gives an AbsStorage for abs targets",
      () => openStorageGivesAbs(server),
    );
    await t.step(
      "throttling and 5xx are retried; persistent 503 is exit 4",
      () => retriesThrottling(server),
    );
    await t.step(
      "a body that breaks off resumes with a ranged GET; one that keeps breaking is exit 4",
      () => resumesBrokenBodies(server),
    );
  } finally {
    await server.stop();
  }
});
