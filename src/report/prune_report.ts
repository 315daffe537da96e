/** What `prune` prints: the plan (points, deletion groups, totals) and what `--apply` did. */
import { describePoint, pointJson } from "../replica/restore_point.ts";
import { formatBytes, formatTime, table } from "../lib/format.ts";
import { formatIndex } from "../formats/v03_layout.ts";
import type { DeletionGroup, PrunePlan } from "../replica/retention.ts";
import { deleteRequests } from "../replica/retention_apply.ts";

/** The JSON document of one replica's prune (`--json`); the text form is {@link pruneText}. */
export function pruneReport(
  location: string,
  applied: boolean,
  notes: string[],
  plan: PrunePlan,
  deleted: number,
) {
  const now = plan.request.now;
  return {
    ok: true,
    command: "prune",
    location,
    applied,
    notes,
    points: plan.points.map((p) => ({
      ...pointJson(p.point, now),
      key: p.key,
      kept: p.kept,
      reasons: p.reasons,
    })),
    delete: {
      objects: plan.deletions.length,
      bytes: plan.bytesFreed,
      requests: deleteRequests(plan),
      groups: plan.groups.map((g) => ({
        ...g.reason,
        why: groupText(g),
        objects: g.objects.length,
        bytes: g.bytes,
      })),
      keys: plan.deletions.map((d) => d.key),
    },
    protectedYoung: plan.protectedYoung,
    deleted,
  };
}

/** What a deletion group is, for people. */
function groupText(g: DeletionGroup): string {
  const r = g.reason;
  switch (r.kind) {
    case "v03-generation":
      return `v0.3 generation ${r.generation}: no kept point, all of it goes`;
    case "v03-unkept":
      return `v0.3 generation ${r.generation}: snapshots no rule keeps, and the WAL below index ${
        formatIndex(r.oldestKeptIndex)
      } (its oldest kept point)`;
    case "v03-tree":
      return `v0.3 generation ${r.generation}: part of the old v0.3 tree (--v03-tree)`;
    case "v05-history":
      return "v0.5: snapshots no rule keeps, and LTX files every kept snapshot covers";
    case "vault-files":
      return "vault files: attachment and send bodies no kept point's database references, stored before the oldest kept point";
    case "vault-versions":
      return `vault files: ${r.name} versions older than the one in effect at the oldest kept point`;
  }
}

/** The plan for people, then what `--apply` did. */
export function pruneText(
  report: { location: string; applied: boolean; notes: string[]; deleted: number },
  plan: PrunePlan,
  minAge: string,
): string {
  const lines = [
    `Prune plan for ${report.location}${report.applied ? "" : " (dry run: nothing deleted)"}`,
  ];
  for (const n of report.notes) lines.push(`  note: ${n}`);
  if (plan.points.length > 0) {
    const rows = [["", "TIME", "POINT", "KEPT BY"]];
    for (const p of plan.points) {
      rows.push([
        p.kept ? "keep" : "drop",
        formatTime(p.point.time),
        describePoint(p.point),
        p.reasons.join(", "),
      ]);
    }
    lines.push(table(rows).split("\n").map((l) => `  ${l}`).join("\n"));
  }
  for (const g of plan.groups) {
    lines.push(`  ${g.objects.length} objects, ${formatBytes(g.bytes)}: ${groupText(g)}`);
  }
  lines.push(
    `  ${plan.deletions.length} objects to delete, ${formatBytes(plan.bytesFreed)} freed, ${
      deleteRequests(plan)
    } delete request(s) after 2 listings${
      plan.protectedYoung
        ? `; ${plan.protectedYoung} more are younger than --min-age ${minAge} and stay`
        : ""
    }`,
  );
  lines.push(
    report.applied ? `  deleted ${report.deleted} objects` : "  run again with --apply to delete",
  );
  return lines.join("\n");
}
