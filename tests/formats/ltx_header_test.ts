import { assertEquals, assertThrows } from "../support/assert.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import {
  formatLtxFileName,
  formatTxid,
  hasChecksums,
  isSnapshot,
  LTX_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  parseLtxFileName,
  parseLtxHeader,
  parseLtxTrailer,
  validateLtxHeader,
  validateLtxTrailer,
} from "../../src/formats/ltx_header.ts";
import type { LtxHeader } from "../../src/formats/ltx_header.ts";
import { LTX_FIXTURES, readFixture, readTsv } from "./helpers.ts";

const ROWS = readTsv(new TextDecoder().decode(readFixture(LTX_FIXTURES, "ltx-files.tsv")));
const hex = (s: string) => BigInt(`0x${s}`);

Deno.test("parseLtxHeader/parseLtxTrailer: every fixture equals ltx-files.tsv", () => {
  assertEquals(ROWS.length, 21);
  for (const row of ROWS) {
    const file = readFixture(LTX_FIXTURES, row.path);
    assertEquals(file.length, Number(row.size), row.path);
    const h = parseLtxHeader(file.subarray(0, LTX_HEADER_SIZE));
    validateLtxHeader(h);
    assertEquals(h, {
      flags: Number(row.flags),
      pageSize: Number(row.page_size),
      commit: Number(row.commit),
      minTxid: hex(row.min_txid),
      maxTxid: hex(row.max_txid),
      timestamp: Number(row.timestamp_ms),
      preApplyChecksum: hex(row.pre_apply),
      walOffset: BigInt(row.wal_offset),
      walSize: BigInt(row.wal_size),
      walSalt1: Number(`0x${row.wal_salt1}`),
      walSalt2: Number(`0x${row.wal_salt2}`),
      nodeId: 0n,
    }, row.path);
    const t = parseLtxTrailer(file.subarray(file.length - LTX_TRAILER_SIZE));
    assertEquals(t, {
      postApplyChecksum: hex(row.post_apply),
      fileChecksum: hex(row.file_checksum),
    });
    validateLtxTrailer(h, t);
    assertEquals(isSnapshot(h), row.min_txid === "0000000000000001");
    assertEquals(hasChecksums(h), row.path.includes("/checksummed/"));
    const name = row.path.split("/").pop()!;
    assertEquals(parseLtxFileName(name), { minTxid: h.minTxid, maxTxid: h.maxTxid });
    assertEquals(formatLtxFileName(h.minTxid, h.maxTxid), name);
  }
});

const BASE: LtxHeader = {
  flags: 0,
  pageSize: 4096,
  commit: 4,
  minTxid: 2n,
  maxTxid: 4n,
  timestamp: 0,
  preApplyChecksum: 0x8e2e53a80d2fe384n,
  walOffset: 0n,
  walSize: 0n,
  walSalt1: 0,
  walSalt2: 0,
  nodeId: 0n,
};

Deno.test("validateLtxHeader: each §4.2 rule", () => {
  validateLtxHeader(BASE);
  validateLtxHeader({ ...BASE, flags: 2, preApplyChecksum: 0n });
  validateLtxHeader({ ...BASE, minTxid: 1n, preApplyChecksum: 0n });
  validateLtxHeader({ ...BASE, walOffset: 32n, walSize: 4120n, walSalt1: 1, walSalt2: 2 });
  const cases: [Partial<LtxHeader>, string][] = [
    [{ flags: 4 }, "unknown bits"],
    [{ flags: 1 }, "format 1"],
    [{ pageSize: 1000 }, "invalid page size 1000"],
    [{ pageSize: 256 }, "invalid page size 256"],
    [{ pageSize: 131072 }, "invalid page size 131072"],
    [{ minTxid: 0n }, "min TXID is 0"],
    [{ maxTxid: 1n }, "below min TXID"],
    [{ walOffset: -1n }, "negative WAL offset"],
    [{ walOffset: 32n, walSize: -1n }, "negative WAL size"],
    [{ walSize: 10n }, "WAL size 10 but no WAL offset"],
    [{ walSalt1: 7 }, "WAL salts but no WAL offset"],
    [{ minTxid: 1n }, "snapshot has pre-apply checksum"],
    [{ flags: 2 }, "NoChecksum flag"],
    [{ preApplyChecksum: 0n }, "pre-apply checksum is 0"],
    [{ preApplyChecksum: 0x0e2e53a80d2fe384n }, "lacks bit 63"],
  ];
  for (const [edit, msg] of cases) {
    assertThrows(() => validateLtxHeader({ ...BASE, ...edit }), FormatError, msg);
  }
});

Deno.test("validateLtxTrailer: §4.5 rules", () => {
  const ok = { postApplyChecksum: 0xc738a9aeecb4d8e1n, fileChecksum: 0x8000000000000001n };
  validateLtxTrailer(BASE, ok);
  assertThrows(
    () => validateLtxTrailer({ ...BASE, flags: 2 }, ok),
    FormatError,
    "NoChecksum flag",
  );
  assertThrows(
    () => validateLtxTrailer(BASE, { ...ok, postApplyChecksum: 0x4738a9aeecb4d8e1n }),
    FormatError,
    "lacks bit 63",
  );
  assertThrows(
    () => validateLtxTrailer(BASE, { ...ok, fileChecksum: 1n }),
    FormatError,
    "file checksum 0x0000000000000001 lacks bit 63",
  );
  // A "database deleted" file (commit 0) with checksums carries exactly bit 63.
  validateLtxTrailer({ ...BASE, commit: 0 }, { ...ok, postApplyChecksum: 0x8000000000000000n });
  assertThrows(
    () => validateLtxTrailer({ ...BASE, commit: 0 }, ok),
    FormatError,
    "empty database",
  );
});

Deno.test("parseLtxHeader: bad magic and short input", () => {
  const file = readFixture(LTX_FIXTURES, ROWS[0].path);
  const bad = file.slice(0, 100);
  bad[3] = 0x32; // "LTX2"
  assertThrows(() => parseLtxHeader(bad), FormatError, "not an LTX file");
  assertThrows(() => parseLtxHeader(file.subarray(0, 99)), FormatError, "truncated");
  assertThrows(() => parseLtxTrailer(file.subarray(0, 15)), FormatError, "truncated");
});

Deno.test("parseLtxFileName / formatTxid", () => {
  assertEquals(parseLtxFileName("0000000000000001-00000000000000ff.ltx"), {
    minTxid: 1n,
    maxTxid: 255n,
  });
  assertEquals(parseLtxFileName("ffffffffffffffff-ffffffffffffffff.ltx")?.maxTxid, 2n ** 64n - 1n);
  for (
    const bad of [
      "0000000000000001-0000000000000001.ltx.tmp",
      "000000000000001-0000000000000001.ltx",
      "0000000000000001-000000000000000A.ltx",
      "0000000000000001_0000000000000001.ltx",
      "x0000000000000001-0000000000000001.ltx",
    ]
  ) {
    assertEquals(parseLtxFileName(bad), undefined, bad);
  }
  assertEquals(formatTxid(1n), "0000000000000001");
  assertEquals(formatTxid(0xabcdefn), "0000000000abcdef");
  assertThrows(() => formatTxid(-1n), RangeError);
  assertThrows(() => formatTxid(2n ** 64n), RangeError);
});
