/**
 * Local filesystem failures are typed errors with a documented exit code, never exit 1 "please
 * report it": permission denied names the path (exit 2), the file size limit and a full disk say
 * so (exit 10), and neither leaves a temp file behind.
 */
import { runCli } from "../support/cli.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { replicateRandomBlobs } from "../support/litestream.ts";
import { makeTempDir } from "../support/tmp.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("restore into a directory it may not write: exit 2 naming the directory", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 1);
  // sysfs refuses new files even to root, so this holds however the suite is run.
  const r = await runCli(["restore", `file://${replica}`, "-o", "/sys/litewarden-test.db"]);
  assertEquals(r.code, 2, r.stderr);
  assertMatch(r.stderr, /^litewarden: permission denied: cannot create files in \/sys; /);
  assert(!r.stderr.includes("please report it"), r.stderr);
});

Deno.test("verify --metrics-file in a directory it may not write: a warning naming it", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 1);
  const r = await runCli([
    "verify",
    `file://${replica}`,
    "--app",
    "none",
    "--metrics-file",
    "/sys/litewarden.prom",
  ]);
  // A monitoring problem never fails a good verify (README), but it says what to fix.
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stderr,
    "could not write the metrics file /sys/litewarden.prom: permission denied: cannot write /sys;",
  );
});

Deno.test("restore past the file size limit: exit 10, no temp file left", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 4);
  const outDir = dir.join("out");
  await Deno.mkdir(outDir);
  // 1024 blocks (at most 1 MiB) is far below the 4 MB database. SIGXFSZ is ignored from the
  // start: Deno writes its own caches (larger than the limit on a CI machine) before
  // litewarden's listener is installed, and must get EFBIG there rather than be killed.
  const child = await new Deno.Command("sh", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f 1024 && exec "$0" run --no-code-cache -A "$1" restore "$2" -o "$3"`,
      Deno.execPath(),
      MAIN,
      `file://${replica}`,
      `${outDir}/db.sqlite3`,
    ],
    env: { NO_PROGRESS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assertEquals(child.code, 10, stderr);
  assertMatch(
    stderr,
    /litewarden: file size limit reached writing .*\.tmp: need about [\d,]+ bytes; /,
  );
  assertEquals(await Array.fromAsync(Deno.readDir(outDir)), []);
});

Deno.test("verify with a temp directory it may not write: exit 2 saying to set TMPDIR", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 1);
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "verify", `file://${replica}`, "--app", "none"],
    env: { TMPDIR: "/sys", NO_PROGRESS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assertEquals(child.code, 2, stderr);
  assertStringIncludes(
    stderr,
    "litewarden: permission denied: cannot create the temp directory /sys/litewarden-verify-*; set TMPDIR",
  );
});

Deno.test("restore -o under a file: exit 2 saying it is not a directory", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 1);
  const r = await runCli(["restore", `file://${replica}`, "-o", "/dev/full/db.sqlite3"]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "/dev/full");
  assertStringIncludes(r.stderr, "not a directory; give a path in a directory");
});

Deno.test("verify past the file size limit: exit 10 from restore.apply, temp directory removed", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 4);
  const tmp = dir.join("tmp");
  await Deno.mkdir(tmp);
  const child = await new Deno.Command("sh", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f 1024 && exec "$0" run --no-code-cache -A "$1" verify "$2" --app none --json`,
      Deno.execPath(),
      MAIN,
      `file://${replica}`,
    ],
    env: { NO_PROGRESS: "1", TMPDIR: tmp },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assertEquals(child.code, 10, stderr);
  const doc = JSON.parse(new TextDecoder().decode(child.stdout)) as {
    exitCode: number;
    checks: { id: string; status: string; message: string }[];
  };
  assertEquals(doc.exitCode, 10);
  const apply = doc.checks.find((c) => c.id === "restore.apply");
  assertEquals(apply?.status, "fail");
  assertMatch(apply!.message, /^file size limit reached writing .*: need about [\d,]+ bytes; /);
  assertEquals(await Array.fromAsync(Deno.readDir(tmp)), []);
});
