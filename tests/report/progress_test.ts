import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { replicateRandomBlobs } from "../support/litestream.ts";
import { makeTempDir } from "../support/tmp.ts";
import { runCli } from "../support/cli.ts";
import { Progress } from "../../src/report/progress.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const hasScript = (() => {
  try {
    return Deno.statSync("/usr/bin/script").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "restore shows a progress bar on a terminal and nothing on a pipe",
  ignore: !hasScript, // util-linux `script` provides the pseudo-terminal
  async fn() {
    await using dir = await makeTempDir();
    const replica = await replicateRandomBlobs(dir.path, 8);
    const args = ["run", "-A", MAIN, "restore", `file://${replica}`];
    // Other test files set NO_PROGRESS in this process; the children must not inherit it.
    const env = { NO_COLOR: "1", NO_PROGRESS: "" };
    // On a terminal: `script` runs the command on a pseudo-terminal and copies what it shows.
    const cmd = [Deno.execPath(), ...args, "-o", dir.join("tty.db")].map((a) => `'${a}'`).join(" ");
    const tty = await new Deno.Command("script", {
      args: ["-qec", cmd, "/dev/null"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const shown = new TextDecoder().decode(tty.stdout);
    assertEquals(tty.code, 0, shown);
    assertStringIncludes(shown, "restoring [");
    assert(/\d+\/\d+ files/.test(shown), shown);
    // On a pipe: only the final summary line, no bar, no escape codes.
    const piped = await new Deno.Command(Deno.execPath(), {
      args: [...args, "-o", dir.join("pipe.db")],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(piped.stderr);
    assertEquals(piped.code, 0, err);
    assert(!err.includes("restoring [") && !err.includes("\x1b["), err);
    assertEquals(err.trim().split("\n").length, 1);
    assertStringIncludes(err, "restored ");
  },
});

Deno.test("Progress draws through its sink on a terminal and not at all elsewhere", () => {
  const noProgress = Deno.env.get("NO_PROGRESS");
  Deno.env.delete("NO_PROGRESS");
  try {
    const drawn: string[] = [];
    const bar = new Progress({ isTerminal: true, write: (t) => drawn.push(t) }, "copying", 2, 2048);
    bar.addBytes(1024);
    bar.addObject();
    bar.done();
    assertEquals(drawn.length, 2, JSON.stringify(drawn));
    assertEquals(drawn[0], "\r\x1b[Kcopying [##########----------] 50% 1.0 KiB/2.0 KiB 0/2 files");
    assertEquals(drawn[1], "\r\x1b[K");
    const none: string[] = [];
    const quiet = new Progress(
      { isTerminal: false, write: (t) => none.push(t) },
      "copying",
      2,
      2048,
    );
    quiet.addBytes(2048);
    quiet.done();
    assertEquals(none, []);
  } finally {
    if (noProgress !== undefined) Deno.env.set("NO_PROGRESS", noProgress);
  }
});

Deno.test("verify shows its restore's progress on a terminal, and nothing on a pipe", async () => {
  await using dir = await makeTempDir();
  const replica = await replicateRandomBlobs(dir.path, 2);
  const args = ["verify", `file://${replica}`, "--app", "none"];
  const tty = await runCli(args, { terminal: true });
  assertEquals(tty.code, 0, tty.stderr);
  assertStringIncludes(tty.progress, "verifying [");
  assert(tty.progress.endsWith("\r\x1b[K"), JSON.stringify(tty.progress.slice(-40)));
  const piped = await runCli(args);
  assertEquals(piped.code, 0, piped.stderr);
  assertEquals(piped.progress, "");
});
