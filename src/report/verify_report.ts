import type { Check } from "../checks/check.ts";
import type { AppReport } from "../apps/app_report.ts";
import type { VaultFilesResult } from "../apps/vaultwarden/files_check.ts";
import type { LivePosition } from "../replica/heartbeat.ts";
import { describePointAt, pointJson } from "../replica/restore_point.ts";
import type { RestorePoint } from "../replica/restore_point.ts";
import { formatAge } from "../lib/format.ts";

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
  /** The companion's heartbeat, when the replica has one (README: verify, freshness). */
  heartbeat?: {
    time: Date;
    final: boolean;
    position: LivePosition | null;
    /** How long the replica has lacked the live position (0: it holds it); null: unknown. */
    lagSeconds: number | null;
  };
  /** With several replicas: each one's verdict and restore point (this report shows the worst). */
  replicas?: ReplicaVerdict[];
  /** The files layer's counts, when it ran (a Vaultwarden point, or `--data-dir`). */
  files?: VaultFilesResult["files"];
}

/** One replica's outcome in a verify of a database with several replicas. */
export interface ReplicaVerdict {
  location: string;
  format: VerifyResult["format"];
  exitCode: number;
  restorePoint: RestorePoint | null;
  /** The ids of its failed checks. */
  failed: string[];
}

/** The verdict of one of several replicas, taken from its own result. */
export function replicaVerdict(r: VerifyResult): ReplicaVerdict {
  return {
    location: r.location ?? r.subject,
    format: r.format,
    exitCode: r.exitCode,
    restorePoint: r.restorePoint,
    failed: r.checks.filter((c) => c.status === "fail").map((c) => c.id),
  };
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
    // Only when the files layer ran: counts and sizes of attachment and send bodies, never names.
    ...(r.files && { files: r.files }),
    // Only with a heartbeat in the replica (the companion's): the document is unchanged otherwise.
    ...(r.heartbeat && {
      heartbeat: {
        time: r.heartbeat.time.toISOString(),
        ageSeconds: Math.round((now.getTime() - r.heartbeat.time.getTime()) / 1000),
        final: r.heartbeat.final,
        position: r.heartbeat.position,
        lagSeconds: r.heartbeat.lagSeconds === null ? null : Math.round(r.heartbeat.lagSeconds),
      },
    }),
    seconds: Math.round(r.seconds * 1000) / 1000,
    ...(r.replicas && {
      replicas: r.replicas.map((v) => ({
        location: v.location,
        ok: v.exitCode === 0,
        exitCode: v.exitCode,
        format: v.format,
        restorePoint: pointJson(v.restorePoint ?? undefined, now),
        failedChecks: v.failed,
      })),
    }),
  };
}

/** "2026-11-20T09:00:00Z (generation … index 00000003, 2h 5m old)". */
function describePoint(p: RestorePoint, now: Date): string {
  return describePointAt(p, `${formatAge(now.getTime() - p.time.getTime())} old`);
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
  if (r.restorePoint) parts.push(`restore point ${describePoint(r.restorePoint, now)}`);
  if (r.app) {
    const rel = r.app.releases
      ? r.app.releases.min === r.app.releases.max
        ? r.app.releases.min
        : `${r.app.releases.min} – ${r.app.releases.max}`
      : "unknown release";
    parts.push(`${r.app.name} ${rel}`);
  }
  const lines = [parts.join("; ")];
  for (const v of r.replicas ?? []) {
    const verdict = v.exitCode === 0
      ? "OK"
      : `FAILED (exit ${v.exitCode})${v.failed.length > 0 ? `: ${v.failed.join(", ")}` : ""}`;
    const point = v.restorePoint
      ? `restore point ${describePoint(v.restorePoint, now)}`
      : "no restore point";
    lines.push(`  replica ${v.location}: ${verdict}; ${point}`);
  }
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
