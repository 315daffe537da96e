import { Command } from "commander";
import type { OptionValues } from "commander";
import { UsageError } from "../errors.ts";
import { parseDatabaseHeader, SQLITE_HEADER_SIZE } from "../formats/sqlite_header.ts";
import { errorText } from "../lib/sqlite.ts";
import { parsePointSpec } from "../replica/restore_point.ts";
import type { RestoreRequest } from "../replica/restore_point.ts";
import { ON_DAMAGE_ENV, ON_DAMAGE_RESTORE_NEWEST_INTACT } from "../replica/marker.ts";

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

/** True for `1`, `true`, `yes` (any case): how the container's switches are read. */
export function envFlag(name: string): boolean {
  return /^(1|true|yes)$/i.test(Deno.env.get(name)?.trim() ?? "");
}

/** Whether the operator accepted losing data via the environment (see `ON_DAMAGE_ENV`). */
export function lossAcceptedByEnv(): boolean {
  return Deno.env.get(ON_DAMAGE_ENV)?.trim() === ON_DAMAGE_RESTORE_NEWEST_INTACT;
}

/**
 * The point-choosing flags of `restore` and `verify` (`verb`: what the command does with the
 * point), read by `parsePointFlags`.
 */
export function addPointOptions<A extends unknown[], O extends OptionValues>(
  command: Command<A, O>,
  verb: string,
) {
  return command
    .option("--timestamp <time>", `${verb} the state at this RFC 3339 time`)
    .option("--index <hex>", `v0.3: ${verb} through the end of this WAL index (hex)`)
    .option(
      "--offset <hex>",
      `v0.3, with --index: ${verb} through the WAL segment at this offset of the index (hex)`,
    )
    .option("--txid <hex>", `v0.5: ${verb} up to this TXID (16 hex digits)`)
    .option("--generation <id>", `v0.3: ${verb} from this generation`);
}

/** A point named on the command line: a restore point of the replica, or a local database file. */
export type PointArg = { restore: RestoreRequest } | { file: string };

/** `--from`/`--to`/`--at`: latest, an RFC 3339 time, index:HEX, txid:HEX or file:PATH. */
export function parsePointArg(
  spec: string,
  generation: string | undefined,
  flag: string,
): PointArg {
  if (spec.startsWith("file:")) {
    const path = spec.slice("file:".length);
    let header: Uint8Array | undefined;
    try {
      if (path !== "" && Deno.statSync(path).isFile) {
        using file = Deno.openSync(path, { read: true });
        header = new Uint8Array(SQLITE_HEADER_SIZE);
        header = header.subarray(0, file.readSync(header) ?? 0);
      }
    } catch {
      // Missing or unreadable: the same answer below.
    }
    if (!header) {
      throw new UsageError(
        `${flag} ${spec} is not a readable file; give the path of a local SQLite database`,
      );
    }
    try {
      parseDatabaseHeader(header);
    } catch (err) {
      throw new UsageError(`${flag} ${spec}: ${errorText(err)}; give a SQLite database file`);
    }
    return { file: path };
  }
  return { restore: parsePointSpec(spec, generation, flag) };
}
