/**
 * Applied diesel migration set → Vaultwarden release range (VAULTWARDEN-SCHEMA §3): the set, not
 * the highest version, identifies a release, because 1.29.2 and 1.35.0 added older-dated
 * migrations.
 */
import { MIGRATIONS, RELEASES } from "./migrations.ts";
import type { VaultwardenMigration } from "./migrations.ts";

/** Consecutive release tags that share one migration set. */
export interface ReleaseGroup {
  /** Oldest and newest tag of the group, e.g. "1.37.0" and "1.37.2". */
  min: string;
  max: string;
  /** The versions of the set. */
  versions: ReadonlySet<string>;
}

export const KNOWN_MIGRATIONS: ReadonlyMap<string, VaultwardenMigration> = new Map(
  MIGRATIONS.map((m) => [m.version, m]),
);

/** Bytewise order, as diesel sorts versions and SQLite's BINARY collation compares them. */
export const bytewise = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function buildGroups(): ReleaseGroup[] {
  const index = new Map(RELEASES.map((r, i) => [r.tag, i]));
  const groups: ReleaseGroup[] = [];
  for (const [i, r] of RELEASES.entries()) {
    const last = groups.at(-1);
    if (last && last.versions.size === r.count) {
      last.max = r.tag;
      continue;
    }
    const versions = new Set(
      MIGRATIONS.filter((m) => (index.get(m.release) ?? Infinity) <= i).map((m) => m.version),
    );
    groups.push({ min: r.tag, max: r.tag, versions });
  }
  return groups;
}

/** Release groups, oldest first; each set is a superset of the previous one. */
export const RELEASE_GROUPS: readonly ReleaseGroup[] = buildGroups();

/** "1.37.0 – 1.37.2", or "1.17.0" for a group of one tag. */
export function rangeText(g: { min: string; max: string }): string {
  return g.min === g.max ? g.min : `${g.min} – ${g.max}`;
}

/** Newest tag litewarden knows. */
export const NEWEST_RELEASE = RELEASES[RELEASES.length - 1].tag;
const NEWEST_KNOWN_VERSION = MIGRATIONS.map((m) => m.version).sort(bytewise).at(-1) ?? "";

export interface VersionAnalysis {
  /** Applied versions, sorted bytewise. */
  applied: string[];
  highest: string | null;
  /** Applied versions no known release has. */
  unknown: string[];
  /** True when every unknown version sorts after every known one (a newer release). */
  unknownAreNewer: boolean;
  /** The release group whose set equals the applied known versions, if any. */
  knownMatch: ReleaseGroup | null;
  /** The oldest release group whose set holds every applied known version. */
  nearest: ReleaseGroup | null;
  /** Versions `nearest` has that the database lacks (a bookkeeping gap), bytewise. */
  missing: string[];
  /** The release group whose set equals the applied set exactly (no unknown, none missing). */
  exact: ReleaseGroup | null;
  /**
   * When migrations are missing but the set holds every migration of the release group before
   * `nearest`: that group. The database then comes from a build between two tags (a testing or
   * nightly image), and the missing versions are the next release's, not a gap.
   */
  between: ReleaseGroup | null;
}

export function analyzeVersions(appliedVersions: Iterable<string>): VersionAnalysis {
  const applied = [...new Set(appliedVersions)].sort(bytewise);
  const set = new Set(applied);
  const unknown = applied.filter((v) => !KNOWN_MIGRATIONS.has(v));
  const known = applied.filter((v) => KNOWN_MIGRATIONS.has(v));
  const nearest = known.length === 0
    ? null
    : RELEASE_GROUPS.find((g) => known.every((v) => g.versions.has(v))) ?? null;
  const missing = nearest ? [...nearest.versions].filter((v) => !set.has(v)).sort(bytewise) : [];
  const knownMatch = nearest && missing.length === 0 ? nearest : null;
  const previous = nearest ? RELEASE_GROUPS[RELEASE_GROUPS.indexOf(nearest) - 1] : undefined;
  const between = missing.length > 0 && previous && [...previous.versions].every((v) => set.has(v))
    ? previous
    : null;
  return {
    applied,
    highest: applied.at(-1) ?? null,
    unknown,
    unknownAreNewer: unknown.length > 0 && unknown.every((v) => v > NEWEST_KNOWN_VERSION),
    knownMatch,
    nearest,
    missing,
    exact: knownMatch && unknown.length === 0 ? knownMatch : null,
    between,
  };
}
