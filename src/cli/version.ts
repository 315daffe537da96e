import { Command } from "commander";
import type { Output } from "./context.ts";
import { VERSION } from "./version_string.ts";

export { VERSION };

/**
 * The git revision of the checkout this code runs from, or null when that cannot be told (a
 * compiled binary, a copied bundle, no git): never guessed.
 */
export async function gitRevision(from: string = import.meta.url): Promise<string | null> {
  if (!from.startsWith("file:")) return null;
  try {
    const dir = new URL(".", from).pathname;
    const out = await new Deno.Command("git", {
      args: ["-C", dir, "rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).output();
    const rev = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{40}$/.test(rev) ? rev : null;
  } catch {
    return null; // git not installed, or no permission to run it
  }
}

export interface VersionOptions {
  json?: boolean;
}

export async function runVersion(opts: VersionOptions, output: Output): Promise<number> {
  if (!opts.json) {
    output.out(VERSION);
    return 0;
  }
  output.out(JSON.stringify(
    {
      version: VERSION,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      revision: await gitRevision(),
    },
    null,
    2,
  ));
  return 0;
}

export function versionCommand(output: Output, done: (code: number) => void) {
  return new Command("version")
    .description("Print litewarden's version (--json: also Deno's and the git revision).")
    .option("--json", "print the version, Deno's version and the git revision as JSON")
    // `litewarden --json version`: the top-level --json counts too.
    .action(async (_opts, cmd: Command) => done(await runVersion(cmd.optsWithGlobals(), output)));
}
