import { UsageError } from "../errors.ts";
import { formatTxid } from "../formats/ltx_header.ts";
import { formatIndex } from "../formats/v03_layout.ts";
import { formatTime } from "../lib/format.ts";

/**
 * A point a restore reaches, in either history format. This module owns how a point is written
 * everywhere (as ltx's TXID type owns ParseTXID/String/MarshalJSON): every command prints a point
 * with {@link describePoint}, names the flags that restore it with {@link restoreFlags}, and
 * writes it to JSON with {@link pointJson}; what it prints parses back through
 * {@link parsePointFlags}.
 *
 * A v0.3 WAL index and segment offset print as 8 lowercase hex digits, as Litestream names the
 * objects (`00000005_00001038.wal.lz4`) and as `--index`/`--offset` read them; a TXID as 16.
 */
export type RestorePoint = V03Point | V05Point;

/**
 * v0.3: through the end of WAL `index` of `generation`, or, with `offset`, through the WAL
 * segment that starts at that byte offset of the index (a segment boundary: Litestream uploads
 * whole transactions, so every boundary is a consistent database).
 */
export interface V03Point {
  format: "v0.3";
  generation: string;
  index: number;
  offset?: number;
  /** Time of the newest object the point includes. */
  time: Date;
}

/** v0.5: the database after transaction `txid`. */
export interface V05Point {
  format: "v0.5";
  /** 16 lowercase hex digits, as LTX file names and `--txid` spell it (`BigInt(\`0x${txid}\`)`). */
  txid: string;
  /** The LTX header timestamp of the file that reaches `txid`. */
  time: Date;
}

export function v03Point(generation: string, index: number, time: Date, offset?: number): V03Point {
  return offset === undefined
    ? { format: "v0.3", generation, index, time }
    : { format: "v0.3", generation, index, offset, time };
}

export function v05Point(txid: bigint, time: Date): V05Point {
  return { format: "v0.5", txid: formatTxid(txid), time };
}

/** What to restore to: latest when empty; at most one of timestamp / index / txid. */
export interface RestoreRequest {
  timestamp?: Date;
  /** v0.3 WAL index: restore through the end of it (or through the segment at `offset`). */
  index?: number;
  /** v0.3, with `index`: the byte offset of the last WAL segment to apply. */
  offset?: number;
  /** v0.5 TXID. */
  txid?: bigint;
  generation?: string;
}

/** The point-choosing flags as commander hands them over (restore, verify, snapshot-diff). */
export interface PointFlags {
  timestamp?: string;
  index?: string;
  offset?: string;
  txid?: string;
  generation?: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** `--timestamp`, `--index` [`--offset`], `--txid`, `--generation` → a request. */
export function parsePointFlags(flags: PointFlags): RestoreRequest {
  const given = [flags.timestamp, flags.index, flags.txid].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError("use only one of --timestamp, --index and --txid");
  if (flags.offset !== undefined && flags.index === undefined) {
    throw new UsageError("--offset names a WAL segment of an index: give --index too");
  }
  const req: RestoreRequest = {};
  if (flags.generation !== undefined) req.generation = parseGeneration(flags.generation);
  if (flags.timestamp !== undefined) req.timestamp = parseTimestamp(flags.timestamp);
  if (flags.index !== undefined) req.index = parseHex32(flags.index, "--index", "WAL index");
  if (flags.offset !== undefined) {
    req.offset = parseHex32(flags.offset, "--offset", "WAL segment offset");
  }
  if (flags.txid !== undefined) req.txid = parseTxid(flags.txid);
  return req;
}

/**
 * One point as `snapshot-diff --from/--to` spell it: `latest`, an RFC 3339 time, `index:HEX`,
 * `index:HEX_HEX` (index and segment offset, as the segment's object is named) or `txid:HEX`.
 */
export function parsePointSpec(
  spec: string,
  generation: string | undefined,
  flag: string,
): RestoreRequest {
  if (spec === "latest") return parsePointFlags({ generation });
  const index = /^index:([^_]*)(?:_(.*))?$/.exec(spec);
  if (index) return parsePointFlags({ index: index[1], offset: index[2], generation });
  const txid = /^txid:(.*)$/.exec(spec);
  if (txid) return parsePointFlags({ txid: txid[1], generation });
  if (/^\d{4}-/.test(spec)) return parsePointFlags({ timestamp: spec, generation });
  throw new UsageError(
    `invalid ${flag} ${spec}: use an RFC 3339 time, index:HEX, index:HEX_OFFSET, txid:HEX, latest or file:PATH`,
  );
}

/** The `snapshot-diff` spelling of a point (`index:…` or `txid:…`), parsed by parsePointSpec. */
export function pointSpec(p: RestorePoint): string {
  if (p.format === "v0.5") return `txid:${p.txid}`;
  return `index:${formatIndex(p.index)}${
    p.offset === undefined ? "" : `_${formatIndex(p.offset)}`
  }`;
}

function parseGeneration(s: string): string {
  if (!/^[0-9a-f]{16}$/.test(s)) {
    throw new UsageError(`invalid --generation ${s}: expected 16 lowercase hex digits`);
  }
  return s;
}

function parseTimestamp(s: string): Date {
  const t = new Date(s);
  if (!RFC3339.test(s) || Number.isNaN(t.getTime())) {
    throw new UsageError(`invalid --timestamp ${s}: use RFC 3339, e.g. 2026-11-20T09:00:00Z`);
  }
  return t;
}

/** Hex, as Litestream's `-index` (base 16, must fit a signed 32-bit integer). */
function parseHex32(s: string, flag: string, what: string): number {
  if (!/^[0-9a-fA-F]{1,8}$/.test(s) || Number.parseInt(s, 16) > 0x7fffffff) {
    throw new UsageError(`invalid ${flag} ${s}: expected a hexadecimal ${what}, e.g. 1f`);
  }
  return Number.parseInt(s, 16);
}

function parseTxid(s: string): bigint {
  if (!/^[0-9a-fA-F]{16}$/.test(s)) {
    throw new UsageError(`invalid --txid ${s}: expected exactly 16 hex digits`);
  }
  return BigInt(`0x${s}`);
}

/**
 * A time to the millisecond when it has milliseconds, else to the second like every printed
 * time: for times that must restore when pasted into `--timestamp`.
 */
export function formatInstant(d: Date): string {
  return d.getUTCMilliseconds() === 0 ? formatTime(d) : d.toISOString();
}

/** The request that restores exactly `p` (what {@link restoreFlags} spells). */
export function requestFor(p: RestorePoint): RestoreRequest {
  if (p.format === "v0.5") return { txid: BigInt(`0x${p.txid}`) };
  return p.offset === undefined
    ? { generation: p.generation, index: p.index }
    : { generation: p.generation, index: p.index, offset: p.offset };
}

/**
 * `generation 0123456789abcdef index 0000001f` (`… offset 00001038` for a segment boundary) or
 * `TXID 000000000000002a`: the one human spelling of a point, in every command.
 */
export function describePoint(p: RestorePoint): string {
  if (p.format === "v0.5") return `TXID ${p.txid}`;
  const offset = p.offset === undefined ? "" : ` offset ${formatIndex(p.offset)}`;
  return `generation ${p.generation} index ${formatIndex(p.index)}${offset}`;
}

/** `2026-11-20T09:00:00Z (generation … index 0000001f)`, or `(…, <note>)` with a note. */
export function describePointAt(p: RestorePoint, note?: string): string {
  return `${formatTime(p.time)} (${describePoint(p)}${note ? `, ${note}` : ""})`;
}

/**
 * `2026-11-20T09:00:00Z (generation … index 0000001f), --generation … --index 0000001f`: a point
 * an error sends the operator to, with the flags that restore it.
 */
export function describePointWithFlags(p: RestorePoint): string {
  return `${describePointAt(p)}, ${restoreFlags(p)}`;
}

/** The exact restore flags of this point, pasteable into `restore`/`verify`. */
export function restoreArgs(p: RestorePoint): string[] {
  if (p.format === "v0.5") return ["--txid", p.txid];
  const args = ["--generation", p.generation, "--index", formatIndex(p.index)];
  return p.offset === undefined ? args : [...args, "--offset", formatIndex(p.offset)];
}

/** {@link restoreArgs} as one string: `--generation G --index 0000001f` or `--txid T`. */
export function restoreFlags(p: RestorePoint): string {
  return restoreArgs(p).join(" ");
}

/**
 * What a request asked for, in the words of {@link describePoint}; numbers in short hex, as the
 * operator typed them (the answer then names the point found in full).
 */
export function describeRequest(req: RestoreRequest): string {
  const within = req.generation !== undefined ? ` of generation ${req.generation}` : "";
  if (req.timestamp) return `timestamp ${formatInstant(req.timestamp)}${within}`;
  if (req.index !== undefined) {
    const offset = req.offset === undefined ? "" : ` offset ${req.offset.toString(16)}`;
    return `index ${req.index.toString(16)}${offset}${within}`;
  }
  if (req.txid !== undefined) return `TXID ${formatTxid(req.txid)}`;
  return `the latest point${within}`;
}

/** Whether a request names a point (not "the latest"). */
export function requestsPoint(req: RestoreRequest): boolean {
  return req.timestamp !== undefined || req.index !== undefined || req.txid !== undefined;
}

/**
 * The stable JSON form of a point (documented in README.md); `ageSeconds` is measured at `now`.
 * `offset` is present only for a segment-boundary point, so every other point keeps the six keys
 * scripts read.
 */
export interface RestorePointJson {
  format: "v0.3" | "v0.5";
  generation: string | null;
  /** The WAL index as a number (JSON readers); `--index` takes it in hex, see restoreFlags. */
  index: number | null;
  /** The WAL segment offset of a segment-boundary point (a number, like `index`). */
  offset?: number;
  txid: string | null;
  time: string;
  ageSeconds: number;
}

export function pointJson(p: RestorePoint, now: Date): RestorePointJson;
export function pointJson(p: RestorePoint | undefined | null, now: Date): RestorePointJson | null;
export function pointJson(p: RestorePoint | undefined | null, now: Date): RestorePointJson | null {
  if (!p) return null;
  return {
    format: p.format,
    generation: p.format === "v0.3" ? p.generation : null,
    index: p.format === "v0.3" ? p.index : null,
    ...(p.format === "v0.3" && p.offset !== undefined ? { offset: p.offset } : {}),
    txid: p.format === "v0.5" ? p.txid : null,
    time: p.time.toISOString(),
    ageSeconds: Math.round((now.getTime() - p.time.getTime()) / 1000),
  };
}

/** Same format and position (times aside). */
export function samePoint(a: RestorePoint, b: RestorePoint): boolean {
  if (a.format === "v0.5" || b.format === "v0.5") {
    return a.format === b.format && (a as V05Point).txid === (b as V05Point).txid;
  }
  return a.generation === b.generation && a.index === b.index && a.offset === b.offset;
}

/** The newer of two points (by time); either may be missing. */
export function newerPoint<P extends RestorePoint>(
  a: P | undefined,
  b: P | undefined,
): P | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.time > a.time ? b : a;
}
