import { DamagedError, LitewardenError, NoBackupError } from "../errors.ts";
import { formatAge, formatTime } from "../lib/format.ts";
import { readAll } from "../storage/storage.ts";
import type { Storage } from "../storage/storage.ts";
import { describePoint } from "./restore_point.ts";
import type { RestorePoint } from "./restore_point.ts";

/**
 * A small object under the replica prefix recording that a backup was seen here. Litestream
 * ignores it (it matches neither layout). Its presence turns "no backup found" from a harmless
 * first boot into a lost backup: the container gate then refuses to start on an empty vault.
 */
export const MARKER_PREFIX = ".litewarden/";
export const MARKER_KEY = `${MARKER_PREFIX}replica-seen.json`;

export interface ReplicaMarker {
  firstSeen: string;
  lastSeen: string;
  /** Newest restorable point when last seen (RFC 3339), for the error message. */
  newestPoint: string | null;
}

export async function readMarker(storage: Storage): Promise<ReplicaMarker | undefined> {
  // The exact key as the prefix: a listing of all of .litewarden/ would walk the vault files.
  for await (const obj of storage.list(MARKER_KEY)) {
    if (obj.key !== MARKER_KEY) continue;
    try {
      const text = new TextDecoder().decode(await readAll(await storage.get(MARKER_KEY)));
      const parsed = JSON.parse(text) as Partial<ReplicaMarker>;
      return {
        firstSeen: String(parsed.firstSeen ?? obj.modified.toISOString()),
        lastSeen: String(parsed.lastSeen ?? obj.modified.toISOString()),
        newestPoint: parsed.newestPoint ?? null,
      };
    } catch (err) {
      if (err instanceof LitewardenError) throw err;
      // A marker we cannot parse still proves a backup was seen.
      return {
        firstSeen: obj.modified.toISOString(),
        lastSeen: obj.modified.toISOString(),
        newestPoint: null,
      };
    }
  }
  return undefined;
}

export async function writeMarker(
  storage: Storage,
  previous: ReplicaMarker | undefined,
  newestPoint: Date | undefined,
  now = new Date(),
): Promise<void> {
  const marker: ReplicaMarker = {
    firstSeen: previous?.firstSeen ?? now.toISOString(),
    lastSeen: now.toISOString(),
    newestPoint: newestPoint?.toISOString() ?? previous?.newestPoint ?? null,
  };
  await storage.put(MARKER_KEY, new TextEncoder().encode(JSON.stringify(marker, null, 2) + "\n"));
}

/** The env var that allows a fresh start over a lost backup, like `--allow-fresh-start`. */
export const ALLOW_FRESH_START_ENV = "LITEWARDEN_ALLOW_FRESH_START";

/**
 * The gate's opt-in to start from older data than it saw before: `LITEWARDEN_ON_DAMAGE=`
 * `restore-newest-intact`, like `restore --accept-loss`.
 */
export const ON_DAMAGE_ENV = "LITEWARDEN_ON_DAMAGE";
export const ON_DAMAGE_RESTORE_NEWEST_INTACT = "restore-newest-intact";

/** "last seen 2026-11-20T09:00:00Z, newest restorable point then 2026-11-20T08:59:58Z". */
export function describeMarker(m: ReplicaMarker): string {
  const when = (s: string) => {
    const t = new Date(s);
    return Number.isNaN(t.getTime()) ? s : formatTime(t);
  };
  const newest = m.newestPoint ? `, newest restorable point then ${when(m.newestPoint)}` : "";
  return `last seen ${when(m.lastSeen)}${newest}`;
}

/** The newest point the marker recorded, when it is newer than `point` (a rollback). */
export function rolledBackFrom(
  marker: ReplicaMarker | undefined,
  point: Date,
): Date | undefined {
  const seen = marker?.newestPoint ? new Date(marker.newestPoint) : undefined;
  return seen && !Number.isNaN(seen.getTime()) && point.getTime() < seen.getTime()
    ? seen
    : undefined;
}

/**
 * Writes (or refreshes) the marker after a backup was seen at `point`. Returns the previous marker.
 * When the newest point is older than the one seen before, part of the backup is gone (a deleted
 * generation, a restored bucket): the marker keeps the newer point, so the next start still
 * knows, unless `acceptLoss` (the operator chose to go on from the older point).
 */
export async function refreshMarker(
  storage: Storage,
  point: Date,
  warn: (line: string) => void,
  acceptLoss = false,
): Promise<ReplicaMarker | undefined> {
  const previous = await readMarker(storage);
  const seenBefore = rolledBackFrom(previous, point);
  // An accepted loss was announced by the command that accepted it.
  if (previous && seenBefore && !acceptLoss) {
    warn(
      `litewarden: warning: the newest restorable point at ${storage.location} (${
        formatTime(point)
      }) is older than the one seen there before (${
        describeMarker(previous)
      }): part of the backup is gone; the marker keeps the newer point; check the bucket before trusting this database`,
    );
  }
  await writeMarker(storage, previous, seenBefore && !acceptLoss ? undefined : point);
  return previous;
}

/** The line `mark` and the companion print once a replica is marked. */
export function markedMessage(location: string, point: Date): string {
  return `litewarden: marked ${location}: backup seen (newest restorable point ${
    formatTime(point)
  }); a missing backup there now stops \`restore --if-replica-exists\``;
}

/**
 * The gate's rollback judgement: the newest point is older than the one the marker recorded, so
 * part of the backup vanished (deleted objects, a lifecycle rule, a restored bucket). Starting on
 * it silently would serve older data and hide the loss from every later start: refuse (exit 5)
 * unless the operator accepted the loss (then the returned warning is to be printed). An
 * explicitly requested point is not a rollback (the caller does not ask).
 */
export async function judgeRollback(
  storage: Storage,
  point: RestorePoint,
  acceptLoss: boolean,
): Promise<string | undefined> {
  const marker = await readMarker(storage);
  const seen = rolledBackFrom(marker, point.time);
  if (!marker || !seen) return undefined;
  const span = formatAge(seen.getTime() - point.time.getTime());
  const what = `the newest restorable point at ${storage.location} (${describePoint(point)} (${
    formatTime(point.time)
  })) is older than the one seen there before (${describeMarker(marker)})`;
  if (acceptLoss) {
    return `litewarden: WARNING: ${what}: part of the backup is gone; restoring it anyway and giving up ${span} of changes (${
      formatTime(point.time)
    } to ${formatTime(seen)}), loss accepted`;
  }
  throw new DamagedError(
    `${what}: part of the backup is gone (deleted objects, a lifecycle rule, a restored bucket), ${span} of changes would be lost; refusing to start on older data (check the bucket; to accept the loss pass --accept-loss or set ${ON_DAMAGE_ENV}=${ON_DAMAGE_RESTORE_NEWEST_INTACT})`,
  );
}

/** A replica without a backup, and the marker found there (if a backup was seen before). */
export interface EmptyReplica {
  location: string;
  marker?: ReplicaMarker;
}

/** What the gate does when no replica holds a backup: start fresh (with this line) or refuse. */
export interface MissingBackupVerdict {
  /** The stderr line; the start goes ahead empty (exit 0). */
  line: string;
  searched: string[];
  seenBefore: (ReplicaMarker & { location: string })[];
}

/**
 * No replica holds a backup. A marker turns that from a first boot into a lost backup (or a wrong
 * prefix): refused (exit 3) unless the gate (`ifReplicaExists`) allows a fresh start. Without a
 * marker the gate starts empty; a plain restore has nothing to restore (exit 3).
 */
export function judgeMissingBackup(
  empty: EmptyReplica[],
  how: { ifReplicaExists: boolean; allowFreshStart: boolean; allowedBy: string },
): MissingBackupVerdict {
  const searched = empty.map((e) => e.location);
  const where = searched.join(", ");
  const seen = empty.flatMap((e) => (e.marker ? [{ location: e.location, marker: e.marker }] : []));
  const seenText = empty.length === 1
    ? seen.map((s) => describeMarker(s.marker)).join("")
    : seen.map((s) => `${s.location}: ${describeMarker(s.marker)}`).join("; ");
  if (seen.length > 0 && !(how.ifReplicaExists && how.allowFreshStart)) {
    throw new NoBackupError(
      `no backup found at ${where}, but one was seen there before (${seenText}): the backup is lost or the bucket or prefix is wrong; ${
        how.ifReplicaExists
          ? `refusing to start on an empty database (to start empty anyway pass --allow-fresh-start or set ${ALLOW_FRESH_START_ENV}=1)`
          : "check the bucket and path"
      }`,
    );
  }
  if (!how.ifReplicaExists) {
    throw new NoBackupError(
      `no backup found at ${where}: nothing stored there is a Litestream replica; check the bucket and path`,
      where,
    );
  }
  return {
    line: seen.length > 0
      ? `litewarden: warning: no backup found at ${where}, although one was seen there before (${seenText}); nothing restored, starting fresh (${how.allowedBy})`
      : `litewarden: no backup found at ${where}; nothing restored (--if-replica-exists)`,
    searched,
    seenBefore: seen.map((s) => ({ location: s.location, ...s.marker })),
  };
}
