/**
 * Litestream spells long flags with one dash (`-config`, `-if-replica-exists`). Accepting those
 * spellings lets an entrypoint line written for `litestream restore` work by changing only the
 * program name. Only the listed names are rewritten, so short flags like `-o` keep working.
 */
const LITESTREAM_LONG_FLAGS = new Set([
  "config",
  "if-replica-exists",
  "if-db-not-exists",
  "timestamp",
  "index",
  "txid",
  "generation",
  "parallelism",
  "replica",
  "force",
  "dry-run",
  "json",
]);

export function normalizeArgv(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const m = /^-([a-z][a-z-]+)(=.*)?$/.exec(a);
    if (m && LITESTREAM_LONG_FLAGS.has(m[1])) out.push(`--${m[1]}${m[2] ?? ""}`);
    else out.push(a);
  }
  return out;
}
