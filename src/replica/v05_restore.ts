import { DamagedError } from "../errors.ts";
import { FormatError } from "../formats/format_error.ts";
import { DatabaseChecksum } from "../formats/ltx_checksum.ts";
import { LtxDecoder } from "../formats/ltx_decoder.ts";
import { hasChecksums } from "../formats/ltx_header.ts";
import type { LtxHeader } from "../formats/ltx_header.ts";
import { databaseGrowthProblem, lockPageNumber } from "../formats/sqlite_header.ts";
import type { Storage } from "../storage/storage.ts";
import type { PageFile } from "./page_file.ts";
import { countingStream } from "./prefetch.ts";
import { fetchAhead } from "../storage/fetch_ahead.ts";
import type { ApplyOptions, ApplyStats } from "./v03_restore.ts";
import { formatTxid } from "../formats/ltx_header.ts";
import type { V05Plan } from "./v05.ts";

export interface V05ApplyStats extends ApplyStats {
  /** Rolling database checksum after the last file, when every file carries checksums. */
  checksum?: bigint;
  /** Whether the chain carried database checksums that were checked after each file. */
  checksumsVerified: boolean;
}

/**
 * Rebuilds a v0.5 restore point (LITESTREAM-FORMATS §3.5, §4.8–4.10). Files are applied in plan
 * order without truncating in between, which gives exactly the LTX compactor's result (each
 * page's latest version), then the image is cut to the last file's commit. Every file's CRC-64
 * is checked as it streams; TXID contiguity and, where present, the pre/post-apply database
 * checksums are checked after each file.
 */
export async function applyV05(
  storage: Storage,
  plan: V05Plan,
  out: PageFile,
  opts: ApplyOptions,
): Promise<V05ApplyStats> {
  const stats: V05ApplyStats = {
    objects: 0,
    bytesDownloaded: 0,
    pageSize: 0,
    pages: 0,
    checksumsVerified: false,
  };
  const onBytes = (n: number) => {
    stats.bytesDownloaded += n;
    opts.onDownload?.(n);
  };
  let prev: { header: LtxHeader; post: bigint; key: string } | undefined;
  let rolling: DatabaseChecksum | undefined;
  let imagePages = 0; // Pages physically present in `out` (no truncation until the end).
  const streams = fetchAhead(plan.files, (f) => storage.get(f.key), {
    maxRequests: opts.parallelism,
    maxBytesAhead: opts.maxBytesAhead,
  });
  try {
    for await (const { item: file, stream } of streams) {
      const decoder = new LtxDecoder(stream.pipeThrough(countingStream(onBytes)));
      try {
        const header = await decoder.readHeader();
        if (prev) {
          if (header.pageSize !== prev.header.pageSize) {
            throw new FormatError(
              `page size ${header.pageSize} differs from ${prev.key}'s ${prev.header.pageSize}`,
            );
          }
          if (header.minTxid > prev.header.maxTxid + 1n) {
            throw new FormatError(
              `TXID gap: the chain reached ${
                formatTxid(prev.header.maxTxid)
              } but this file starts at ${formatTxid(header.minTxid)}`,
            );
          }
        } else {
          stats.pageSize = header.pageSize;
          if (header.minTxid !== 1n) {
            throw new FormatError("the first file of a restore must be a snapshot (TXID 1)");
          }
        }
        const checked = hasChecksums(header) && (!prev || rolling !== undefined);
        if (checked && prev && header.preApplyChecksum !== prev.post) {
          throw new FormatError(
            `pre-apply checksum ${
              formatTxid(header.preApplyChecksum)
            } does not match ${prev.key}'s post-apply checksum ${formatTxid(prev.post)}`,
          );
        }
        if (checked && !rolling) rolling = new DatabaseChecksum();
        if (!checked) rolling = undefined;
        const pageSize = header.pageSize;
        const old = new Uint8Array(pageSize);
        const prevCommit = prev?.header.commit ?? 0;
        const grown = new Set<number>();
        let pagesInFile = 0;
        for await (const { pgno, data } of decoder.pages()) {
          pagesInFile++;
          if (rolling && pgno <= prevCommit) {
            await out.readAt((pgno - 1) * pageSize, old);
            rolling.remove(pgno, old);
          }
          rolling?.add(pgno, data);
          if (rolling && pgno > prevCommit) grown.add(pgno);
          await out.writeAt((pgno - 1) * pageSize, data);
          if (pgno > imagePages) imagePages = pgno;
        }
        // The header's commit may only grow the database by the pages this file carries (plus
        // the lock page): LTX files hold whole transactions, whose new pages are all written.
        const growth = databaseGrowthProblem(
          prevCommit * pageSize,
          pageSize,
          pagesInFile,
          header.commit,
          "pages in the file",
        );
        if (growth) throw new FormatError(`its header ${growth}`);
        const post = decoder.trailer!.postApplyChecksum;
        if (rolling) {
          await adjustForCommit(out, rolling, pageSize, prevCommit, header.commit, grown);
          if (rolling.value() !== post) {
            throw new FormatError(
              `database checksum after applying is ${formatTxid(rolling.value())}, the file says ${
                formatTxid(post)
              }`,
            );
          }
        }
        prev = { header, post, key: file.key };
      } catch (err) {
        await stream.cancel().catch(() => {});
        if (err instanceof FormatError) {
          throw new DamagedError(`LTX file ${file.key} is damaged: ${err.message}`, file.key);
        }
        throw err;
      }
      stats.objects++;
      opts.onObject?.();
    }
  } finally {
    await streams.return(undefined);
  }
  if (!prev) throw new DamagedError("the restore plan is empty");
  stats.pages = prev.header.commit;
  if (imagePages !== stats.pages) await out.truncate(stats.pages * stats.pageSize);
  stats.checksumsVerified = rolling !== undefined;
  stats.checksum = rolling?.value();
  return stats;
}

/**
 * Keeps the rolling checksum equal to pages 1…commit: pages past a shrunken commit leave it, and
 * pages a growing commit brings back in without rewriting them rejoin with their on-disk content.
 */
async function adjustForCommit(
  out: PageFile,
  rolling: DatabaseChecksum,
  pageSize: number,
  prevCommit: number,
  commit: number,
  written: Set<number>,
): Promise<void> {
  const page = new Uint8Array(pageSize);
  const lock = lockPageNumber(pageSize);
  if (commit < prevCommit) {
    for (let p = commit + 1; p <= prevCommit; p++) {
      if (p === lock) continue;
      page.fill(0);
      await out.readAt((p - 1) * pageSize, page);
      rolling.remove(p, page);
    }
  } else if (commit > prevCommit) {
    for (let p = prevCommit + 1; p <= commit; p++) {
      if (p === lock || written.has(p)) continue;
      page.fill(0);
      await out.readAt((p - 1) * pageSize, page);
      rolling.add(p, page);
    }
  }
}
