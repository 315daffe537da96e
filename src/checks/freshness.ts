import { UsageError } from "../errors.ts";
import { formatAge, formatTime } from "../lib/format.ts";
import { formatIndex } from "../formats/v03_layout.ts";
import type { Heartbeat, Lag } from "../replica/heartbeat.ts";
import type { RestorePoint } from "../replica/restore_point.ts";
import { fail, pass, skip } from "./check.ts";
import type { Check } from "./check.ts";

const MAX_DURATION_MS = 100 * 365.25 * 86_400_000;

/** Parses `90s`, `15m`, `1h`, `2h30m`, `7d` into milliseconds (Go durations plus `d`). */
export function parseDuration(text: string, flag: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
  const units: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
  };
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * units[m[2]];
    consumed += m[0].length;
  }
  // 100 years bounds every duration flag: beyond it a number is a typo, and timers stay exact.
  if (consumed !== text.length || consumed === 0 || !(total <= MAX_DURATION_MS)) {
    throw new UsageError(
      `invalid ${flag} ${text}: use a duration such as 90s, 15m, 1h, 2h30m or 7d`,
    );
  }
  return total;
}

/**
 * Layer 7: the newest restorable point must be younger than `--max-age`, unless `current` says
 * why the replica is current anyway (a live heartbeat whose live position the replica holds: a
 * quiet vault, nothing was written since).
 */
export function freshnessCheck(
  newest: RestorePoint | undefined,
  maxAgeMs: number | undefined,
  now: Date,
  current?: string,
): Check {
  if (!newest) return skip("freshness", "no restorable point to judge");
  const age = now.getTime() - newest.time.getTime();
  const text = `newest restorable point ${formatTime(newest.time)} is ${formatAge(age)} old`;
  if (maxAgeMs === undefined) return pass("freshness", `${text} (no --max-age given)`);
  if (age > maxAgeMs && current !== undefined) {
    return pass(
      "freshness",
      `${text}, older than --max-age ${formatAge(maxAgeMs)}, but ${current}: a quiet database`,
    );
  }
  if (age > maxAgeMs) {
    return fail(
      "freshness",
      `${text}, older than --max-age ${formatAge(maxAgeMs)}: is Litestream still replicating?`,
      "stale",
    );
  }
  return pass("freshness", `${text} (limit ${formatAge(maxAgeMs)})`);
}

/** `--max-heartbeat-age` when not given: three intervals plus a minute of slack. */
export function defaultMaxHeartbeatAgeMs(hb: Heartbeat): number {
  return 3 * hb.intervalSeconds * 1000 + 60_000;
}

/** `--max-lag` when not given. */
export const DEFAULT_MAX_LAG_MS = 5 * 60_000;

/** `freshness.heartbeat`: the companion beside Litestream wrote its heartbeat recently. */
export function heartbeatCheck(
  hb: Heartbeat | undefined,
  maxAgeMs: number | undefined,
  now: Date,
): Check {
  const id = "freshness.heartbeat";
  if (!hb) {
    return skip(id, "no heartbeat in the replica (no `litewarden companion` beside Litestream)");
  }
  const limit = maxAgeMs ?? defaultMaxHeartbeatAgeMs(hb);
  const age = now.getTime() - new Date(hb.time).getTime();
  const text = `heartbeat ${formatTime(new Date(hb.time))} is ${formatAge(Math.max(0, age))} old`;
  if (age > limit) {
    const why = hb.final
      ? "the companion stopped (its parent exited, or it was signalled): is the container down?"
      : "is the companion (and Litestream beside it) still running?";
    return fail(id, `${text}, older than ${formatAge(limit)}: ${why}`, "stale");
  }
  return pass(id, `${text} (limit ${formatAge(limit)}, every ${hb.intervalSeconds}s)`);
}

/** `freshness.lag`: the replica holds the live position the heartbeat names, or is not far off. */
export function lagCheck(
  hb: Heartbeat | undefined,
  lag: Lag | undefined,
  maxLagMs: number | undefined,
): Check {
  const id = "freshness.lag";
  if (!hb || !lag) return skip(id, "no heartbeat: replication lag unknown");
  const p = lag.position;
  if (!p) {
    return skip(id, `the heartbeat names no live position (${hb.positionProblem ?? "unknown"})`);
  }
  // Hex, as every other printed v0.3 point and as `--index` takes it.
  const where = `generation ${p.generation} index ${formatIndex(p.index)} offset ${
    formatIndex(p.offset)
  }`;
  if (lag.holds) return pass(id, `the replica holds the live position (${where}): no lag`);
  const limit = maxLagMs ?? DEFAULT_MAX_LAG_MS;
  const text = `the replica lacks the live position (${where}), behind for at least ${
    formatAge(lag.lagMs)
  }`;
  if (lag.lagMs > limit) {
    return fail(id, `${text}, over --max-lag ${formatAge(limit)}: is Litestream running?`, "stale");
  }
  return pass(id, `${text} (limit ${formatAge(limit)})`);
}
