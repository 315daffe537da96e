import { classifyBackup } from "../replica/listing.ts";
import type { ReplicaListing } from "../replica/listing.ts";
import type { ChosenPlan } from "../replica/restore.ts";
import type { ReplicaSummary } from "../replica/summary.ts";
import { formatTxid } from "../formats/ltx_header.ts";
import { formatIndex } from "../formats/v03_layout.ts";
import { fail, pass, skip, warn } from "./check.ts";
import type { Check } from "./check.ts";

/** Layer 1: a backup exists, names parse, which formats are present. */
export function listingChecks(listing: ReplicaListing, summary: ReplicaSummary): Check[] {
  const checks: Check[] = [];
  const presence = classifyBackup(listing);
  if (presence.kind !== "backup") {
    const id = presence.kind === "damaged" ? "listing.headers" : "listing.found";
    checks.push(fail(id, presence.error.message, presence.error.kind));
    return checks;
  }
  checks.push(pass(
    "listing.found",
    `${listing.objectCount - listing.ignored.length} replica objects (${
      summary.formats.join(" + ")
    }) at ${listing.location}`,
  ));
  if (listing.ignored.length > 0) {
    checks.push(warn(
      "listing.names",
      `${listing.ignored.length} objects fit neither format and were ignored, e.g. ${
        listing.ignored[0]
      }`,
    ));
  } else {
    checks.push(pass("listing.names", "every object name parses"));
  }
  if (listing.damaged.length > 0) {
    const d = listing.damaged;
    checks.push(fail(
      "listing.headers",
      `${d.length} LTX file(s) with a damaged header or trailer, left out of every restore plan: ${
        d.slice(0, 3).map((x) => x.message).join("; ")
      }`,
      "damaged",
    ));
  }
  if (summary.formats.length === 2) {
    checks.push(warn(
      "listing.formats",
      `both a v0.3 and a v0.5 history are stored here (an upgraded deployment); Litestream v0.5.7+ restores from ${summary.restoreFrom}; \`litewarden prune --v03-tree\` can remove the old tree once v0.5 verifies`,
    ));
  }
  return checks;
}

/** Layer 2, from names and LTX headers: the chain the restore will follow, and other history. */
export function chainChecks(
  listing: ReplicaListing,
  summary: ReplicaSummary,
  chosen: ChosenPlan,
): Check[] {
  const checks: Check[] = [];
  if (chosen.format === "v0.3") {
    const p = chosen.plan;
    const segs = p.indices.reduce((n, g) => n + g.segments.length, 0);
    checks.push(pass(
      "chain.plan",
      `generation ${p.generation.id}: snapshot at index ${
        formatIndex(p.snapshot.index)
      }, then ${segs} WAL segments in ${p.indices.length} indexes up to ${
        formatIndex(p.index)
      }, no index missing`,
    ));
    const others = summary.generations.filter((g) => g.problems.length > 0);
    for (const g of others) {
      for (const problem of g.problems) checks.push(warn("chain.history", problem));
    }
    if (others.length === 0) {
      checks.push(
        pass("chain.history", `${summary.generations.length} generation(s) without gaps`),
      );
    }
    return checks;
  }
  const files = chosen.plan.files;
  checks.push(pass(
    "chain.plan",
    `${files.length} LTX files reach TXID ${formatTxid(chosen.plan.txid)} contiguously (${
      files.map((f) => `L${f.level} ${formatTxid(f.minTxid)}-${formatTxid(f.maxTxid)}`).join(", ")
    })`,
  ));
  // Pre/post-apply linkage from headers and trailers, where the files carry checksums.
  const metas = files.map((f) => listing.ltxMeta.get(f.key));
  if (metas.every((m) => m && (m.header.flags & 0x2) === 0)) {
    let broken: string | undefined;
    for (let i = 1; i < files.length; i++) {
      if (metas[i]!.header.preApplyChecksum !== metas[i - 1]!.postApplyChecksum) {
        broken = `${files[i].key} pre-apply checksum ${
          formatTxid(metas[i]!.header.preApplyChecksum)
        } does not match ${files[i - 1].key} post-apply ${
          formatTxid(metas[i - 1]!.postApplyChecksum)
        }`;
        break;
      }
    }
    checks.push(
      broken
        ? fail("chain.checksums", broken, "damaged")
        : pass("chain.checksums", "pre/post-apply database checksums link file to file"),
    );
  } else {
    checks.push(skip(
      "chain.checksums",
      "files carry no database checksums (Litestream v0.5 never writes them); chain checked by TXID and each file's CRC-64",
    ));
  }
  // Litestream's own level consistency: within a level, ranges should not leave gaps.
  for (const [level, list] of listing.v05!.levels) {
    for (let i = 1; i < list.length; i++) {
      if (list[i].minTxid > list[i - 1].maxTxid + 1n) {
        checks.push(warn(
          "chain.levels",
          `level ${level} has a TXID gap between ${list[i - 1].key} and ${
            list[i].key
          } (points in between may not be restorable)`,
        ));
        break;
      }
    }
  }
  if (!checks.some((c) => c.id === "chain.levels")) {
    checks.push(pass("chain.levels", "no TXID gap inside any level"));
  }
  return checks;
}
