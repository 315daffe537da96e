/** Runs the CLI in-process the way `main.ts` does and captures what it prints. */
import { run } from "../../src/cli/program.ts";
import type { Output } from "../../src/cli/context.ts";
import { redact } from "../../src/report/redact.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = {
    out: (t) => out.push(redact(t)),
    err: (t) => err.push(redact(t)),
    isTTY: false,
  };
  const code = await run(args, output);
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
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
