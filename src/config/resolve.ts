/**
 * The TARGET argument of every command → replica targets, as Litestream's commands take it:
 * a replica URL, or a database path looked up in litestream.yml (LITESTREAM-FORMATS §5).
 */
import { LitewardenError, UsageError } from "../errors.ts";
import { type Env, expandPath, stripSqlitePrefix } from "./expand.ts";
import { type LitestreamConfig, loadLitestreamConfig } from "./litestream_yml.ts";
import type { ReplicaTarget, UnusableReplica } from "./target.ts";
import { listForMessage } from "../lib/message_list.ts";
import { parseReplicaUrl } from "./url.ts";

export const DEFAULT_CONFIG_PATH = "/etc/litestream.yml";

export interface ResolvedTarget {
  source: "url" | "config";
  /** Config form: the database the replicas belong to (restore's default output). */
  dbPath?: string;
  /** The replicas litewarden can open (URL form: exactly one), each with `dbPath` in config form. */
  replicas: ReplicaTarget[];
  /** Config form: absolute path of the config file used. */
  configPath?: string;
  /**
   * Config form: this database's replicas that cannot be opened (unsupported backend, invalid
   * settings). Present only when there are some; `selectReplicas` reports them by name.
   */
  unusable?: UnusableReplica[];
}

export interface ResolveOptions {
  /** `--config PATH`. */
  configPath?: string;
  env: Env;
  cwd: string;
  /** Value of `$PID` in the config; default `Deno.pid`. */
  pid?: number;
  /** False = Litestream's `-no-expand-env`. */
  expandEnv?: boolean;
}

/** A URL argument: anything with `://` except a v0.5 `sqlite://` database path. */
function isUrlArg(arg: string): boolean {
  return arg.includes("://") && stripSqlitePrefix(arg) === arg;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

/**
 * Resolves `arg` (a replica URL, a database path, or nothing) to replica targets.
 * All failures are `LitewardenError` exit 2 with a message saying what to pass instead.
 */
export async function resolveTarget(
  arg: string | undefined,
  opts: ResolveOptions,
): Promise<ResolvedTarget> {
  const { env, cwd } = opts;
  if (arg !== undefined && isUrlArg(arg)) {
    if (opts.configPath !== undefined) {
      throw new UsageError("use either a replica URL or --config, not both");
    }
    return { source: "url", replicas: [parseReplicaUrl(arg, env, { cwd })] };
  }
  if (arg === "") {
    throw new UsageError("empty database path; pass a database path or a replica URL");
  }

  const fromEnv = opts.configPath === undefined && !!env.LITESTREAM_CONFIG;
  const configArg = opts.configPath ?? (env.LITESTREAM_CONFIG || DEFAULT_CONFIG_PATH);
  const isDefault = opts.configPath === undefined && !fromEnv;
  const configPath = expandPath(configArg, cwd, env, "config path");

  let config: LitestreamConfig;
  try {
    config = await loadLitestreamConfig(configPath, env, {
      cwd,
      pid: opts.pid,
      expandEnv: opts.expandEnv,
    });
  } catch (err) {
    if (err instanceof LitewardenError && !(await exists(configPath))) {
      if (isDefault && arg === undefined) {
        throw new UsageError(
          "no replica given: pass a replica URL (s3://bucket/prefix, file:///dir) " +
            "or a database path with --config",
        );
      }
      const via = fromEnv ? " (from $LITESTREAM_CONFIG)" : isDefault ? "" : " (from --config)";
      throw new UsageError(
        `config file ${configPath}${via} not found; pass --config PATH or a replica URL`,
      );
    }
    throw err;
  }

  const db = pickDb(config, arg, cwd, env);
  checkNames(db.path, [...db.replicas, ...db.unusable], config.path);
  if (db.replicas.length === 0) {
    if (db.unusable.length > 0) {
      const more = db.unusable.length > 1
        ? ` (and ${db.unusable.length - 1} more unusable replica${
          db.unusable.length > 2 ? "s" : ""
        })`
        : "";
      throw new UsageError(db.unusable[0].message + more);
    }
    throw new UsageError(`database ${db.path} has no replica configured in ${config.path}`);
  }
  const resolved: ResolvedTarget = {
    source: "config",
    dbPath: db.path,
    replicas: db.replicas.map((r) => ({ ...r, dbPath: db.path })),
    configPath: config.path,
  };
  if (db.unusable.length > 0) resolved.unusable = db.unusable;
  return resolved;
}

function listDbs(config: LitestreamConfig): string {
  const paths = config.dbs.map((d) => d.path);
  const dirs = config.dirs.map((d) => `dir ${d.dir} (pattern ${d.pattern}, not supported yet)`);
  const all = [...paths, ...dirs];
  return listForMessage(all);
}

function dirUnsupported(
  config: LitestreamConfig,
  d: { dir: string; pattern: string },
  what: string,
) {
  return new UsageError(
    `${what} is configured in ${config.path} through dir: ${d.dir} (pattern ${d.pattern}); ` +
      "litewarden does not support directory entries yet: pass the replica URL instead",
  );
}

function pickDb(config: LitestreamConfig, arg: string | undefined, cwd: string, env: Env) {
  if (arg === undefined) {
    if (config.dbs.length === 1 && config.dirs.length === 0) return config.dbs[0];
    if (config.dbs.length === 0 && config.dirs.length === 1) {
      throw dirUnsupported(config, config.dirs[0], "the only database entry");
    }
    throw new UsageError(
      `${config.path} configures several databases; name one: ${listDbs(config)}`,
    );
  }
  const dbPath = expandPath(stripSqlitePrefix(arg), cwd, env, "database path");
  const db = config.dbs.find((d) => d.path === dbPath);
  if (db) return db;
  const dir = config.dirs.find((d) => dbPath.startsWith(d.dir.endsWith("/") ? d.dir : d.dir + "/"));
  if (dir) throw dirUnsupported(config, dir, `database ${dbPath}`);
  throw new UsageError(
    `database ${dbPath} not found in ${config.path}; configured databases: ${listDbs(config)}`,
  );
}

/** Replica names must be unique per database (Litestream v0.3: "duplicate replica name"). */
function checkNames(dbPath: string, replicas: { name: string }[], file: string): void {
  const seen = new Set<string>();
  for (const r of replicas) {
    if (seen.has(r.name)) {
      throw new UsageError(
        `database ${dbPath} in ${file} has two replicas named ${r.name}; give each one a distinct name: key`,
      );
    }
    seen.add(r.name);
  }
}

/**
 * The replicas a command works on: all usable ones, or the one named by `--replica NAME`. Naming
 * an unusable replica reports why it cannot be used (e.g. "replica type gcs is not supported…").
 */
export function selectReplicas(resolved: ResolvedTarget, name?: string): ReplicaTarget[] {
  if (name === undefined) return resolved.replicas;
  const picked = resolved.replicas.filter((r) => r.name === name);
  if (picked.length > 0) return picked;
  const unusable = resolved.unusable?.find((r) => r.name === name);
  if (unusable) throw new UsageError(unusable.message);
  const names = [...resolved.replicas, ...(resolved.unusable ?? [])].map((r) => r.name);
  const where = resolved.dbPath ? ` for ${resolved.dbPath}` : "";
  throw new UsageError(`no replica named ${name}${where}; replicas: ${listForMessage(names)}`);
}
