import { UsageError } from "../errors.ts";
import { formatAge, formatTime } from "../lib/format.ts";
import type { RestorePoint } from "../replica/summary.ts";
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

/** Layer 6: the newest restorable point must be younger than `--max-age`. */
export function freshnessCheck(
  newest: RestorePoint | undefined,
  maxAgeMs: number | undefined,
  now: Date,
): Check {
  if (!newest) return skip("freshness", "no restorable point to judge");
  const age = now.getTime() - newest.time.getTime();
  const text = `newest restorable point ${formatTime(newest.time)} is ${formatAge(age)} old`;
  if (maxAgeMs === undefined) return pass("freshness", `${text} (no --max-age given)`);
  if (age > maxAgeMs) {
    return fail(
      "freshness",
      `${text}, older than --max-age ${formatAge(maxAgeMs)}: is Litestream still replicating?`,
      "stale",
    );
  }
  return pass("freshness", `${text} (limit ${formatAge(maxAgeMs)})`);
}
