import { Command } from "commander";
import { UsageError } from "../errors.ts";

/**
 * The one parser for numeric flags (`--parallelism`, `--keys`, `--keep-*`): decimal digits only,
 * within `min`…`max`. Anything else (a sign, a fraction, an exponent, 20 digits that would reach
 * SQLite as a float) is a usage error naming the flag and the range.
 */
export function parseWholeNumber(value: string, flag: string, min: number, max: number): number {
  const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`invalid ${flag} ${value}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** `--parallelism N`, shared by every command that downloads: 1…64 parallel requests. */
export function parseParallelism(value: string): number {
  return parseWholeNumber(value, "--parallelism", 1, 64);
}

/** What a command says about the options every replica command shares. */
export interface ReplicaCommandHelp {
  /** Help for `[target]` (default: a database path from the config, or a replica URL). */
  target?: string;
  /** Help for `--replica` (default: only this replica of the database). */
  replica?: string;
  /** Help for `--json`: what the document holds. */
  json: string;
}

/**
 * A command over one database's replicas: `[target]`, `--config`, `--replica` and `--json`, named
 * and explained the same way in every command (resolved by `resolveCliTarget`).
 */
export function replicaCommand(name: string, description: string, help: ReplicaCommandHelp) {
  return new Command(name)
    .description(description)
    .argument("[target]", help.target ?? "database path from the config, or a replica URL")
    .option(
      "--config <path>",
      "litestream.yml (default: $LITESTREAM_CONFIG or /etc/litestream.yml)",
    )
    .option("--replica <name>", help.replica ?? "only this replica of the database")
    .option("--json", help.json);
}
