import { ExitCode } from "../errors.ts";
import type { ExitCodeValue } from "../errors.ts";

export type CheckStatus = "pass" | "warn" | "fail" | "skip";

/** One finding of `verify`: a stable id, a status and a one-line message. */
export interface Check {
  /** Stable dotted id, e.g. `chain.wal-contiguous`, `db.integrity`, `app.schema`. */
  id: string;
  status: CheckStatus;
  message: string;
  /** Exit code this check maps to when it fails (defaults by layer, see `exitCodeFor`). */
  exitCode?: ExitCodeValue;
}

export const pass = (id: string, message: string): Check => ({ id, status: "pass", message });
export const warn = (id: string, message: string): Check => ({ id, status: "warn", message });
export const skip = (id: string, message: string): Check => ({ id, status: "skip", message });
export const fail = (id: string, message: string, exitCode: ExitCodeValue): Check => ({
  id,
  status: "fail",
  message,
  exitCode,
});

/** Most severe first: without storage or a backup nothing else can be judged. */
const SEVERITY: ExitCodeValue[] = [
  ExitCode.usage,
  ExitCode.storage,
  ExitCode.noBackup,
  ExitCode.damaged,
  ExitCode.unhealthy,
  ExitCode.appCheck,
  ExitCode.stale,
  ExitCode.refused,
  ExitCode.unexpected,
];

/** The exit code of a verify run: the most severe failed check's code, else 0. */
export function exitCodeFor(checks: Check[]): ExitCodeValue {
  return worstExitCode(
    checks.filter((c) => c.status === "fail").map((c) => c.exitCode ?? ExitCode.unexpected),
  );
}

/** The most severe of several exit codes (0 when all are 0). */
export function worstExitCode(codes: number[]): ExitCodeValue {
  let best: ExitCodeValue = ExitCode.ok;
  let rank = SEVERITY.length;
  for (const code of codes) {
    if (code === ExitCode.ok) continue;
    const r = SEVERITY.indexOf(code as ExitCodeValue);
    if (r >= 0 && r < rank) {
      rank = r;
      best = code as ExitCodeValue;
    }
  }
  return best;
}
