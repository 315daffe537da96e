/**
 * Test harness around the real Litestream v0.3.13 binary (npm `@flydotio/litestream-linux-x64`,
 * pinned in test_deps/deno.jsonc as `litestream-bin`; installing with that config puts it under
 * test_deps/node_modules).
 *
 * Behaviour of v0.3.13 this harness relies on (checked against the binary and its source):
 * - `replicate` logs (Go slog, text to stdout by default) `msg="wal segment written"` with
 *   `db=<abs path> replica=<name> position=<gen>/<idx8 hex>:<offset decimal> sz=<decompressed
 *   bytes>` after each WAL segment object is stored, so `offset + sz` is the replicated end of that
 *   WAL index. `waitForSync()` compares that with the committed end of the live `-wal` file.
 * - SIGTERM/SIGINT make it run a final database sync and a final replica sync before exiting,
 *   so everything committed before `stop()` reaches the replica.
 * - Config paths are made absolute against the process's working directory; `$VAR`/`${VAR}` are
 *   expanded in the raw config text (unset → empty) unless `-no-expand-env` is passed.
 */
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { openWalDatabase, readWalState } from "./sqlite_writer.ts";

// ---------------------------------------------------------------------------------------------
// Locating the binary

let cachedPath: string | undefined;

/**
 * Absolute path of the Litestream v0.3.13 binary installed by `deno install`. `$LITESTREAM_BIN`
 * overrides the lookup. Throws when the binary cannot be found.
 */
export function litestreamPath(): string {
  if (cachedPath) return cachedPath;
  const candidates: string[] = [];
  const fromEnv = Deno.env.get("LITESTREAM_BIN");
  if (fromEnv) candidates.push(fromEnv);
  try {
    const pkg = import.meta.resolve("litestream-bin/package.json");
    if (pkg.startsWith("file:")) {
      candidates.push(join(dirname(new URL(pkg).pathname), "litestream"));
    }
  } catch {
    // Not resolvable (not installed): fall through to scanning node_modules.
  }
  // The test config (test_deps/deno.jsonc) installs into test_deps/node_modules.
  for (const rel of ["../../test_deps/node_modules/", "../../node_modules/"]) {
    const nodeModules = new URL(rel, import.meta.url).pathname;
    candidates.push(join(nodeModules, "@flydotio/litestream-linux-x64/litestream"));
    try {
      for (const entry of Deno.readDirSync(join(nodeModules, ".deno"))) {
        if (entry.name.startsWith("@flydotio+litestream-linux-x64@")) {
          candidates.push(
            join(
              nodeModules,
              ".deno",
              entry.name,
              "node_modules/@flydotio/litestream-linux-x64/litestream",
            ),
          );
        }
      }
    } catch {
      // No node_modules/.deno directory here.
    }
  }
  for (const candidate of candidates) {
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return (cachedPath = candidate);
    } catch {
      // Try the next candidate.
    }
  }
  throw new Error(
    "Litestream binary not found (npm @flydotio/litestream-linux-x64, import `litestream-bin`): " +
      "run `deno install --config test_deps/deno.jsonc` first. Looked at:\n  " +
      candidates.join("\n  "),
  );
}

// ---------------------------------------------------------------------------------------------
// Running one-shot commands

/** Result of a finished Litestream command. */
export interface RunResult {
  code: number;
  success: boolean;
  /** Set when the process was killed by a signal (e.g. on timeout). */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link runLitestream}. */
export interface RunOptions {
  cwd?: string;
  /** Extra environment variables (added to the inherited environment). */
  env?: Record<string, string>;
  /** Kill the process after this many milliseconds. Default 60000. */
  timeoutMs?: number;
}

/** Runs `litestream <args…>` to completion and captures its output. */
export async function runLitestream(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 60_000);
  try {
    const out = await new Deno.Command(litestreamPath(), {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      success: out.success,
      signal: out.signal,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `litestream restore <args…>` (the oracle). Examples:
 * `litestreamRestore(["-o", out, fileReplicaUrl(replicaDir)])`,
 * `litestreamRestore(["-config", cfg, "-o", out, dbPath])`. v0.3.13 logs to stderr.
 */
export function litestreamRestore(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runLitestream(["restore", ...args], opts);
}

/** `file://` URL of a (file replica) directory, as `litestream restore` expects. */
export function fileReplicaUrl(dir: string): string {
  return pathToFileURL(resolve(dir)).href;
}

// ---------------------------------------------------------------------------------------------
// Writing litestream.yml (v0.3 schema, LITESTREAM-FORMATS §5.2)

/** A Go duration string (`"100ms"`, `"24h"`) or a number of milliseconds. */
export type Duration = string | number;

/** One replica of a database. File replicas need `path` (or a `file://` url). */
export interface ReplicaConfig {
  /** `file` (default), `s3`, `gcs`, `abs`, `sftp`; inferred by Litestream from `url`. */
  type?: "file" | "s3" | "gcs" | "abs" | "sftp";
  /** Replica name; Litestream defaults it to the type. Must be unique per database. */
  name?: string;
  /** Replica URL (`s3://bucket/prefix`, `file:///abs/dir`); not together with path/bucket. */
  url?: string;
  /** File replica: directory. S3: key prefix inside the bucket. */
  path?: string;
  bucket?: string;
  region?: string;
  /** S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (implies path style in v0.3). */
  endpoint?: string;
  forcePathStyle?: boolean;
  skipVerify?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Test default: 100ms (Litestream's own default is 1s). */
  syncInterval?: Duration;
  snapshotInterval?: Duration;
  retention?: Duration;
  retentionCheckInterval?: Duration;
  validationInterval?: Duration;
  /** More keys written verbatim (YAML names, e.g. `{ age: { recipients: [...] } }`). */
  extra?: Record<string, unknown>;
}

/** One `dbs[]` entry. */
export interface DbConfig {
  /** Database path; relative paths are resolved by Litestream against its working directory. */
  path: string;
  metaPath?: string;
  /** Test default: 100ms (Litestream's own default is 1s). */
  monitorInterval?: Duration;
  /** Default 1m: checkpoint when the db file is older than this and the WAL has ≥ 2 frames. */
  checkpointInterval?: Duration;
  /** Default 1000: PASSIVE checkpoint (→ new WAL index) once the WAL index holds this many frames. */
  minCheckpointPageCount?: number;
  /** Default 10000: RESTART checkpoint threshold. */
  maxCheckpointPageCount?: number;
  replicas: ReplicaConfig[];
  /** More keys written verbatim (YAML names). */
  extra?: Record<string, unknown>;
}

/** Top-level options of {@link writeLitestreamConfig}. */
export interface ConfigOptions {
  /** File name inside `dir`. Default `litestream.yml`. */
  fileName?: string;
  /**
   * Fill in test-friendly defaults: `monitor-interval: 100ms` per database and
   * `sync-interval: 100ms` per replica when not given. Default true.
   */
  testDefaults?: boolean;
  /** Global S3 credentials (copied by Litestream into replicas lacking them). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `logging:` block. `waitForSync()` needs level info or debug (the default is info). */
  logging?: {
    level?: "debug" | "info" | "warn" | "error";
    type?: "text" | "json";
    stderr?: boolean;
  };
  /** More top-level keys written verbatim. */
  extra?: Record<string, unknown>;
}

/** The YAML text of a v0.3 litestream.yml for `dbs` (see {@link writeLitestreamConfig}). */
export function litestreamConfigYaml(dbs: DbConfig[], opts: ConfigOptions = {}): string {
  const testDefaults = opts.testDefaults ?? true;
  const doc: Record<string, unknown> = {};
  set(doc, "access-key-id", opts.accessKeyId);
  set(doc, "secret-access-key", opts.secretAccessKey);
  if (opts.logging) doc.logging = { ...opts.logging };
  Object.assign(doc, opts.extra);
  doc.dbs = dbs.map((db) => {
    const out: Record<string, unknown> = { path: db.path };
    set(out, "meta-path", db.metaPath);
    set(out, "monitor-interval", duration(db.monitorInterval ?? (testDefaults ? 100 : undefined)));
    set(out, "checkpoint-interval", duration(db.checkpointInterval));
    set(out, "min-checkpoint-page-count", db.minCheckpointPageCount);
    set(out, "max-checkpoint-page-count", db.maxCheckpointPageCount);
    Object.assign(out, db.extra);
    out.replicas = db.replicas.map((r) => {
      if (r.url && (r.path || r.bucket)) {
        throw new Error(
          "a replica takes either url or path/bucket, not both (Litestream rejects it)",
        );
      }
      const rep: Record<string, unknown> = {};
      set(rep, "name", r.name);
      set(rep, "type", r.type);
      set(rep, "url", r.url);
      set(rep, "path", r.path);
      set(rep, "bucket", r.bucket);
      set(rep, "region", r.region);
      set(rep, "endpoint", r.endpoint);
      set(rep, "force-path-style", r.forcePathStyle);
      set(rep, "skip-verify", r.skipVerify);
      set(rep, "access-key-id", r.accessKeyId);
      set(rep, "secret-access-key", r.secretAccessKey);
      set(rep, "sync-interval", duration(r.syncInterval ?? (testDefaults ? 100 : undefined)));
      set(rep, "snapshot-interval", duration(r.snapshotInterval));
      set(rep, "retention", duration(r.retention));
      set(rep, "retention-check-interval", duration(r.retentionCheckInterval));
      set(rep, "validation-interval", duration(r.validationInterval));
      Object.assign(rep, r.extra);
      return rep;
    });
    return out;
  });
  return stringifyYaml(doc);
}

/**
 * Writes `<dir>/litestream.yml` (v0.3 schema) and returns its path. Keys are the camelCase forms of
 * the YAML names (`syncInterval` → `sync-interval`, `minCheckpointPageCount` →
 * `min-checkpoint-page-count`, `forcePathStyle` → `force-path-style`, …). Avoid `$` in values:
 * Litestream expands environment variables in the raw text.
 */
export async function writeLitestreamConfig(
  dir: string,
  dbs: DbConfig[],
  opts: ConfigOptions = {},
): Promise<string> {
  const path = join(dir, opts.fileName ?? "litestream.yml");
  await Deno.writeTextFile(path, litestreamConfigYaml(dbs, opts));
  return path;
}

function set(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) obj[key] = value;
}

function duration(d: Duration | undefined): string | undefined {
  return typeof d === "number" ? `${d}ms` : d;
}

// ---------------------------------------------------------------------------------------------
// Log parsing

/** One log record of Litestream (text `key=value` or JSON lines). */
export type LogRecord = Record<string, string>;

/** Parses Litestream's slog output (text or JSON handler); lines that are neither are skipped. */
export function parseLitestreamLog(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "") continue;
    if (trimmed.startsWith("{")) {
      try {
        const obj: unknown = JSON.parse(trimmed);
        if (obj && typeof obj === "object") {
          const rec: LogRecord = {};
          for (const [k, v] of Object.entries(obj)) {
            rec[k] = typeof v === "string" ? v : JSON.stringify(v);
          }
          records.push(rec);
        }
      } catch {
        // Not JSON after all.
      }
      continue;
    }
    const rec: LogRecord = {};
    let any = false;
    for (const m of trimmed.matchAll(/([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      rec[m[1]] = m[2].startsWith('"') ? unquote(m[2]) : m[2];
      any = true;
    }
    if (any && rec.msg !== undefined) records.push(rec);
  }
  return records;
}

function unquote(s: string): string {
  try {
    return JSON.parse(s);
  } catch {
    return s.slice(1, -1);
  }
}

/** Replicated end (`offset + sz`) per `db \0 replica \0 generation/index8`, from a log. */
function replicatedEnds(log: string, into: Map<string, number>): void {
  for (const rec of parseLitestreamLog(log)) {
    if (rec.msg !== "wal segment written") continue;
    const m = /^([0-9a-f]{16})\/([0-9a-f]{8}):(\d+)$/.exec(rec.position ?? "");
    const sz = Number(rec.sz);
    if (!m || !Number.isFinite(sz)) continue;
    const key = `${rec.db}\0${rec.replica}\0${m[1]}/${m[2]}`;
    const end = Number(m[3]) + sz;
    if (end > (into.get(key) ?? -1)) into.set(key, end);
  }
}

/**
 * Replicated positions seen by every Replicator of this process, so that `waitForSync()` after a
 * restart without new writes (Litestream then logs nothing) still knows what the replica holds.
 */
const knownEnds = new Map<string, number>();

// ---------------------------------------------------------------------------------------------
// Running `litestream replicate`

/** Options for {@link startReplicate}. */
export interface StartOptions {
  /** Working directory (relative config paths resolve against it). Default: Deno.cwd(). */
  cwd?: string;
  /** Extra environment variables for the child (added to the inherited environment). */
  env?: Record<string, string>;
  /** Extra arguments after `replicate -config <path>`, e.g. `["-no-expand-env"]`. */
  extraArgs?: string[];
  /** How long to wait for the "replicating to" lines. Default 10000 ms. */
  readyTimeoutMs?: number;
  /** Default timeout of `waitForSync()`. Default 15000 ms. */
  syncTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 10000 ms. */
  stopTimeoutMs?: number;
}

/** A running `litestream replicate` process. */
export interface Replicator extends AsyncDisposable {
  readonly pid: number;
  readonly configPath: string;
  /**
   * Resolves once every replica of every configured database holds all frames committed to the
   * live WAL so far (and no Litestream checkpoint is pending: see {@link DbConfig}
   * `minCheckpointPageCount`). Rejects on timeout or when the process has exited.
   */
  waitForSync(opts?: { timeoutMs?: number }): Promise<void>;
  /** SIGTERM (Litestream flushes to the replicas), wait for exit; SIGKILL after a timeout. */
  stop(): Promise<Deno.CommandStatus>;
  /** Everything the process wrote to stdout and stderr so far. */
  log(): string;
  /** Settles when the process has exited. */
  readonly status: Promise<Deno.CommandStatus>;
}

interface WatchedReplica {
  name: string;
}

interface WatchedDb {
  path: string;
  metaPath: string;
  minCheckpointPageCount: number;
  replicas: WatchedReplica[];
}

const running = new Set<Deno.ChildProcess>();
let unloadHookInstalled = false;

function installUnloadHook(): void {
  if (unloadHookInstalled) return;
  unloadHookInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
  });
}

/**
 * Starts `litestream replicate -config <configPath>` and resolves once it has opened the
 * configured databases (its "replicating to" log lines). Always `stop()` it (or use
 * `await using rep = await startReplicate(...)`).
 */
export async function startReplicate(
  configPath: string,
  opts: StartOptions = {},
): Promise<Replicator> {
  const cwd = opts.cwd ?? Deno.cwd();
  const env = { ...Deno.env.toObject(), ...opts.env };
  const extraArgs = opts.extraArgs ?? [];
  const dbs = await readWatchedDbs(
    resolve(cwd, configPath),
    cwd,
    extraArgs.includes("-no-expand-env") ? undefined : env,
  );

  installUnloadHook();
  const child = new Deno.Command(litestreamPath(), {
    args: ["replicate", "-config", configPath, ...extraArgs],
    cwd,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.add(child);

  let logText = "";
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) logText += decoder.decode(chunk, { stream: true });
    logText += decoder.decode();
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => {
    exited = s;
    running.delete(child);
    return s;
  });

  const tail = () => logText.split("\n").slice(-40).join("\n");
  let stopping: Promise<Deno.CommandStatus> | undefined;

  const stop = (): Promise<Deno.CommandStatus> => {
    stopping ??= (async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Exited meanwhile.
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = await Promise.race([
          status.then(() => false),
          new Promise<boolean>((r) =>
            timer = setTimeout(() => r(true), opts.stopTimeoutMs ?? 10_000)
          ),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          try {
            child.kill("SIGKILL");
          } catch {
            // Exited meanwhile.
          }
        }
      }
      const s = await status;
      await pumps;
      replicatedEnds(logText, knownEnds);
      return s;
    })();
    return stopping;
  };

  const waitForSync = async (o: { timeoutMs?: number } = {}): Promise<void> => {
    const timeoutMs = o.timeoutMs ?? opts.syncTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) {
        throw new Error(`litestream exited (code ${exited.code}) before sync:\n${tail()}`);
      }
      const ends = new Map(knownEnds);
      replicatedEnds(logText, ends);
      const pending = await pendingSync(dbs, ends);
      if (pending === undefined) return;
      if (Date.now() > deadline) {
        throw new Error(
          `waitForSync timed out after ${timeoutMs} ms (${pending}); log:\n${tail()}`,
        );
      }
      await sleep(20);
    }
  };

  // Wait until the process is up: one "replicating to" line per replica.
  const replicaCount = dbs.reduce((n, db) => n + db.replicas.length, 0);
  const readyDeadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  for (;;) {
    const records = parseLitestreamLog(logText);
    const ready = records.filter((r) => r.msg === "replicating to").length;
    if (ready >= replicaCount && records.some((r) => r.msg === "litestream")) break;
    if (exited || Date.now() > readyDeadline) {
      const why = exited ? `exited with code ${exited.code}` : "did not become ready";
      await stop();
      throw new Error(`litestream replicate ${why}:\n${logText}`);
    }
    await sleep(10);
  }

  return {
    pid: child.pid,
    configPath,
    waitForSync,
    stop,
    log: () => logText,
    status,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** Why the replicas are not yet in sync, or undefined when they are. */
async function pendingSync(
  dbs: WatchedDb[],
  ends: Map<string, number>,
): Promise<string | undefined> {
  for (const db of dbs) {
    if (!(await exists(db.path))) continue; // Litestream waits for the database to appear.
    const wal = await readWalState(`${db.path}-wal`);
    if (!wal || wal.committedFrames === 0) return `${db.path}: no committed WAL frames yet`;
    let generation: string;
    try {
      generation = (await Deno.readTextFile(join(db.metaPath, "generation"))).trim();
    } catch {
      return `${db.path}: no generation yet`;
    }
    const shadow = await latestShadowWal(join(db.metaPath, "generations", generation, "wal"));
    if (!shadow) return `${db.path}: no shadow WAL yet`;
    if (!equalBytes(shadow.header, wal.header)) {
      return `${db.path}: Litestream has not picked up the current WAL header yet`;
    }
    if (wal.committedFrames >= db.minCheckpointPageCount) {
      return `${db.path}: Litestream checkpoint pending (${wal.committedFrames} frames)`;
    }
    const index = shadow.index.toString(16).padStart(8, "0");
    for (const replica of db.replicas) {
      const end = ends.get(`${db.path}\0${replica.name}\0${generation}/${index}`) ?? 0;
      if (end < wal.committedEnd) {
        return `${db.path} → ${replica.name}: replicated ${generation}/${index} to ${end} of ${wal.committedEnd}`;
      }
    }
  }
  return undefined;
}

async function latestShadowWal(
  dir: string,
): Promise<{ index: number; header: Uint8Array } | undefined> {
  let best: number | undefined;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = /^([0-9a-f]{8})\.wal$/.exec(entry.name);
      if (m && (best === undefined || parseInt(m[1], 16) > best)) best = parseInt(m[1], 16);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  if (best === undefined) return undefined;
  const file = join(dir, `${best.toString(16).padStart(8, "0")}.wal`);
  try {
    using f = await Deno.open(file);
    const header = new Uint8Array(32);
    let n = 0;
    while (n < header.length) {
      const r = await f.read(header.subarray(n));
      if (r === null) return undefined;
      n += r;
    }
    return { index: best, header };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Reads the config the way Litestream does (env expansion, absolute paths, default names). */
async function readWatchedDbs(
  configPath: string,
  cwd: string,
  env: Record<string, string> | undefined,
): Promise<WatchedDb[]> {
  let text = await Deno.readTextFile(configPath);
  if (env) {
    text = text.replace(
      /\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g,
      (_m, braced: string | undefined, bare: string | undefined) => env[braced ?? bare ?? ""] ?? "",
    );
  }
  const doc: unknown = parseYaml(text);
  const dbs = isRecord(doc) && Array.isArray(doc.dbs) ? doc.dbs : [];
  return dbs.filter(isRecord).map((db) => {
    const path = absPath(String(db.path ?? ""), cwd);
    const replicas = Array.isArray(db.replicas) ? db.replicas.filter(isRecord) : [];
    return {
      path,
      metaPath: typeof db["meta-path"] === "string"
        ? absPath(db["meta-path"], cwd)
        : join(dirname(path), `.${basename(path)}-litestream`),
      minCheckpointPageCount: typeof db["min-checkpoint-page-count"] === "number"
        ? db["min-checkpoint-page-count"]
        : 1000,
      replicas: replicas.map((r) => ({ name: replicaName(r) })),
    };
  });
}

function replicaName(r: Record<string, unknown>): string {
  if (typeof r.name === "string" && r.name !== "") return r.name;
  if (typeof r.type === "string" && r.type !== "") return r.type;
  if (typeof r.url === "string") {
    const m = /^([a-z0-9]+):\/\//.exec(r.url);
    if (m) return m[1];
  }
  return "file";
}

function absPath(p: string, cwd: string): string {
  const home = Deno.env.get("HOME");
  if (home && (p === "~" || p.startsWith("~/"))) p = join(home, p.slice(1));
  return resolve(cwd, p);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// Inspecting file replicas

/** Every file below `dir`, as sorted `/`-separated paths relative to `dir`. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for await (const entry of Deno.readDir(rel ? join(dir, rel) : dir)) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(child);
      else out.push(child);
    }
  };
  await walk("");
  return out.sort();
}

/** One v0.3 object of a file replica (names as written by v0.3.5–v0.3.14). */
export interface FileReplicaObject {
  kind: "snapshot" | "wal";
  generation: string;
  index: number;
  /** WAL segments only. */
  offset?: number;
  /** Path relative to the replica directory. */
  key: string;
  /** Compressed size in bytes. */
  size: number;
  /** File mtime (Litestream v0.3's object time). */
  mtime: Date;
}

/**
 * The v0.3 objects of a file replica, sorted by generation name, kind (snapshots first), index and
 * offset. Files not named like v0.3 objects are left out; see {@link listFiles} for everything.
 */
export async function fileReplicaObjects(dir: string): Promise<FileReplicaObject[]> {
  const out: FileReplicaObject[] = [];
  let keys: string[];
  try {
    keys = await listFiles(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  for (const key of keys) {
    const snap = /^generations\/([0-9a-f]{16})\/snapshots\/([0-9a-f]{8})\.snapshot\.lz4$/.exec(key);
    const wal = /^generations\/([0-9a-f]{16})\/wal\/([0-9a-f]{8})_([0-9a-f]{8,16})\.wal\.lz4$/.exec(
      key,
    );
    const m = snap ?? wal;
    if (!m) continue;
    const info = await Deno.stat(join(dir, key));
    out.push({
      kind: snap ? "snapshot" : "wal",
      generation: m[1],
      index: parseInt(m[2], 16),
      ...(wal ? { offset: parseInt(wal[3], 16) } : {}),
      key,
      size: info.size,
      mtime: info.mtime ?? new Date(0),
    });
  }
  return out.sort((a, b) =>
    a.generation.localeCompare(b.generation) || a.kind.localeCompare(b.kind) ||
    a.index - b.index || (a.offset ?? 0) - (b.offset ?? 0)
  );
}

/**
 * A file replica, written by real Litestream, of a database holding `megabytes` MB of random
 * (incompressible) blobs in one transaction: for tests that need a restore to take a moment.
 * Returns the replica directory (`<dir>/replica`).
 */
export async function replicateRandomBlobs(dir: string, megabytes: number): Promise<string> {
  const dbPath = join(dir, "blobs.db");
  const replica = join(dir, "replica");
  const config = await writeLitestreamConfig(
    dir,
    [{ path: dbPath, replicas: [{ path: replica }] }],
    {
      fileName: "blobs-litestream.yml",
    },
  );
  const db = openWalDatabase(dbPath);
  db.exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
  const rep = await startReplicate(config);
  try {
    db.exec("BEGIN");
    const insert = db.prepare("INSERT INTO blobs (b) VALUES (randomblob(1000000))");
    for (let i = 0; i < megabytes; i++) insert.run();
    db.exec("COMMIT");
    await rep.waitForSync({ timeoutMs: 60_000 });
  } finally {
    await rep.stop();
    db.close();
  }
  return replica;
}

/**
 * Sets the mtime (the object time, §2.5) of every v0.3 object of a file replica to whole seconds,
 * `stepMs` apart, in the order Litestream wrote them: generations by their first write, then each
 * generation's snapshot followed by its WAL segments in (index, offset) order. `-timestamp`
 * targets then hit each object exactly. Returns the objects in that order with their new times.
 */
export async function retimeFileReplica(
  dir: string,
  base: Date,
  stepMs = 10_000,
): Promise<(FileReplicaObject & { time: Date })[]> {
  const objects = await fileReplicaObjects(dir);
  const firstWrite = new Map<string, number>();
  for (const o of objects) {
    const t = o.mtime.getTime();
    firstWrite.set(o.generation, Math.min(firstWrite.get(o.generation) ?? t, t));
  }
  objects.sort((a, b) =>
    firstWrite.get(a.generation)! - firstWrite.get(b.generation)! ||
    (a.kind === b.kind ? 0 : a.kind === "snapshot" ? -1 : 1) ||
    a.index - b.index || (a.offset ?? 0) - (b.offset ?? 0)
  );
  const out: (FileReplicaObject & { time: Date })[] = [];
  for (const [i, o] of objects.entries()) {
    const time = new Date(base.getTime() + i * stepMs);
    await Deno.utime(join(dir, o.key), time, time);
    out.push({ ...o, time });
  }
  return out;
}
