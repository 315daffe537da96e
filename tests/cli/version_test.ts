import { gitRevision, VERSION } from "../../src/cli/version.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("--version and version print the version; --json adds Deno's and the git revision", async () => {
  for (const args of [["--version"], ["version"]]) {
    const r = await runCli(args);
    assertEquals([r.code, r.stdout, r.stderr], [0, VERSION, ""], args.join(" "));
  }
  const expected = await new Deno.Command("git", {
    args: ["-C", new URL("../..", import.meta.url).pathname, "rev-parse", "HEAD"],
    stdout: "piped",
    stderr: "null",
  }).output().then((o) => o.success ? new TextDecoder().decode(o.stdout).trim() : null)
    .catch(() => null);
  for (const args of [["--version", "--json"], ["version", "--json"], ["--json", "version"]]) {
    const r = await runCli(args);
    assertEquals(r.code, 0, args.join(" "));
    const doc = JSON.parse(r.stdout);
    assertEquals(doc.version, VERSION);
    assertEquals(doc.deno, Deno.version.deno);
    assertEquals(doc.revision, expected, "the checkout's own HEAD, or null outside git");
  }
});

Deno.test("the revision is null where it cannot be told (not a file URL, not a git checkout)", async () => {
  assertEquals(await gitRevision("https://example.invalid/src/cli/version.ts"), null);
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await gitRevision(`file://${dir}/version.ts`), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts --version as a process", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--version"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  assertEquals(new TextDecoder().decode(out.stdout), `${VERSION}\n`);
});
