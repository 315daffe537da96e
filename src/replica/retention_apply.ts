/**
 * Carrying out a prune plan (`retention.ts` makes it): probe that deletes are allowed, reconcile
 * the plan with a fresh listing, then delete in the plan's order.
 */
import { DamagedError, StorageError } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import type { ReplicaListing } from "./listing.ts";
import { replan } from "./retention.ts";
import type { PrunePlan, VaultFiles } from "./retention.ts";

/** Keys per delete request; the S3 backend splits further if its provider needs it. */
export const DELETE_BATCH = 100;

/** Delete requests a plan takes. */
export function deleteRequests(plan: PrunePlan): number {
  return Math.ceil(plan.deletions.length / DELETE_BATCH);
}

/**
 * Fails before any real deletion when the credentials may not delete: deletes a key that does not
 * exist (a no-op where deleting is allowed).
 */
export async function probeDeletePermission(storage: Storage, location: string): Promise<void> {
  try {
    await storage.delete([`.litewarden-delete-probe-${crypto.randomUUID()}`]);
  } catch (err) {
    if (!(err instanceof StorageError)) throw err;
    throw new StorageError(
      `${err.message}; nothing in ${location} was deleted (without --apply prune only prints the plan)`,
      { op: "delete", key: err.key, status: err.status, code: err.code, attempts: err.attempts },
      { cause: err },
    );
  }
}

/**
 * The plan as it stands against `fresh`, a listing made right before deleting. The plan is made
 * again on it (same rules, same `now`) and only objects both plans delete go, in the first plan's
 * order: what a running Litestream added can only add protection, and what is dropped from the
 * order is an object that is gone or now kept. The vault's files are listed afresh too
 * (`freshVault`); what the kept points' databases reference is the first plan's. A kept point that vanished means someone else is
 * deleting (Litestream's own retention, another prune): stop without deleting anything.
 */
export function reconcile(
  plan: PrunePlan,
  fresh: ReplicaListing,
  location: string,
  freshVault?: Omit<VaultFiles, "referenced">,
): PrunePlan {
  const again = replan(plan, fresh, freshVault);
  const listedNow = new Set(again.points.map((p) => p.key));
  const vanished = plan.points.filter((p) => p.kept && !listedNow.has(p.key));
  if (vanished.length > 0) {
    throw new DamagedError(
      `the replica at ${location} changed while planning: ${
        vanished[0].key
      } disappeared (a running retention or another prune?); nothing was deleted: run prune again`,
      vanished[0].key,
    );
  }
  const agreed = new Set(again.deletions.map((d) => d.key));
  const groups = plan.groups
    .map((g) => {
      const objects = g.objects.filter((o) => agreed.has(o.key));
      return { ...g, objects, bytes: objects.reduce((n, o) => n + o.size, 0) };
    })
    .filter((g) => g.objects.length > 0);
  return {
    ...plan,
    groups,
    deletions: groups.flatMap((g) => g.objects),
    bytesFreed: groups.reduce((n, g) => n + g.bytes, 0),
  };
}

/**
 * Deletes the plan's objects in its order, `DELETE_BATCH` keys per request; `onDeleted` hears the
 * running count after each request. Returns how many were deleted.
 */
export async function executePrunePlan(
  storage: Storage,
  plan: PrunePlan,
  onDeleted: (deleted: number) => void = () => {},
): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < plan.deletions.length; i += DELETE_BATCH) {
    const batch = plan.deletions.slice(i, i + DELETE_BATCH).map((d) => d.key);
    await storage.delete(batch);
    deleted += batch.length;
    onDeleted(deleted);
  }
  return deleted;
}
