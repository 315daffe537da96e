import { usageError } from "../errors.ts";

/**
 * The one parser for numeric flags (`--parallelism`, `--keys`, `--keep-*`): decimal digits only,
 * within `min`…`max`. Anything else (a sign, a fraction, an exponent, 20 digits that would reach
 * SQLite as a float) is a usage error naming the flag and the range.
 */
export function parseWholeNumber(value: string, flag: string, min: number, max: number): number {
  const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`invalid ${flag} ${value}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** `--parallelism N`, shared by every command that downloads: 1…64 parallel requests. */
export function parseParallelism(value: string): number {
  return parseWholeNumber(value, "--parallelism", 1, 64);
}
