/**
 * The one error model: every error kind maps to its documented exit code through the one table,
 * every typed error carries its kind, and local filesystem failures become typed errors.
 */
import {
  DamagedError,
  DiskFullError,
  ERROR_KINDS,
  EXIT_CODE_BY_KIND,
  exitCodeOf,
  InterruptedError,
  LitewardenError,
  localFsError,
  MissingObjectError,
  NoBackupError,
  PermissionError,
  RefusedError,
  StorageError,
  typedOsError,
  UsageError,
  worstExitCode,
  worstExitCodeOfKinds,
} from "../src/errors.ts";
import type { ErrorKind } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { makeTempDir } from "./support/tmp.ts";

/** README's exit-code table, written out: a change here is a change of documented behaviour. */
const DOCUMENTED: Record<ErrorKind, number> = {
  unexpected: 1,
  usage: 2,
  permission: 2,
  noBackup: 3,
  storage: 4,
  damaged: 5,
  unhealthy: 6,
  appCheck: 7,
  stale: 8,
  refused: 9,
  diskFull: 10,
  interrupted: 130,
};

Deno.test("every error kind maps to its documented exit code", () => {
  assertEquals([...ERROR_KINDS].sort(), Object.keys(DOCUMENTED).sort());
  for (const kind of ERROR_KINDS) {
    const err = new LitewardenError(kind, `a ${kind} error`);
    assertEquals(exitCodeOf(err), DOCUMENTED[kind], kind);
    assertEquals(err.exitCode, DOCUMENTED[kind], kind);
    assertEquals(EXIT_CODE_BY_KIND[kind], DOCUMENTED[kind], kind);
  }
});

Deno.test("README's exit-code table lists every code of the table", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("## Exit codes"));
  const rows = new Set(
    [...section.matchAll(/^\| (\d+) +\|/gm)].map((m) => Number(m[1])),
  );
  for (const code of new Set(Object.values(EXIT_CODE_BY_KIND))) {
    assert(rows.has(code), `exit code ${code} is missing from README's table`);
  }
});

Deno.test("each typed error carries its kind and what it is about", () => {
  const cases: [LitewardenError, ErrorKind][] = [
    [new UsageError("bad flag"), "usage"],
    [new NoBackupError("nothing here", "s3://b/p"), "noBackup"],
    [new DamagedError("bad frame", "generations/x/wal/1.wal.lz4"), "damaged"],
    [new MissingObjectError("gone", "generations/x/wal/2.wal.lz4"), "damaged"],
    [new StorageError("denied", { op: "get", key: "k", status: 403, attempts: 3 }), "storage"],
    [new RefusedError("exists", "/data/db.sqlite3"), "refused"],
    [new PermissionError("/data", "permission denied"), "permission"],
    [new DiskFullError("/data", "no space"), "diskFull"],
    [new InterruptedError(), "interrupted"],
  ];
  for (const [err, kind] of cases) {
    assert(err instanceof LitewardenError);
    assertEquals(err.kind, kind, err.name);
    assertEquals(exitCodeOf(err), DOCUMENTED[kind], err.name);
  }
  const storage = cases[4][0] as StorageError;
  assertEquals([storage.op, storage.key, storage.status, storage.attempts], ["get", "k", 403, 3]);
  assertEquals((cases[3][0] as DamagedError).key, "generations/x/wal/2.wal.lz4");
  assert(cases[3][0] instanceof DamagedError);
});

Deno.test("anything but a LitewardenError is exit 1 (a bug)", () => {
  assertEquals(exitCodeOf(new Error("boom")), 1);
  assertEquals(exitCodeOf("boom"), 1);
});

Deno.test("combining codes: the most severe wins, 0 only when all are 0", () => {
  assertEquals(worstExitCode([]), 0);
  assertEquals(worstExitCode([0, 0]), 0);
  assertEquals(worstExitCode([8, 5, 6]), 5);
  assertEquals(worstExitCode([3, 4]), 4);
  assertEquals(worstExitCode([5, 10]), 10);
  assertEquals(worstExitCode([2, 4, 130]), 130);
  assertEquals(worstExitCodeOfKinds(["stale", "appCheck"]), 7);
  assertEquals(worstExitCodeOfKinds(["permission", "storage"]), 2);
  // Every code of the table has a rank, so none is ever dropped when combined.
  for (const kind of ERROR_KINDS) assertEquals(worstExitCodeOfKinds([kind]), DOCUMENTED[kind]);
});

Deno.test("a permission error on a local path names the path (exit 2)", () => {
  const err = localFsError(
    new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
    "/srv/out.db",
  );
  assert(err instanceof PermissionError);
  assertEquals(err.path, "/srv/out.db");
  assertEquals(exitCodeOf(err), 2);
  assertMatch(err.message, /^permission denied: cannot write \/srv\/out\.db; /);
});

Deno.test("a full disk names the directory and the space needed (exit 10)", async () => {
  // /dev/full answers every write with ENOSPC, as a full filesystem does.
  const raw = await Deno.writeFile("/dev/full", new Uint8Array(16)).then(() => undefined, (e) => e);
  assert(raw instanceof Error, "writing /dev/full must fail");
  const err = localFsError(raw, "/srv/data/db.sqlite3", { needBytes: 123456 });
  assert(err instanceof DiskFullError);
  assertEquals(err.dir, "/srv/data");
  assertEquals(exitCodeOf(err), 10);
  assertEquals(
    err.message,
    "no space left on /srv/data: need about 123,456 bytes; free some space or choose another directory",
  );
});

Deno.test("the file size limit (EFBIG) is reported like a full disk", async () => {
  await using dir = await makeTempDir();
  // A child under `ulimit -f` (16 MiB): it ignores SIGXFSZ as litewarden does, so the
  // write fails with EFBIG instead of killing the process.
  const script = dir.join("efbig.ts");
  await Deno.writeTextFile(
    script,
    `import { localFsError } from ${
      JSON.stringify(new URL("../src/errors.ts", import.meta.url).href)
    };
Deno.addSignalListener("SIGXFSZ", () => {});
try {
  await Deno.writeFile(${JSON.stringify(dir.join("big"))}, new Uint8Array(64 << 20));
  console.log("no error");
} catch (err) {
  const e = localFsError(err, ${JSON.stringify(dir.join("big"))}) as Error;
  console.log(e.name + ": " + e.message);
}`,
  );
  const out = await new Deno.Command("sh", {
    // 16 MiB: room for Deno's own cache writes at start-up (a 1 MiB limit sometimes killed
    // the child with SIGXFSZ before the listener was installed), well below the 64 MiB write.
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f 32768 && exec "$0" run -A --no-code-cache "$1"`,
      Deno.execPath(),
      script,
    ],
    // A fresh module cache: the shared one is larger than the limit, and Deno writes to it.
    env: { DENO_DIR: dir.join("deno-dir") },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertMatch(text, /^DiskFullError: file size limit reached writing .*\/big; raise the limit/);
});

Deno.test("errors that are already typed, or not filesystem errors, pass through", () => {
  const typed = new DamagedError("x");
  assertEquals(localFsError(typed, "/p"), typed);
  const other = new Error("something else");
  assertEquals(localFsError(other, "/p"), other);
});

Deno.test("an OS error no layer wrapped is still typed when it names a local path", async () => {
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
  // Not a directory on the way: a usage error naming the path.
  const notDir = typedOsError(
    await failure(Deno.open("/dev/full/x.db", { write: true, create: true })),
  );
  assert(notDir instanceof UsageError);
  assertMatch(
    notDir.message,
    /^\/dev\/full\/x\.db: part of this path is a file, not a directory; /,
  );
  // A file where a directory must be created.
  const exists = typedOsError(await failure(Deno.mkdir("/dev/full", { recursive: true })));
  assert(exists instanceof UsageError);
  assertMatch(exists.message, /^\/dev\/full exists and is not a directory; /);
  // sysfs refuses new files even to root: permission, naming the path.
  const denied = typedOsError(
    await failure(Deno.open("/sys/litewarden-x", { write: true, create: true })),
  );
  assert(denied instanceof PermissionError);
  assertEquals(denied.path, "/sys/litewarden-x");
  // A write through an open file names no path, but a full disk is still not a bug.
  const f = await Deno.open("/dev/full", { write: true });
  const full = typedOsError(await failure(f.write(new Uint8Array(8))));
  f.close();
  assert(full instanceof DiskFullError);
  assertEquals(exitCodeOf(full), 10);
  // Anything else stays what it was (exit 1, a bug to report).
  const other = new Error("boom");
  assertEquals(typedOsError(other), other);
});
