import { RefusedError, UsageError } from "../errors.ts";
import { parseV03Key } from "../formats/v03_layout.ts";
import type { ObjectInfo } from "../storage/storage.ts";
import { versionAt } from "./vault_files.ts";
import type { SecretName, VersionObject } from "./vault_files.ts";
import type { ReplicaListing } from "./listing.ts";
import { summarize } from "./summary.ts";
import { v03Point, v05Point } from "./restore_point.ts";
import type { RestorePoint, V03Point } from "./restore_point.ts";
import type { V03Segment, V03Snapshot } from "./v03.ts";

/** restic-style keep rules; a point is kept when any rule keeps it. */
export interface KeepRules {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  /** Milliseconds, counted back from the newest point (not from now). */
  withinMs?: number;
}

/** A restore point prune can keep or drop: a v0.3 snapshot or a v0.5 level-9 snapshot. */
export interface RetentionPoint {
  point: RestorePoint;
  key: string;
  kept: boolean;
  /** Why it is kept: rule names such as `last`, `daily`, `within`, `newest`, `current-chain`. */
  reasons: string[];
}

/** What a prune was asked to do: a plan keeps it so it can be re-made on a fresh listing. */
export interface PruneRequest {
  rules: KeepRules;
  minAgeMs: number;
  now: Date;
  /** Plan the whole v0.3 `generations/` tree away (`--v03-tree`). */
  dropV03Tree?: boolean;
  /** Leave the v0.5 history alone (`--v03-tree` without keep rules). */
  keepAllV05?: boolean;
}

/**
 * Why a group of objects goes. Further kinds (e.g. files of a whole vault) join this union; each
 * group says for itself in which order its objects may go.
 */
export type DeletionReason =
  /** A v0.3 generation without a kept point: all of it. */
  | { kind: "v03-generation"; generation: string }
  /** Snapshots of a v0.3 generation no rule keeps, and its WAL below the oldest kept index. */
  | { kind: "v03-unkept"; generation: string; oldestKeptIndex: number }
  /** A v0.3 generation of the old tree that `--v03-tree` removes. */
  | { kind: "v03-tree"; generation: string }
  /** v0.5 snapshots no rule keeps, and LTX files every kept snapshot covers. */
  | { kind: "v05-history" }
  /** Attachment and send bodies no kept point's database references (see {@link VaultFiles}). */
  | { kind: "vault-files" }
  /** Versions of rsa_key.pem or config.json older than the one in effect at the oldest kept point. */
  | { kind: "vault-versions"; name: SecretName };

/**
 * The vault's files stored beside the replica, for a prune that also plans them. Which bodies the
 * kept points need can only be read from their databases, so the caller restores each kept point
 * and passes the union of what they reference.
 */
export interface VaultFiles {
  /** Every stored attachment and send body, by its path relative to the files' base. */
  objects: ReadonlyMap<string, ObjectInfo>;
  /** Every stored version of the key and the settings, oldest first. */
  versions: ReadonlyMap<SecretName, readonly VersionObject[]>;
  /**
   * The paths some kept point's database references; undefined when that is unknown (a kept
   * point could not be restored): then no body is deleted.
   */
  referenced: ReadonlySet<string> | undefined;
}

export interface DeletionGroup {
  reason: DeletionReason;
  /** In the order they must be deleted (see {@link planPrune}). */
  objects: ObjectInfo[];
  bytes: number;
}

/** A prune plan: printed, re-made on a fresh listing and executed by `retention_apply.ts`. */
export interface PrunePlan {
  request: PruneRequest;
  points: RetentionPoint[];
  /** In execution order. */
  groups: DeletionGroup[];
  /** Every group's objects, in execution order: any prefix leaves every kept point restorable. */
  deletions: ObjectInfo[];
  /**
   * Objects kept only because of --min-age: younger than it, or an earlier segment of the same
   * v0.3 WAL index as a young one (Litestream refuses an index without its first segment).
   */
  protectedYoung: number;
  bytesFreed: number;
  /** The vault's files the plan was made with (kept to re-make it on a fresh listing). */
  vault?: VaultFiles;
}

/** Assigns keep reasons to points (`points` newest first), exactly like restic's `forget`. */
export function applyKeepRules(points: RetentionPoint[], rules: KeepRules): void {
  if (points.length === 0) return;
  const newest = points[0].point.time.getTime();
  points[0].reasons.push("newest");
  if (rules.last) {
    for (const p of points.slice(0, rules.last)) p.reasons.push("last");
  }
  const buckets: [keyof KeepRules, (d: Date) => string][] = [
    ["hourly", (d) => d.toISOString().slice(0, 13)],
    ["daily", (d) => d.toISOString().slice(0, 10)],
    ["weekly", isoWeek],
    ["monthly", (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [rule, bucketOf] of buckets) {
    const n = rules[rule];
    if (!n) continue;
    const seen = new Set<string>();
    for (const p of points) {
      if (seen.size >= n) break;
      const b = bucketOf(p.point.time);
      if (seen.has(b)) continue;
      seen.add(b); // The newest point of each bucket stands for it.
      p.reasons.push(rule);
    }
  }
  if (rules.withinMs !== undefined) {
    for (const p of points) {
      if (p.point.time.getTime() >= newest - rules.withinMs) p.reasons.push("within");
    }
  }
  for (const p of points) p.kept = p.reasons.length > 0;
}

/** ISO 8601 week (`2026-W47`), so weeks start on Monday as restic counts them. */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

/**
 * Plans a prune of one replica. What is never deleted: the newest restorable chain (the current
 * generation's newest snapshot and everything after it; the newest v0.5 snapshot and every file
 * above it), anything a kept point needs (for v0.3 its snapshot and every WAL segment of its
 * generation from its index on; for v0.5 its snapshot and every file above it), the last file of
 * each v0.5 level (Litestream's compactor relies on it), and objects younger than `minAgeMs`.
 * The v0.3 tree is only planned away as a whole with `dropV03Tree`.
 *
 * The order makes every prefix of the deletions safe, so an interrupted prune leaves every kept
 * point (and every point still listed) restorable by litewarden and by `litestream restore`:
 * - Litestream v0.3.13 refuses a generation in which any WAL index, even one below the snapshot
 *   it restores from, has segments but not the one at offset 0 ("missing initial wal segment":
 *   its segment map checks every index). So a v0.3 group goes index by index from the lowest:
 *   the index's snapshot first (from then on nothing needs that index), then its segments from
 *   the highest offset down, offset 0 last. Every index left starts at offset 0, and every
 *   snapshot left keeps its whole chain.
 * - v0.5 files go oldest first: restores plan from what they list, and every file a kept point,
 *   the latest restore or Litestream's next compaction reads stays.
 * - Groups go in the order of their newest object (then by name), so a run after an interrupted
 *   one continues the same sequence.
 */
export function planPrune(
  listing: ReplicaListing,
  rules: KeepRules,
  opts: Omit<PruneRequest, "rules">,
  vault?: VaultFiles,
): PrunePlan {
  const request: PruneRequest = { rules, ...opts };
  const points: RetentionPoint[] = [];
  const candidates: { reason: DeletionReason; objects: ObjectInfo[] }[] = [];

  if (listing.v03 && opts.dropV03Tree) {
    for (const g of listing.v03.generations) {
      candidates.push({
        reason: { kind: "v03-tree", generation: g.id },
        objects: v03Objects(g.snapshots, g.segments),
      });
    }
  } else if (listing.v03) {
    const gens = listing.v03.generations;
    const current = gens.reduce((a, b) => (b.end > a.end ? b : a), gens[0]);
    const v03Points: (RetentionPoint & { point: V03Point })[] = gens.flatMap((g) =>
      g.snapshots.map((s) => ({
        point: v03Point(g.id, s.index, s.time),
        key: s.key,
        kept: false,
        reasons: [],
      }))
    );
    v03Points.sort((a, b) => b.point.time.getTime() - a.point.time.getTime());
    applyKeepRules(v03Points, rules);
    // The current generation's newest snapshot starts the newest restorable chain.
    const currentSnaps = v03Points.filter((p) => p.point.generation === current.id);
    if (currentSnaps.length > 0 && !currentSnaps[0].reasons.includes("newest")) {
      currentSnaps[0].reasons.push("current-chain");
      currentSnaps[0].kept = true;
    }
    points.push(...v03Points);
    for (const g of gens) {
      const kept = v03Points.filter((p) => p.kept && p.point.generation === g.id);
      if (kept.length === 0) {
        // Nothing kept here: the whole generation goes, unless it is the current one (whose
        // WAL may still be written to before its first snapshot is listed).
        if (g.id === current.id) continue;
        candidates.push({
          reason: { kind: "v03-generation", generation: g.id },
          objects: v03Objects(g.snapshots, g.segments),
        });
        continue;
      }
      const minIndex = Math.min(...kept.map((p) => p.point.index));
      const keptKeys = new Set(kept.map((p) => p.key));
      candidates.push({
        reason: { kind: "v03-unkept", generation: g.id, oldestKeptIndex: minIndex },
        objects: v03Objects(
          g.snapshots.filter((s) => !keptKeys.has(s.key)),
          g.segments.filter((s) => s.index < minIndex),
        ),
      });
    }
  }

  if (listing.v05 && !opts.keepAllV05) {
    const snaps = listing.v05.levels.get(9) ?? [];
    const v05Points: RetentionPoint[] = snaps.map((f) => ({
      point: v05Point(f.maxTxid, f.time),
      key: f.key,
      kept: false,
      reasons: [],
    }));
    v05Points.sort((a, b) => b.point.time.getTime() - a.point.time.getTime());
    applyKeepRules(v05Points, rules);
    points.push(...v05Points);
    const kept = snaps.filter((f) => v05Points.find((p) => p.key === f.key)!.kept);
    const objects: ObjectInfo[] = [];
    if (kept.length > 0) {
      const oldestKept = kept.reduce((a, b) => (b.maxTxid < a.maxTxid ? b : a));
      for (const [level, files] of listing.v05.levels) {
        const last = files[files.length - 1];
        // Litestream compacts level n into n+1 from the level-n files above n+1's highest TXID:
        // deleting one not compacted yet would leave a gap that breaks every later compaction.
        const next = level < 8 ? listing.v05.levels.get(level + 1) : undefined;
        const compacted = next?.reduce((m, f) => (f.maxTxid > m ? f.maxTxid : m), 0n);
        for (const f of files) {
          if (f === last) continue;
          // Below level 9: covered by every kept snapshot, and already in the next level.
          const drop = level === 9
            ? !kept.includes(f)
            : f.maxTxid <= oldestKept.maxTxid && f.maxTxid <= (compacted ?? f.maxTxid);
          if (drop) objects.push(toInfo(f.key, f.size, f.modified));
        }
      }
    }
    objects.sort(oldestFirst);
    candidates.push({ reason: { kind: "v05-history" }, objects });
  }

  if (vault) candidates.push(...vaultCandidates(points, vault));

  const youngLimit = opts.now.getTime() - opts.minAgeMs;
  let protectedYoung = 0;
  const groups: DeletionGroup[] = [];
  for (const c of candidates) {
    const objects = withoutYoung(c.objects, youngLimit);
    protectedYoung += c.objects.length - objects.length;
    if (objects.length === 0) continue;
    groups.push({ reason: c.reason, objects, bytes: objects.reduce((n, o) => n + o.size, 0) });
  }
  groups.sort((a, b) => newestTime(a) - newestTime(b) || (groupName(a) < groupName(b) ? -1 : 1));
  const deletions = groups.flatMap((g) => g.objects);
  return {
    request,
    points,
    groups,
    deletions,
    protectedYoung,
    bytesFreed: groups.reduce((n, g) => n + g.bytes, 0),
    ...(vault && { vault }),
  };
}

/**
 * The vault's files no kept point needs. A body goes only when no kept point's database
 * references it and it was stored before the oldest kept point: a row created after that point
 * has its body stored after it too, so every restorable point between two kept ones (a row added
 * and deleted between them) keeps its bodies. A key or settings version goes when it is older
 * than the one in effect at the oldest kept point (the newest at or before it), which stays.
 * `--min-age` applies on top, as to every object.
 */
export function vaultCandidates(
  points: readonly RetentionPoint[],
  vault: VaultFiles,
): { reason: DeletionReason; objects: ObjectInfo[] }[] {
  const kept = points.filter((p) => p.kept);
  if (kept.length === 0) return [];
  const oldest = new Date(Math.min(...kept.map((p) => p.point.time.getTime())));
  const out: { reason: DeletionReason; objects: ObjectInfo[] }[] = [];
  if (vault.referenced) {
    const referenced = vault.referenced;
    const objects = [...vault.objects]
      .filter(([rel, o]) => !referenced.has(rel) && o.modified.getTime() < oldest.getTime())
      .map(([, o]) => o)
      .sort(oldestFirst);
    out.push({ reason: { kind: "vault-files" }, objects });
  }
  for (const [name, versions] of vault.versions) {
    const inEffect = versionAt(versions, oldest);
    if (!inEffect) continue;
    const objects = versions.filter((v) => v.time.getTime() < inEffect.time.getTime())
      .map((v) => toInfo(v.key, v.size, v.time));
    out.push({ reason: { kind: "vault-versions", name }, objects });
  }
  return out;
}

/**
 * Whether `--v03-tree` may remove the v0.3 `generations/` tree: "absent" when there is none;
 * "prove-v05" when it may go once the v0.5 history under the same prefix has just restored.
 * Throws when it must stay: without a v0.5 history it is the only backup, and when it holds the
 * newest restorable point it is what Litestream v0.5.7+ restores from (the newest restorable
 * chain is never deleted).
 */
export function v03TreeRemoval(listing: ReplicaListing, location: string): "absent" | "prove-v05" {
  if (!listing.v03) return "absent";
  if (!listing.v05) {
    throw new UsageError(
      "--v03-tree needs a v0.5 (LTX) history under the same prefix; there is none, so the v0.3 tree is the only backup and stays",
    );
  }
  if (summarize(listing).restoreFrom === "v0.3") {
    throw new RefusedError(
      `the v0.3 generations/ tree at ${location} is newer than the v0.5 history (it holds the newest restorable point), so it stays; is a Litestream v0.3 still writing here?`,
    );
  }
  return "prove-v05";
}

/**
 * Makes the same plan again on a fresh listing (same rules, same `now`); with the vault's files
 * listed afresh too (`freshVault`: objects and versions; what the kept points reference stays).
 */
export function replan(
  plan: PrunePlan,
  fresh: ReplicaListing,
  freshVault?: Omit<VaultFiles, "referenced">,
): PrunePlan {
  const { rules, ...opts } = plan.request;
  const vault = plan.vault && freshVault
    ? { ...freshVault, referenced: plan.vault.referenced }
    : plan.vault;
  return planPrune(fresh, rules, opts, vault);
}

/** v0.3 objects in their safe deletion order: by index, the snapshot first, offset 0 last. */
function v03Objects(snapshots: V03Snapshot[], segments: V03Segment[]): ObjectInfo[] {
  const ordered = [
    // A snapshot goes before every segment of its index …
    ...snapshots.map((s) => ({
      index: s.index,
      rank: -Infinity,
      info: toInfo(s.key, s.size, s.time),
    })),
    // … and segments from the highest offset down, so what is left of an index starts at 0.
    ...segments.map((s) => ({
      index: s.index,
      rank: -s.offset,
      info: toInfo(s.key, s.size, s.time),
    })),
  ];
  ordered.sort((a, b) => a.index - b.index || a.rank - b.rank);
  return ordered.map((o) => o.info);
}

/**
 * Drops objects younger than the limit. A v0.3 segment younger than it also keeps the earlier
 * segments of its index: Litestream refuses an index whose offset-0 segment is gone.
 */
function withoutYoung(objects: ObjectInfo[], youngLimit: number): ObjectInfo[] {
  const young = (o: ObjectInfo) => o.modified.getTime() > youngLimit;
  const keepBelow = new Map<string, number>(); // `<generation>/<index>` → highest young offset
  for (const o of objects) {
    const k = parseV03Key(o.key);
    if (k?.kind !== "wal" || !young(o)) continue;
    const id = `${k.generation}/${k.index}`;
    keepBelow.set(id, Math.max(keepBelow.get(id) ?? 0, k.offset));
  }
  return objects.filter((o) => {
    if (young(o)) return false;
    const k = parseV03Key(o.key);
    if (k?.kind !== "wal") return true;
    const limit = keepBelow.get(`${k.generation}/${k.index}`);
    return limit === undefined || k.offset > limit;
  });
}

const oldestFirst = (a: ObjectInfo, b: ObjectInfo) =>
  a.modified.getTime() - b.modified.getTime() || (a.key < b.key ? -1 : 1);

const newestTime = (g: DeletionGroup) => Math.max(...g.objects.map((o) => o.modified.getTime()));

function groupName(g: DeletionGroup): string {
  const r = g.reason;
  if ("generation" in r) return `v0.3 ${r.generation}`;
  if (r.kind === "vault-files") return "vault files";
  if (r.kind === "vault-versions") return `vault ${r.name}`;
  return "v0.5";
}

function toInfo(key: string, size: number, modified: Date): ObjectInfo {
  return { key, size, modified };
}
