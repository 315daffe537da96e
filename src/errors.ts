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
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An expected failure: printed as one line (`litewarden: <message>`) without a stack trace,
 * and mapped to its exit code. `message` says what is wrong and what to do about it.
 */
export class LitewardenError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(exitCode: ExitCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LitewardenError";
    this.exitCode = exitCode;
  }
}

export const usageError = (msg: string) => new LitewardenError(ExitCode.usage, msg);
export const noBackupError = (msg: string) => new LitewardenError(ExitCode.noBackup, msg);
export const storageError = (msg: string, cause?: unknown) =>
  new LitewardenError(ExitCode.storage, msg, { cause });
export const damagedError = (msg: string) => new LitewardenError(ExitCode.damaged, msg);
export const refusedError = (msg: string) => new LitewardenError(ExitCode.refused, msg);
