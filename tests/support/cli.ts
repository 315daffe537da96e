/** Runs the CLI in-process the way `main.ts` does and captures what it prints. */
import { run } from "../../src/cli/program.ts";
import type { Output } from "../../src/cli/context.ts";
import { redact } from "../../src/report/redact.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** What was drawn as progress (only with `terminal`: progress shows on terminals only). */
  progress: string;
}

/** `terminal`: stderr is a terminal, so progress bars are drawn (and captured). */
export async function runCli(
  args: string[],
  opts: { terminal?: boolean } = {},
): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const progress: string[] = [];
  const output: Output = {
    out: (t) => out.push(redact(t)),
    err: (t) => err.push(redact(t)),
    isTTY: false,
    progress: { isTerminal: !!opts.terminal, write: (t) => progress.push(t) },
  };
  // Progress is off under NO_PROGRESS, which some test files set for the whole process.
  const noProgress = Deno.env.get("NO_PROGRESS");
  if (opts.terminal) Deno.env.delete("NO_PROGRESS");
  try {
    const code = await run(args, output);
    return { code, stdout: out.join("\n"), stderr: err.join("\n"), progress: progress.join("") };
  } finally {
    if (opts.terminal && noProgress !== undefined) Deno.env.set("NO_PROGRESS", noProgress);
  }
}

/** Runs the CLI and parses its stdout as JSON. */
export async function runCliJson<T = Record<string, unknown>>(
  args: string[],
): Promise<CliResult & { json: T }> {
  const r = await runCli(args);
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { ...r, json };
}
