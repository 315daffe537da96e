import { LitewardenError } from "../errors.ts";
import { readAll } from "../storage/storage.ts";
import type { Storage } from "../storage/storage.ts";

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
  for await (const obj of storage.list(MARKER_PREFIX)) {
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
