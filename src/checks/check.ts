import { EXIT_CODE_BY_KIND, worstExitCode } from "../errors.ts";
import type { ErrorKind, ExitCodeValue } from "../errors.ts";

export type CheckStatus = "pass" | "warn" | "fail" | "skip";

/** One finding of `verify`: a stable id, a status and a one-line message. */
export interface Check {
  /** Stable dotted id, e.g. `chain.wal-contiguous`, `db.integrity`, `app.schema`. */
  id: string;
  status: CheckStatus;
  message: string;
  /** A failed check's exit code: its error kind through the one table in errors.ts. */
  exitCode?: ExitCodeValue;
  /** Every object the finding is about, when the message names only a few (JSON `objects`). */
  objects?: string[];
}

export const pass = (id: string, message: string): Check => ({ id, status: "pass", message });
export const warn = (id: string, message: string): Check => ({ id, status: "warn", message });
export const skip = (id: string, message: string): Check => ({ id, status: "skip", message });
export const fail = (id: string, message: string, kind: ErrorKind): Check => ({
  id,
  status: "fail",
  message,
  exitCode: EXIT_CODE_BY_KIND[kind],
});

/** The exit code of a verify run: the most severe failed check's code, else 0. */
export function exitCodeFor(checks: Check[]): ExitCodeValue {
  return worstExitCode(
    checks.filter((c) => c.status === "fail").map((c) =>
      c.exitCode ?? EXIT_CODE_BY_KIND.unexpected
    ),
  );
}

export { worstExitCode };
