import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { replicateRandomBlobs } from "../support/litestream.ts";
import { makeTempDir } from "../support/tmp.ts";

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
