import { usageError } from "../errors.ts";

/** `--parallelism N`, shared by every command that downloads: 1…64 parallel requests. */
export function parseParallelism(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw usageError(`invalid --parallelism ${value}: expected 1…64`);
  }
  return n;
}
