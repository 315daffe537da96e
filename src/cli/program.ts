import { Command, CommanderError } from "commander";
import { EXIT_CODE_BY_KIND, ExitCode } from "../errors.ts";
import { normalizeArgv } from "./argv.ts";
import { consoleOutput, reportError } from "./context.ts";
import type { Output } from "./context.ts";
import { listCommand } from "./list.ts";
import { markCommand } from "./mark.ts";
import { companionCommand } from "./companion.ts";
import { restoreCommand } from "./restore.ts";
import { verifyCommand } from "./verify.ts";
import { pruneCommand } from "./prune.ts";
import { snapshotDiffCommand } from "./snapshot_diff.ts";
import { recoverCommand } from "./recover.ts";
import { withStorageScope } from "../storage/open.ts";
import { runVersion, versionCommand } from "./version.ts";

/** Builds the CLI, runs one command and returns its exit code (never calls Deno.exit). */
export async function run(args: string[], output: Output = consoleOutput): Promise<number> {
  let code: number = ExitCode.ok;
  const done = (c: number) => {
    code = c;
  };
  const outputConfig = {
    writeOut: (s: string) => output.out(s.trimEnd()),
    writeErr: (s: string) => output.err(s.trimEnd()),
    // Commander's own usage errors become the same one-line shape as ours.
    outputError: (s: string, write: (s: string) => void) =>
      write(
        `litewarden: ${s.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")} (see --help)`,
      ),
  };
  const program = new Command("litewarden")
    .description(
      "Stands guard over Litestream replicas of SQLite databases: list, verify, restore, prune, mark, companion.",
    )
    .option("--version", "print the version (with --json: also Deno's and the git revision)")
    .option("--json", "with --version: as JSON")
    // Top-level options only before the command: `verify --json` stays verify's.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput(outputConfig)
    .showSuggestionAfterError();
  program.addCommand(listCommand(output, done));
  program.addCommand(restoreCommand(output, done));
  program.addCommand(verifyCommand(output, done));
  program.addCommand(pruneCommand(output, done));
  program.addCommand(markCommand(output, done));
  program.addCommand(companionCommand(output, done));
  program.addCommand(snapshotDiffCommand(output, done));
  program.addCommand(recoverCommand(output, done));
  program.addCommand(versionCommand(output, done));
  program.action(async () => {
    const opts = program.opts();
    if (!opts.version) program.help({ error: true });
    done(await runVersion({ json: opts.json }, output));
  });
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput(outputConfig).showSuggestionAfterError();
  }
  const argv = normalizeArgv(args);
  try {
    await withStorageScope(() => program.parseAsync(argv, { from: "user" }));
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return ExitCode.ok; // --help, --version
      return EXIT_CODE_BY_KIND.usage; // commander has printed the one-line reason
    }
    return reportError(err, output, argv.includes("--json"));
  }
}
