/**
 * litestream.yml, v0.3 and v0.5 schemas (LITESTREAM-FORMATS §5). Only what locating replicas
 * needs is read; every other key is ignored, as Litestream ignores unknown keys.
 *
 * Errors in the file's structure (not YAML, not a mapping, no `dbs`, a db without `path`, a value
 * of the wrong kind) fail the load (exit 2). A replica litewarden cannot open (unsupported type,
 * settings Litestream would reject) does not: it is kept as an `UnusableReplica` and reported only
 * when that replica or its database is asked for, so the other databases stay usable.
 */
import { LitewardenError, PermissionError, UsageError } from "../errors.ts";
import { type Env, expandConfigText, expandPath, stripSqlitePrefix } from "./expand.ts";
import { buildAbsTarget } from "./abs.ts";
import type { AgeSettings, ReplicaTarget, UnusableReplica } from "./target.ts";
import {
  buildS3Target,
  buildSftpTarget,
  fileUrlPath,
  gcsBucketPath,
  isUrl,
  replicaTypeFromUrl,
  type S3Settings,
  safeUrl,
  type SftpSettings,
  UNSUPPORTED_TYPES,
  unsupportedTypeMessage,
} from "./url.ts";
import { parseYaml, type YamlDocument, type YamlMap, type YamlValue } from "./yaml.ts";

export interface LitestreamDb {
  /** Absolute database path (`~/` expanded, `sqlite://` stripped), matched exactly. */
  path: string;
  /** The replicas litewarden can open, in config order, each with `dbPath` set. */
  replicas: ReplicaTarget[];
  /** Replicas it cannot open, with the reason (see `UnusableReplica`). */
  unusable: UnusableReplica[];
  /** Line of the entry in the config file. */
  line?: number;
}

/** A v0.5 directory entry (`dir` + `pattern`): not supported yet, kept to say so clearly. */
export interface LitestreamDirEntry {
  dir: string;
  pattern: string;
  line?: number;
}

export interface LitestreamConfig {
  /** Absolute path of the config file. */
  path: string;
  dbs: LitestreamDb[];
  dirs: LitestreamDirEntry[];
}

export interface ConfigOptions {
  /** Base for relative paths; default `Deno.cwd()`. */
  cwd?: string;
  /** Value of `$PID` (v0.5 maps it to the process id); default `Deno.pid`. */
  pid?: number;
  /** Litestream's `-no-expand-env` when false; default true. */
  expandEnv?: boolean;
}

/** Reads and parses a config file. A missing file is exit 2 with a hint. */
export async function loadLitestreamConfig(
  path: string,
  env: Env,
  opts: ConfigOptions = {},
): Promise<LitestreamConfig> {
  const cwd = opts.cwd ?? Deno.cwd();
  const abs = expandPath(path, cwd, env, "config path");
  const text = await readConfigText(abs);
  return parseLitestreamConfig(text, abs, env, { ...opts, cwd });
}

/** The config file's text; exit 2 when it is missing, unreadable or not UTF-8. */
export async function readConfigText(abs: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(abs);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new UsageError(`config file ${abs} not found; pass --config PATH or a replica URL`);
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new PermissionError(abs, `cannot read config file ${abs}: permission denied`, {
        cause: err,
      });
    }
    const reason = err instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new UsageError(`cannot read config file ${abs}: ${reason}`, { cause: err });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new UsageError(`config file ${abs} is not UTF-8 text`);
  }
}

/** Parses config text; `path` (absolute) is used in messages and as the config's identity. */
export function parseLitestreamConfig(
  text: string,
  path: string,
  env: Env,
  opts: ConfigOptions = {},
): LitestreamConfig {
  const cwd = opts.cwd ?? Deno.cwd();
  const unset = new Set<string>();
  const expanded = opts.expandEnv === false
    ? text
    : expandConfigText(text, env, opts.pid ?? Deno.pid, unset);
  const doc = parseYaml(expanded, path);
  const hint = unsetHint(unset);
  let config: LitestreamConfig;
  try {
    config = new ConfigReader(doc, path, env, cwd).read();
  } catch (err) {
    if (err instanceof UsageError && hint) throw new UsageError(err.message + hint);
    throw err;
  }
  if (hint) {
    for (const db of config.dbs) {
      for (const u of db.unusable) if (u.kind === "invalid") u.message += hint;
    }
  }
  return config;
}

/** Unset variables the config names are the likely cause of a config error: name them. */
function unsetHint(unset: Set<string>): string {
  if (unset.size === 0) return "";
  const names = [...unset].map((n) => `\${${n}}`);
  return `; the config uses ${names.join(", ")}, ${
    names.length === 1 ? "which is" : "which are"
  } not set in the environment: set ${names.length === 1 ? "it" : "them"}`;
}

const BOOL_TRUE = ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"];
const BOOL_FALSE = ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"];

function isMap(v: YamlValue | undefined): v is YamlMap {
  return v !== null && v !== undefined && typeof v === "object" && !Array.isArray(v);
}

function get(map: YamlMap, key: string): YamlValue | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

class ConfigReader {
  constructor(
    private readonly doc: YamlDocument,
    private readonly file: string,
    private readonly env: Env,
    private readonly cwd: string,
  ) {}

  private fail(what: string, line: number | undefined): LitewardenError {
    return new UsageError(`invalid config ${this.file}: ${what}${line ? ` (line ${line})` : ""}`);
  }

  /** A text value (Go string field): null/absent → undefined; a list or mapping → error. */
  private str(map: YamlMap, key: string, label: string): string | undefined {
    const v = get(map, key);
    if (v === null || v === undefined) return undefined;
    if (typeof v !== "string") {
      throw this.fail(`${label}${key} must be a text value`, this.doc.lineOf(map, key));
    }
    return v;
  }

  /** A Go yaml.v2 bool (true/false, yes/no, on/off, y/n). The value is never echoed. */
  private bool(map: YamlMap, key: string, label: string): boolean | undefined {
    const v = get(map, key);
    if (v === null || v === undefined) return undefined;
    if (typeof v === "string") {
      if (BOOL_TRUE.includes(v)) return true;
      if (BOOL_FALSE.includes(v)) return false;
    }
    throw this.fail(`${label}${key} must be true or false`, this.doc.lineOf(map, key));
  }

  /** S3 keys of a replica, or (`global`) the top-level defaults, which have no `path`. */
  private s3Settings(map: YamlMap, label: string, global = false): S3Settings {
    return {
      bucket: this.str(map, "bucket", label),
      path: global ? undefined : this.str(map, "path", label),
      region: this.str(map, "region", label),
      endpoint: this.str(map, "endpoint", label),
      forcePathStyle: this.bool(map, "force-path-style", label),
      skipVerify: this.bool(map, "skip-verify", label),
      accessKeyId: this.str(map, "access-key-id", label),
      secretAccessKey: this.str(map, "secret-access-key", label),
    };
  }

  /** SFTP keys of a replica (read only for sftp replicas: their `path` is a remote path). */
  private sftpSettings(map: YamlMap, label: string): SftpSettings {
    return {
      host: this.str(map, "host", label),
      user: this.str(map, "user", label),
      password: this.str(map, "password", label),
      keyPath: this.str(map, "key-path", label),
      path: this.str(map, "path", label),
      hostKey: this.str(map, "host-key", label),
    };
  }

  /**
   * `age: {identities: [...], recipients: [...]}` (v0.3 encryption, §2.9), kept as texts: the keys
   * are parsed and checked when the replica is opened, so a bad key in another replica's entry
   * does not stop this one. Undefined when the replica's `age:` sets nothing.
   */
  private ageSettings(map: YamlMap, label: string): AgeSettings | undefined {
    const age = get(map, "age");
    if (age === null || age === undefined) return undefined;
    if (!isMap(age)) throw this.fail(`${label}age must be a mapping`, this.doc.lineOf(map, "age"));
    const texts = (key: "identities" | "recipients") => {
      const v = get(age, key);
      if (v === null || v === undefined) return [];
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
        throw this.fail(
          `${label}age.${key} must be a list of text values`,
          this.doc.lineOf(age, key),
        );
      }
      return (v as string[]).map((text, i) => ({
        text,
        source: `age.${key} entry #${i + 1} of ${this.file}${
          this.doc.lineOf(v, i) ? ` (line ${this.doc.lineOf(v, i)})` : ""
        }`,
      }));
    };
    const settings = {
      identities: texts("identities"),
      recipients: texts("recipients"),
      unknownKeys: Object.keys(age).filter((k) => k !== "identities" && k !== "recipients"),
    };
    // `age: {recipients: []}` configures nothing: Litestream writes plaintext and expects it.
    const empty = settings.identities.length + settings.recipients.length +
        settings.unknownKeys.length === 0;
    return empty ? undefined : settings;
  }

  read(): LitestreamConfig {
    const root = this.doc.value;
    if (root === null) {
      throw new UsageError(`config file ${this.file} is empty; it needs a dbs: list`);
    }
    if (!isMap(root)) {
      throw this.fail("the top level must be a mapping with a dbs: list", 1);
    }
    const defaults = this.s3Settings(root, "", true);
    const dbsValue = get(root, "dbs");
    if (dbsValue === null || dbsValue === undefined) {
      throw new UsageError(`config file ${this.file} has no dbs: list; it configures no database`);
    }
    if (!Array.isArray(dbsValue)) {
      throw this.fail("dbs must be a list", this.doc.lineOf(root, "dbs"));
    }
    if (dbsValue.length === 0) {
      throw this.fail("dbs is empty; it configures no database", this.doc.lineOf(root, "dbs"));
    }
    const config: LitestreamConfig = { path: this.file, dbs: [], dirs: [] };
    dbsValue.forEach((entry, i) => {
      const line = this.doc.lineOf(dbsValue, i);
      const label = `dbs entry #${i + 1}: `;
      if (!isMap(entry)) throw this.fail(`dbs entry #${i + 1} must be a mapping`, line);
      const rawPath = this.str(entry, "path", label);
      const dir = this.str(entry, "dir", label);
      if (rawPath && dir) throw this.fail(`${label}cannot specify both path and dir`, line);
      if (dir) {
        const pattern = this.str(entry, "pattern", label);
        if (!pattern) throw this.fail(`${label}pattern is required with dir`, line);
        config.dirs.push({ dir: expandPath(dir, this.cwd, this.env, "dir"), pattern, line });
        return;
      }
      if (!rawPath) throw this.fail(`dbs entry #${i + 1} has no path`, line);
      const dbPath = expandPath(stripSqlitePrefix(rawPath), this.cwd, this.env, "database path");
      config.dbs.push(this.readDb(entry, dbPath, defaults, line, label));
    });
    return config;
  }

  private readDb(
    entry: YamlMap,
    dbPath: string,
    defaults: S3Settings,
    line: number | undefined,
    label: string,
  ): LitestreamDb {
    const db: LitestreamDb = { path: dbPath, replicas: [], unusable: [], line };
    const single = get(entry, "replica");
    const list = get(entry, "replicas");
    const hasSingle = single !== null && single !== undefined;
    const hasList = list !== null && list !== undefined;
    if (hasSingle && hasList) {
      throw this.fail(`database ${dbPath}: cannot specify both replica and replicas`, line);
    }
    const maps: { map: YamlMap; label: string; line?: number }[] = [];
    if (hasSingle) {
      if (!isMap(single)) {
        throw this.fail(
          `database ${dbPath}: replica must be a mapping`,
          this.doc.lineOf(entry, "replica"),
        );
      }
      maps.push({ map: single, label: `${label}replica.`, line: this.doc.lineOf(single) });
    }
    if (hasList) {
      if (!Array.isArray(list)) {
        throw this.fail(
          `database ${dbPath}: replicas must be a list`,
          this.doc.lineOf(entry, "replicas"),
        );
      }
      list.forEach((r, j) => {
        const rLine = this.doc.lineOf(list, j);
        if (!isMap(r)) {
          throw this.fail(`database ${dbPath}: replicas entry #${j + 1} must be a mapping`, rLine);
        }
        maps.push({ map: r, label: `${label}replicas entry #${j + 1}: `, line: rLine });
      });
    }
    for (const { map, label: rLabel, line: rLine } of maps) {
      const r = this.readReplica(map, rLabel, rLine, dbPath, defaults);
      if ("kind" in r) db.unusable.push(r);
      else db.replicas.push(r);
    }
    return db;
  }

  private readReplica(
    map: YamlMap,
    label: string,
    line: number | undefined,
    dbPath: string,
    defaults: S3Settings,
  ): ReplicaTarget | UnusableReplica {
    // Structure first: a wrong kind of value fails the load, like Go's yaml.Unmarshal.
    const url = this.str(map, "url", label) || undefined;
    const typeField = this.str(map, "type", label) || undefined;
    const nameField = this.str(map, "name", label) || undefined;
    const settings = this.s3Settings(map, label);
    const absKeys = {
      accountName: this.str(map, "account-name", label),
      accountKey: this.str(map, "account-key", label),
    };
    const type = (url !== undefined ? replicaTypeFromUrl(url) : undefined) ?? typeField ?? "file";
    const name = nameField ?? type;
    const where = `for replica ${name} of ${dbPath} in ${this.file}${
      line ? ` (line ${line})` : ""
    }`;
    const unusable = (kind: UnusableReplica["kind"], message: string): UnusableReplica => ({
      kind,
      name,
      type,
      dbPath,
      message,
    });

    if (settings.path !== undefined && isUrl(settings.path)) {
      return unusable(
        "invalid",
        `replica path cannot be a url; use url: instead (${safeUrl(settings.path)}) ${where}`,
      );
    }
    const at = `${this.file}${line ? ` line ${line}` : ""}`;
    if (UNSUPPORTED_TYPES.includes(type)) {
      const gcs = url !== undefined
        ? gcsBucketPath(url)
        : { bucket: settings.bucket, path: settings.path };
      return unusable(
        "unsupported",
        `${unsupportedTypeMessage(type, gcs)}; see ${at} (database ${dbPath})`,
      );
    }
    const age = this.ageSettings(map, label);
    try {
      if (url !== undefined && !isUrl(url)) {
        throw new UsageError(`replica url needs a scheme (s3://…, file://…) ${where}`);
      }
      if (type === "file") {
        if (url !== undefined && settings.path) {
          throw new UsageError(`cannot specify url and path for a file replica ${where}`);
        }
        const raw = url !== undefined ? undefined : settings.path;
        if (url === undefined && !raw) throw new UsageError(`file replica path required ${where}`);
        const path = url !== undefined
          ? fileUrlPath(url, this.cwd, this.env)
          : expandPath(raw ?? "", this.cwd, this.env, "replica path");
        return { type: "file", name, path, dbPath, ...(age && { age }) };
      }
      if (type === "s3") {
        const target = buildS3Target(
          { name, url, replica: settings, defaults, where },
          this.env,
        );
        target.dbPath = dbPath;
        if (age) target.age = age;
        return target;
      }
      if (type === "sftp") {
        const sftp = this.sftpSettings(map, label);
        const target = buildSftpTarget(
          { name, url, replica: sftp, where, cwd: this.cwd },
          this.env,
        );
        target.dbPath = dbPath;
        if (age) target.age = age;
        return target;
      }
      if (type === "abs") {
        const target = buildAbsTarget(
          {
            name,
            url,
            replica: { ...settings, ...absKeys },
            where,
          },
          this.env,
        );
        target.dbPath = dbPath;
        if (age) target.age = age;
        return target;
      }
      return unusable(
        "invalid",
        `unknown replica type ${JSON.stringify(type)} ${where} (supported: file, s3, sftp, abs)`,
      );
    } catch (err) {
      if (err instanceof LitewardenError) {
        const located = err.message.includes(this.file) ? err.message : `${err.message} ${where}`;
        return unusable("invalid", located);
      }
      throw err;
    }
  }
}
