import assert from "node:assert/strict";
import { ExitCode, LitewardenError } from "../../src/errors.ts";
import { FileStorage } from "../../src/storage/file.ts";
import { openStorage } from "../../src/storage/open.ts";
import { readAll } from "../../src/storage/storage.ts";

const text = (s: string) => new TextEncoder().encode(s);

function bytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "litewarden-file-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function write(root: string, key: string, data: Uint8Array): Promise<void> {
  const abs = `${root}/${key}`;
  await Deno.mkdir(abs.slice(0, abs.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(abs, data);
}

async function expectError(p: Promise<unknown>, exitCode: number, ...fragments: string[]) {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof LitewardenError)) throw err;
    assert.equal(err.exitCode, exitCode, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" lacks "${f}"`);
    return err;
  }
  throw new Error("expected an error");
}

const KEYS = [
  "generations/0123456789abcdef/snapshots/00000000.snapshot.lz4",
  "generations/0123456789abcdef/wal/00000000_00000000.wal.lz4",
  "generations/0123456789abcdef/wal/00000000_00001000.wal.lz4",
  "generations/0123456789abcdef/wal/00000001_00000000.wal.lz4",
  "generations/fedcba9876543210/wal/00000000_00000000.wal.lz4",
  "ltx/0/0000000000000001-0000000000000001.ltx",
  "ltx/9/0000000000000001-0000000000000005.ltx",
];

Deno.test("FileStorage lists recursively, in key order, relative to the root", async () => {
  await withDir(async (dir) => {
    // Written out of order, so the order is the backend's doing.
    for (const [i, k] of [...KEYS].reverse().entries()) await write(dir, k, bytes(10 + i));
    const s = new FileStorage(dir);
    assert.equal(s.location, `file://${dir}`);
    const all = await Array.fromAsync(s.list(""));
    assert.deepEqual(all.map((o) => o.key), KEYS);
    for (const o of all) {
      const st = await Deno.stat(`${dir}/${o.key}`);
      assert.equal(o.size, st.size);
      assert.deepEqual(o.modified, st.mtime);
    }
    // Directory prefix, a prefix ending mid-name, and one that matches nothing.
    const wal = await Array.fromAsync(s.list("generations/0123456789abcdef/wal/"));
    assert.deepEqual(wal.map((o) => o.key), KEYS.slice(1, 4));
    const mid = await Array.fromAsync(s.list("generations/0123456789abcdef/wal/00000000_"));
    assert.deepEqual(mid.map((o) => o.key), KEYS.slice(1, 3));
    const gens = await Array.fromAsync(s.list("generations/"));
    assert.deepEqual(gens.map((o) => o.key), KEYS.slice(0, 5));
    assert.deepEqual(await Array.fromAsync(s.list("nothing/here/")), []);
  });
});

Deno.test("FileStorage reports object mtimes", async () => {
  await withDir(async (dir) => {
    await write(dir, "a/b", text("x"));
    const when = new Date("2024-03-04T05:06:07.000Z");
    await Deno.utime(`${dir}/a/b`, when, when);
    const [o] = await Array.fromAsync(new FileStorage(dir).list(""));
    assert.deepEqual(o, { key: "a/b", size: 1, modified: when });
  });
});

Deno.test("FileStorage with a missing root lists nothing", async () => {
  await withDir(async (dir) => {
    const s = new FileStorage(`${dir}/not-yet`);
    assert.deepEqual(await Array.fromAsync(s.list("")), []);
    assert.deepEqual(await Array.fromAsync(s.list("generations/")), []);
  });
});

Deno.test("FileStorage whose root is a file is a usage error (exit 2)", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/db.sqlite`, "not a directory");
    const s = new FileStorage(`${dir}/db.sqlite`);
    await expectError(Array.fromAsync(s.list("")), ExitCode.usage, `${dir}/db.sqlite`, "is a file");
  });
});

Deno.test("FileStorage ranged reads: whole, first 100, last 16, middle, open-ended", async () => {
  await withDir(async (dir) => {
    const data = bytes(3 * 1024 * 1024 + 5); // more than one internal 1 MiB buffer
    await write(dir, "snap", data);
    const s = new FileStorage(dir);
    assert.deepEqual(await readAll(await s.get("snap")), data);
    assert.deepEqual(
      await readAll(await s.get("snap", { offset: 0, length: 100 })),
      data.slice(0, 100),
    );
    const end = data.length;
    assert.deepEqual(
      await readAll(await s.get("snap", { offset: end - 16, length: 16 })),
      data.slice(end - 16),
    );
    assert.deepEqual(
      await readAll(await s.get("snap", { offset: end - 16 })),
      data.slice(end - 16),
    );
    assert.deepEqual(
      await readAll(await s.get("snap", { offset: 1_000_000, length: 2_500_000 })),
      data.slice(1_000_000, 3_500_000),
    );
    assert.equal((await readAll(await s.get("snap", { offset: 10, length: 0 }))).length, 0);
    // A length past the end stops at the end.
    assert.deepEqual(
      await readAll(await s.get("snap", { offset: end - 4, length: 100 })),
      data.slice(end - 4),
    );
    // Cancelling a ranged stream closes the file.
    const stream = await s.get("snap", { offset: 0, length: 2_000_000 });
    const reader = stream.getReader();
    await reader.read();
    await reader.cancel();
  });
});

Deno.test("FileStorage get of a missing key is exit 5 and names the key", async () => {
  await withDir(async (dir) => {
    const key = "generations/0123456789abcdef/wal/00000002_00000000.wal.lz4";
    await expectError(new FileStorage(dir).get(key), ExitCode.damaged, key);
  });
});

Deno.test("FileStorage put creates directories, replaces atomically, leaves no temp files", async () => {
  await withDir(async (dir) => {
    const s = new FileStorage(dir);
    await s.put("markers/litewarden/checked", text("first"));
    assert.equal(await Deno.readTextFile(`${dir}/markers/litewarden/checked`), "first");
    // A reader that opened the old file keeps reading the old content: put renames over it.
    const before = await s.get("markers/litewarden/checked");
    await s.put("markers/litewarden/checked", text("second, longer"));
    assert.equal(new TextDecoder().decode(await readAll(before)), "first");
    assert.equal(await Deno.readTextFile(`${dir}/markers/litewarden/checked`), "second, longer");
    const names = await Array.fromAsync(Deno.readDir(`${dir}/markers/litewarden`));
    assert.deepEqual(names.map((e) => e.name), ["checked"]);
    assert.deepEqual((await Array.fromAsync(s.list(""))).map((o) => o.key), [
      "markers/litewarden/checked",
    ]);
  });
});

Deno.test("FileStorage put into an unwritable place is exit 4", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/blocker`, "a file where a directory should be");
    const s = new FileStorage(dir);
    await expectError(s.put("blocker/marker", text("x")), ExitCode.storage, `${dir}/blocker`);
  });
});

Deno.test("FileStorage delete removes keys and is idempotent", async () => {
  await withDir(async (dir) => {
    for (const k of KEYS) await write(dir, k, text(k));
    const s = new FileStorage(dir);
    await s.delete([KEYS[1], KEYS[2], "generations/never/existed.wal.lz4"]);
    assert.deepEqual(
      (await Array.fromAsync(s.list(""))).map((o) => o.key),
      KEYS.filter((_, i) => i !== 1 && i !== 2),
    );
    await s.delete([KEYS[1], KEYS[2]]);
    await s.delete([]);
    assert.equal((await Array.fromAsync(s.list(""))).length, KEYS.length - 2);
  });
});

Deno.test("openStorage gives a FileStorage for file targets", async () => {
  const s = await openStorage({ type: "file", name: "file", path: "/nonexistent/replica" });
  assert.ok(s instanceof FileStorage);
  assert.equal(s.location, "file:///nonexistent/replica");
});
