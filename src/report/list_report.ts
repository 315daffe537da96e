import type { ReplicaListing } from "../replica/listing.ts";
import { describePointAt, pointJson } from "../replica/restore_point.ts";
import type { RestorePoint } from "../replica/restore_point.ts";
import { describeRestorableWindow } from "../replica/summary.ts";
import type { ReplicaSummary } from "../replica/summary.ts";
import { formatAge, formatBytes, formatTime, table } from "../lib/format.ts";
import { formatIndex } from "../formats/v03_layout.ts";

export interface ListedReplica {
  name: string;
  location: string;
  listing: ReplicaListing;
  summary: ReplicaSummary;
}

/** The stable `list --json` document (documented in README.md). */
export function listJson(replicas: ListedReplica[], now: Date, dbPath?: string) {
  const newest = newestOf(replicas);
  return {
    ok: newest !== undefined,
    command: "list",
    database: dbPath ?? null,
    replicas: replicas.map(({ name, location, listing, summary: s }) => ({
      name,
      location,
      formats: s.formats,
      restoreFrom: s.restoreFrom ?? null,
      objects: { total: listing.objectCount, ignored: listing.ignored.length },
      damaged: listing.damaged,
      generations: s.generations.map((g) => ({
        id: g.id,
        current: g.id === s.currentGeneration,
        snapshots: g.snapshots,
        walSegments: g.walSegments,
        firstIndex: g.firstIndex,
        lastIndex: g.lastIndex,
        start: g.start.toISOString(),
        end: g.end.toISOString(),
        bytes: g.bytes,
        restorable: g.restorable
          ? { from: pointJson(g.restorable.from, now), to: pointJson(g.restorable.to, now) }
          : null,
        problems: g.problems,
      })),
      levels: s.levels.map((l) => ({
        ...l,
        start: l.start.toISOString(),
        end: l.end.toISOString(),
      })),
      problems: s.v05Problems,
      oldest: pointJson(s.oldest, now),
      newest: pointJson(s.newest, now),
    })),
    newest: pointJson(newest, now),
  };
}

export function newestOf(replicas: ListedReplica[]): RestorePoint | undefined {
  let best: RestorePoint | undefined;
  for (const r of replicas) {
    const p = r.summary.newest;
    if (p && (!best || p.time > best.time)) best = p;
  }
  return best;
}

/** The human `list` report; ends with the line an operator wants first. */
export function listText(replicas: ListedReplica[], now: Date): string {
  const lines: string[] = [];
  for (const { name, location, listing, summary: s } of replicas) {
    lines.push(`Replica ${name}: ${location}`);
    const both = s.formats.length === 2;
    lines.push(
      `  format: ${s.formats.join(" + ")}${
        both ? ` (both under one prefix; Litestream v0.5.7+ restores from ${s.restoreFrom})` : ""
      }; ${listing.objectCount} objects${
        listing.ignored.length ? `, ${listing.ignored.length} ignored (not replica files)` : ""
      }`,
    );
    if (s.generations.length) {
      lines.push("");
      const rows = [["", "GENERATION", "SNAPSHOTS", "WAL", "INDEXES", "START", "END", "SIZE"]];
      for (const g of s.generations) {
        rows.push([
          g.id === s.currentGeneration ? "*" : "",
          g.id,
          String(g.snapshots),
          String(g.walSegments),
          `${formatIndex(g.firstIndex)}-${formatIndex(g.lastIndex)}`,
          formatTime(g.start),
          formatTime(g.end),
          formatBytes(g.bytes),
        ]);
      }
      lines.push(indent(table(rows)));
      for (const g of s.generations) {
        for (const p of g.problems) lines.push(`  ! ${p}`);
      }
    }
    if (s.levels.length) {
      lines.push("");
      const rows = [["LEVEL", "FILES", "TXIDS", "START", "END", "SIZE"]];
      for (const l of s.levels) {
        rows.push([
          l.level === 9 ? "9 (snapshots)" : String(l.level),
          String(l.files),
          `${l.minTxid}-${l.maxTxid}`,
          formatTime(l.start),
          formatTime(l.end),
          formatBytes(l.bytes),
        ]);
      }
      lines.push(indent(table(rows)));
      for (const p of s.v05Problems) lines.push(`  ! ${p}`);
    }
    for (const d of listing.damaged) lines.push(`  ! damaged, left out: ${d.message}`);
    lines.push("");
    if (s.oldest && s.newest) lines.push(`  restorable window: ${describeRestorableWindow(s)}`);
    lines.push("");
  }
  const newest = newestOf(replicas);
  lines.push(
    newest
      ? `Newest restorable point: ${describePointAt(newest)}, ${
        formatAge(now.getTime() - newest.time.getTime())
      } old`
      : "No restorable point: see the problems above",
  );
  return lines.join("\n");
}

function indent(text: string): string {
  return text.split("\n").map((l) => `  ${l}`).join("\n");
}
