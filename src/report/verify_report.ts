import type { Check } from "../checks/check.ts";
import type { AppReport } from "../apps/app_report.ts";
import type { RestorePoint } from "../replica/summary.ts";
import { formatAge, formatTime } from "../lib/format.ts";
import { pointJson } from "./list_report.ts";

/** Everything one verify run found, for one database or file. */
export interface VerifyResult {
  /** What was verified: a database path, a replica location, or a file. */
  subject: string;
  location: string | null;
  format: "v0.3" | "v0.5" | "file" | null;
  restorePoint: RestorePoint | null;
  checks: Check[];
  app: AppReport | null;
  exitCode: number;
  seconds: number;
}

/** The stable `verify --json` document for one result (documented in README.md). */
export function verifyJson(r: VerifyResult, now: Date) {
  return {
    ok: r.exitCode === 0,
    exitCode: r.exitCode,
    command: "verify",
    subject: r.subject,
    location: r.location,
    format: r.format,
    restorePoint: pointJson(r.restorePoint ?? undefined, now),
    checks: r.checks.map(({ id, status, message, objects }) => ({
      id,
      status,
      message,
      ...(objects && { objects }),
    })),
    app: r.app,
    seconds: Math.round(r.seconds * 1000) / 1000,
  };
}

const MARK: Record<Check["status"], string> = {
  pass: "ok  ",
  warn: "WARN",
  fail: "FAIL",
  skip: "skip",
};

/** Human report: the verdict line first, then one line per check. */
export function verifyText(r: VerifyResult, now: Date): string {
  const failed = r.checks.filter((c) => c.status === "fail").length;
  const warned = r.checks.filter((c) => c.status === "warn").length;
  const verdict = r.exitCode === 0
    ? warned > 0 ? `OK with ${warned} warning(s)` : "OK"
    : `FAILED (exit ${r.exitCode}): ${failed} check(s) failed`;
  const parts = [`${verdict} — ${r.subject}`];
  if (r.restorePoint) {
    const p = r.restorePoint;
    const what = p.format === "v0.3"
      ? `generation ${p.generation} index ${p.index}`
      : `TXID ${p.txid}`;
    parts.push(
      `restore point ${formatTime(p.time)} (${what}, ${
        formatAge(now.getTime() - p.time.getTime())
      } old)`,
    );
  }
  if (r.app) {
    const rel = r.app.releases
      ? r.app.releases.min === r.app.releases.max
        ? r.app.releases.min
        : `${r.app.releases.min} – ${r.app.releases.max}`
      : "unknown release";
    parts.push(`${r.app.name} ${rel}`);
  }
  const lines = [parts.join("; ")];
  const idWidth = Math.max(...r.checks.map((c) => c.id.length), 4);
  for (const c of r.checks) {
    lines.push(`  ${MARK[c.status]}  ${c.id.padEnd(idWidth)}  ${c.message}`);
  }
  if (r.app && Object.keys(r.app.rowCounts).length > 0) {
    lines.push(
      `  rows: ${Object.entries(r.app.rowCounts).map(([t, n]) => `${t} ${n}`).join(", ")}${
        r.app.lastActivity ? `; last activity ${r.app.lastActivity}` : ""
      }`,
    );
  }
  return lines.join("\n");
}
