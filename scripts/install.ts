/**
 * `deno task install`: puts a `litewarden` command on PATH that runs this checkout, offline.
 * It writes a small launcher (a POSIX sh script) into the first of: `--bin DIR`,
 * `$DENO_INSTALL_ROOT/bin`, `~/.local/bin`. The launcher runs `deno run -A` on this checkout's
 * main.ts with its deno.json and node_modules, using the Deno that ran the install; nothing is
 * downloaded when it runs (`--cached-only`). A launcher is replaced only if it is one of ours.
 *
 * Usage: deno run -A scripts/install.ts [--bin DIR]
 */
import { fileURLToPath } from "node:url";

const MARK = "# litewarden launcher (scripts/install.ts)";

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export function launcherText(deno: string, root: string): string {
  return [
    "#!/bin/sh",
    MARK,
    `exec ${quote(deno)} run -A --quiet --cached-only --config ${quote(`${root}deno.json`)} ${
      quote(`${root}main.ts`)
    } "$@"`,
    "",
  ].join("\n");
}

export function binDir(args: string[], env: (name: string) => string | undefined): string {
  const i = args.indexOf("--bin");
  if (i >= 0) {
    const dir = args[i + 1];
    if (!dir) throw new Error("--bin needs a directory");
    return dir;
  }
  const root = env("DENO_INSTALL_ROOT");
  if (root) return `${root}/bin`;
  const home = env("HOME");
  if (!home) throw new Error("HOME is not set: pass --bin DIR");
  return `${home}/.local/bin`;
}

async function main(): Promise<number> {
  const root = fileURLToPath(new URL("../", import.meta.url));
  let dir: string;
  try {
    dir = binDir(Deno.args, (n) => Deno.env.get(n));
  } catch (err) {
    console.error(`litewarden install: ${(err as Error).message}`);
    return 2;
  }
  const target = `${dir}/litewarden`;
  const existing = await Deno.readTextFile(target).catch(() => undefined);
  if (existing !== undefined && !existing.includes(MARK)) {
    console.error(
      `litewarden install: ${target} exists and is not a litewarden launcher; remove it or pass --bin DIR`,
    );
    return 9;
  }
  try {
    await Deno.stat(`${root}node_modules`);
  } catch {
    console.error(
      `litewarden install: ${root}node_modules is missing; run \`deno install\` in ${root} once (it needs the npm registry), then install again`,
    );
    return 2;
  }
  await Deno.mkdir(dir, { recursive: true });
  const temp = `${target}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(temp, launcherText(Deno.execPath(), root), { mode: 0o755 });
  await Deno.chmod(temp, 0o755);
  await Deno.rename(temp, target);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(dir);
  console.error(
    `installed ${target} (runs ${root}main.ts with ${Deno.execPath()})${
      onPath ? "" : `; ${dir} is not on PATH: add it, e.g. export PATH="${dir}:$PATH"`
    }`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
