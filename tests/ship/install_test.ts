/** `deno task install` (scripts/install.ts): a `litewarden` on PATH that runs this checkout. */
import { fileURLToPath } from "node:url";
import { VERSION } from "../../src/cli/version.ts";
import { assertEquals, assertStringIncludes } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function sh(cmd: string[], env: Record<string, string>, cwd: string) {
  const o = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

Deno.test("deno task install puts a working litewarden on PATH; a foreign file is never replaced", async () => {
  await using dir = await makeTempDir();
  const bin = dir.join("bin");
  const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: dir.path, NO_PROGRESS: "1" };
  const install = await sh(
    [Deno.execPath(), "task", "--quiet", "--config", `${ROOT}deno.json`, "install", "--bin", bin],
    env,
    dir.path,
  );
  assertEquals(install.code, 0, install.stderr);
  assertStringIncludes(install.stderr, `installed ${bin}/litewarden`);

  // From an unrelated directory, by name, through PATH.
  const version = await sh(["litewarden", "--version"], env, dir.path);
  assertEquals([version.code, version.stdout.trim()], [0, VERSION], version.stderr);
  const list = await sh(
    ["litewarden", "verify", `file://${ROOT}samples/vaultwarden-replica`],
    env,
    dir.path,
  );
  assertEquals(list.code, 0, list.stderr + list.stdout);

  // Installing again replaces our own launcher; someone else's file stays.
  assertEquals(
    (await sh(
      [Deno.execPath(), "run", "-A", `${ROOT}scripts/install.ts`, "--bin", bin],
      env,
      dir.path,
    )).code,
    0,
  );
  await Deno.writeTextFile(`${bin}/litewarden`, "#!/bin/sh\necho mine\n");
  const refused = await sh(
    [Deno.execPath(), "run", "-A", `${ROOT}scripts/install.ts`, "--bin", bin],
    env,
    dir.path,
  );
  assertEquals(refused.code, 9, refused.stderr);
  assertEquals(await Deno.readTextFile(`${bin}/litewarden`), "#!/bin/sh\necho mine\n");

  // Without --bin: $DENO_INSTALL_ROOT/bin, else ~/.local/bin.
  const rooted = await sh(
    [Deno.execPath(), "run", "-A", `${ROOT}scripts/install.ts`],
    { ...env, DENO_INSTALL_ROOT: dir.join("root") },
    dir.path,
  );
  assertEquals(rooted.code, 0, rooted.stderr);
  await Deno.stat(dir.join("root/bin/litewarden"));
  const home = await sh([Deno.execPath(), "run", "-A", `${ROOT}scripts/install.ts`], env, dir.path);
  assertEquals(home.code, 0, home.stderr);
  await Deno.stat(dir.join(".local/bin/litewarden"));
});
