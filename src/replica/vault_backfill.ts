/**
 * The companion's one-time backfill record: the first start on a vault that already has files
 * uploads all of them, and `verify` shows how far it got until it is done. One small object,
 * `<base>backfill.json` beside the files (`.litewarden/files/backfill.json`), rewritten while the
 * backfill runs and once more when it is done. Counts and bytes only, never a path or a name.
 */
import { DamagedError } from "../errors.ts";
import { readAll } from "../storage/storage.ts";
import type { VaultStore } from "./vault_files.ts";

/** The record's key relative to the files' base. */
export const BACKFILL_KEY = "backfill.json";

export interface BackfillState {
  version: 1;
  /** When the backfill started (ISO 8601). */
  started: string;
  /** When the record was last written. */
  updated: string;
  /** When every file present at the start was stored; null while it runs. */
  done: string | null;
  files: { total: number; uploaded: number };
  bytes: { total: number; uploaded: number };
}

/** Writes the record (the companion, after each batch and once when done). */
export async function writeBackfill(store: VaultStore, state: BackfillState): Promise<void> {
  await store.storage.put(
    store.base + BACKFILL_KEY,
    new TextEncoder().encode(JSON.stringify(state)),
  );
}

/** The record, or undefined when there is none. A record that does not parse is damage. */
export async function readBackfill(store: VaultStore): Promise<BackfillState | undefined> {
  const key = store.base + BACKFILL_KEY;
  let listed = false;
  for await (const o of store.storage.list(key)) {
    if (o.key === key) listed = true;
  }
  if (!listed) return undefined;
  const text = new TextDecoder().decode(await readAll(await store.storage.get(key)));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DamagedError(`${key} in ${store.storage.location} is not JSON`, key);
  }
  if (!isBackfillState(value)) {
    throw new DamagedError(
      `${key} in ${store.storage.location} is not a backfill record (version 1)`,
      key,
    );
  }
  return value;
}

function isBackfillState(v: unknown): v is BackfillState {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  const counts = (c: unknown) =>
    typeof c === "object" && c !== null &&
    Number.isSafeInteger((c as Record<string, unknown>).total) &&
    Number.isSafeInteger((c as Record<string, unknown>).uploaded);
  const time = (t: unknown) => typeof t === "string" && !Number.isNaN(Date.parse(t));
  return r.version === 1 && time(r.started) && time(r.updated) &&
    (r.done === null || time(r.done)) && counts(r.files) && counts(r.bytes);
}
