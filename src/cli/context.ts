import { exitCodeOf, LitewardenError, typedOsError } from "../errors.ts";
import type { ProgressSink } from "../report/progress.ts";
import { redact } from "../report/redact.ts";

/** Where a command writes: stdout for results, stderr for diagnostics; both redacted. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  isTTY: boolean;
  /** Progress bars (stderr); without one a command shows none. */
  progress?: ProgressSink;
}

const encoder = new TextEncoder();

export const consoleOutput: Output = {
  out: (t) => writeAll(Deno.stdout, redact(t) + "\n"),
  err: (t) => writeAll(Deno.stderr, redact(t) + "\n"),
  get isTTY() {
    return Deno.stdout.isTerminal();
  },
  progress: {
    get isTerminal() {
      return Deno.stderr.isTerminal();
    },
    write: (t) => writeAll(Deno.stderr, t),
  },
};

function writeAll(w: { writeSync(p: Uint8Array): number }, text: string): void {
  const data = encoder.encode(text);
  let at = 0;
  while (at < data.length) at += w.writeSync(data.subarray(at));
}

/** Turns any thrown value into one stderr line (and a JSON document with --json) and an exit code. */
export function reportError(thrown: unknown, output: Output, json: boolean): number {
  const err = typedOsError(thrown);
  const code = exitCodeOf(err);
  let message: string;
  if (err instanceof LitewardenError) {
    message = err.message;
  } else {
    message = `unexpected error: ${err instanceof Error ? err.message : String(err)}` +
      " (set LITEWARDEN_DEBUG=1 for details; please report it)";
    if (Deno.env.get("LITEWARDEN_DEBUG") && err instanceof Error && err.stack) {
      output.err(err.stack);
    }
  }
  if (json) output.out(JSON.stringify({ ok: false, exitCode: code, error: message }, null, 2));
  output.err(`litewarden: ${message}`);
  return code;
}
