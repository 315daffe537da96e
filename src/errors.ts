/**
 * The one error model. Lower layers throw typed errors that say what happened (an `ErrorKind`
 * plus the object key, path or storage operation involved); only this module maps a kind to an
 * exit code (`EXIT_CODE_BY_KIND`), and the CLI reports with it. No module below `src/cli` names
 * an exit code.
 */

/**
 * Exit codes shared by every command (documented in README.md). Scripts and the container
 * entrypoint branch on these, so they never change meaning.
 */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  noBackup: 3,
  storage: 4,
  damaged: 5,
  unhealthy: 6,
  appCheck: 7,
  stale: 8,
  refused: 9,
  diskFull: 10,
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What went wrong, independent of how a command reports it. */
export type ErrorKind =
  /** Bad flags, arguments or config. */
  | "usage"
  /** A local path (output, metrics file, temp dir, file replica) may not be read or written. */
  | "permission"
  /** Nothing restorable where the target points (empty prefix, point outside the window). */
  | "noBackup"
  /** The storage could not be reached or refused the request. */
  | "storage"
  /** A replica object is missing or corrupt, or the chain is broken. */
  | "damaged"
  /** A restored or local database failed SQLite's checks. */
  | "unhealthy"
  /** The application (Vaultwarden) check failed. */
  | "appCheck"
  /** The newest restorable point is older than allowed. */
  | "stale"
  /** An existing file would have been overwritten. */
  | "refused"
  /** The local disk is full, or the file size limit (ulimit -f) was reached. */
  | "diskFull"
  /** SIGINT or SIGTERM. */
  | "interrupted"
  /** A bug. */
  | "unexpected";

/** The one table from error kind to exit code (README: exit codes). */
export const EXIT_CODE_BY_KIND: Readonly<Record<ErrorKind, ExitCodeValue>> = {
  usage: ExitCode.usage,
  permission: ExitCode.usage,
  noBackup: ExitCode.noBackup,
  storage: ExitCode.storage,
  damaged: ExitCode.damaged,
  unhealthy: ExitCode.unhealthy,
  appCheck: ExitCode.appCheck,
  stale: ExitCode.stale,
  refused: ExitCode.refused,
  diskFull: ExitCode.diskFull,
  interrupted: ExitCode.interrupted,
  unexpected: ExitCode.unexpected,
};

export const ERROR_KINDS = Object.keys(EXIT_CODE_BY_KIND) as ErrorKind[];

/**
 * Most severe first, for a run that found several problems: an interrupted run has no verdict;
 * without a usable config, local disk or storage nothing else can be judged; then what was found
 * in the replica, the database, the application, its age.
 */
const SEVERITY: readonly ExitCodeValue[] = [
  ExitCode.interrupted,
  ExitCode.usage,
  ExitCode.diskFull,
  ExitCode.storage,
  ExitCode.noBackup,
  ExitCode.damaged,
  ExitCode.unhealthy,
  ExitCode.appCheck,
  ExitCode.stale,
  ExitCode.refused,
  ExitCode.unexpected,
];

/** The exit code of an error: a `LitewardenError`'s kind through the table, anything else 1. */
export function exitCodeOf(err: unknown): ExitCodeValue {
  return err instanceof LitewardenError ? EXIT_CODE_BY_KIND[err.kind] : ExitCode.unexpected;
}

/** The most severe of several exit codes (0 when all are 0). */
export function worstExitCode(codes: readonly number[]): ExitCodeValue {
  let best: ExitCodeValue = ExitCode.ok;
  let rank = SEVERITY.length;
  for (const code of codes) {
    if (code === ExitCode.ok) continue;
    const r = SEVERITY.indexOf(code as ExitCodeValue);
    if (r >= 0 && r < rank) {
      rank = r;
      best = code as ExitCodeValue;
    }
  }
  return best;
}

/** The exit code of a run whose failures are these kinds (0 for none). */
export function worstExitCodeOfKinds(kinds: readonly ErrorKind[]): ExitCodeValue {
  return worstExitCode(kinds.map((k) => EXIT_CODE_BY_KIND[k]));
}

/**
 * An expected failure: printed as one line (`litewarden: <message>`) without a stack trace, and
 * mapped to its exit code by kind. `message` says what is wrong and what to do about it.
 */
export class LitewardenError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LitewardenError";
    this.kind = kind;
  }
  /** Looked up in `EXIT_CODE_BY_KIND`; for reporting only, never for control flow. */
  get exitCode(): ExitCodeValue {
    return EXIT_CODE_BY_KIND[this.kind];
  }
}

/** Bad flags, arguments or config. */
export class UsageError extends LitewardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("usage", message, options);
    this.name = "UsageError";
  }
}

/** Nothing restorable at `location` (or not at the point asked for). */
export class NoBackupError extends LitewardenError {
  constructor(message: string, readonly location?: string) {
    super("noBackup", message);
    this.name = "NoBackupError";
  }
}

/** A replica object (`key`, when one is to blame) is missing or corrupt, or the chain is broken. */
export class DamagedError extends LitewardenError {
  constructor(message: string, readonly key?: string, options?: { cause?: unknown }) {
    super("damaged", message, options);
    this.name = "DamagedError";
  }
}

/** A listed replica object has gone missing since (deleted by someone else, or never there). */
export class MissingObjectError extends DamagedError {
  constructor(message: string, key: string, options?: { cause?: unknown }) {
    super(message, key, options);
    this.name = "MissingObjectError";
  }
}

/** What a storage failure was doing when it failed. */
export interface StorageFailure {
  op: "list" | "get" | "put" | "delete" | "open";
  /** Key relative to the replica root, or the local path, when one request is to blame. */
  key?: string;
  /** HTTP status, when the backend speaks HTTP. */
  status?: number;
  /** The provider's error code (`AccessDenied`, `NoSuchKey`, …) or the OS error name. */
  code?: string;
  /** Requests made, retries included. */
  attempts?: number;
}

/** The storage could not be reached or refused a request. */
export class StorageError extends LitewardenError {
  readonly op: StorageFailure["op"] | undefined;
  readonly key: string | undefined;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly attempts: number | undefined;
  constructor(message: string, failure?: StorageFailure, options?: { cause?: unknown }) {
    super("storage", message, options);
    this.name = "StorageError";
    this.op = failure?.op;
    this.key = failure?.key;
    this.status = failure?.status;
    this.code = failure?.code;
    this.attempts = failure?.attempts;
  }
}

/** An existing file at `path` would have been overwritten. */
export class RefusedError extends LitewardenError {
  constructor(message: string, readonly path?: string) {
    super("refused", message);
    this.name = "RefusedError";
  }
}

/** A local path may not be read or written (EACCES, EPERM). */
export class PermissionError extends LitewardenError {
  constructor(readonly path: string, message: string, options?: { cause?: unknown }) {
    super("permission", message, options);
    this.name = "PermissionError";
  }
}

/** The disk holding `dir` is full (ENOSPC), or the file size limit was reached (EFBIG). */
export class DiskFullError extends LitewardenError {
  constructor(readonly dir: string, message: string, options?: { cause?: unknown }) {
    super("diskFull", message, options);
    this.name = "DiskFullError";
  }
}

/** SIGINT or SIGTERM arrived. */
export class InterruptedError extends LitewardenError {
  constructor(message = "interrupted") {
    super("interrupted", message);
    this.name = "InterruptedError";
  }
}

/** Whether an OS error is ENOSPC (no space left) or EFBIG (file size limit). */
function isNoSpace(err: unknown): "space" | "size" | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (code === "ENOSPC" || /\(os error 28\)/.test(err.message)) return "space";
  if (code === "EFBIG" || /\(os error 27\)/.test(err.message)) return "size";
  return undefined;
}

/**
 * A local filesystem failure on `path` as a typed error: permission denied names the path, a full
 * disk names its directory (and how much was needed, when known). Anything else is returned as
 * it is (a `LitewardenError` already, or a bug to report).
 */
export function localFsError(
  err: unknown,
  path: string,
  opts: { doing?: string; needBytes?: number; hint?: string } = {},
): unknown {
  if (err instanceof LitewardenError) return err;
  const doing = opts.doing ?? "write";
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return new PermissionError(
      path,
      `permission denied: cannot ${doing} ${path}; ${
        opts.hint ?? "run as a user that may, or choose another path"
      }`,
      { cause: err },
    );
  }
  const full = isNoSpace(err);
  if (full) {
    const slash = path.lastIndexOf("/");
    const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
    const need = opts.needBytes !== undefined
      ? `: need about ${opts.needBytes.toLocaleString("en-US")} bytes`
      : "";
    const message = full === "space"
      ? `no space left on ${dir}${need}; ${
        opts.hint ?? "free some space or choose another directory"
      }`
      : `file size limit reached writing ${path}${need}; ${
        opts.hint ?? "raise the limit (ulimit -f) or choose another directory"
      }`;
    return new DiskFullError(dir, message, { cause: err });
  }
  return err;
}

/**
 * A last resort for a filesystem error no layer wrapped: Deno names the path in its message
 * (`… (os error 13): open '/data/x'`), so it can still be reported as a typed error.
 */
export function typedOsError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof LitewardenError) return err;
  const m = /: (\w+) '([^']*)'(?: -> '[^']*')?$/.exec(err.message);
  if (!m) {
    // Writes through an open file name no path; a full disk is still not a bug.
    const full = isNoSpace(err);
    if (!full) return err;
    const message = full === "space"
      ? "no space left on the local disk; free some space or choose another directory"
      : "file size limit reached; raise the limit (ulimit -f) or choose another directory";
    return new DiskFullError("", message, { cause: err });
  }
  const [, op, path] = m;
  if (err instanceof Deno.errors.NotADirectory) {
    return new UsageError(
      `${path}: part of this path is a file, not a directory; give a path in a directory`,
      { cause: err },
    );
  }
  if (op === "mkdir" && err instanceof Deno.errors.AlreadyExists) {
    return new UsageError(`${path} exists and is not a directory; give a path in a directory`, {
      cause: err,
    });
  }
  return localFsError(err, path, { doing: "access" });
}
