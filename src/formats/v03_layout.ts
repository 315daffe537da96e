/**
 * Litestream v0.3 object names (LITESTREAM-FORMATS §2.1), including the legacy variants a
 * reader meets in old replicas: v0.4-dev nested WAL names with 8 or 16 hex digits, and
 * v0.3.0–0.3.4 whole-file WALs (`<idx8>.wal`, `<idx8>.wal.lz4`) and uncompressed snapshots.
 */
export type V03Key =
  | { kind: "snapshot"; generation: string; index: number; compressed: boolean }
  | { kind: "wal"; generation: string; index: number; offset: number; compressed: boolean };

const GENERATION = /^[0-9a-f]{16}$/;
const SNAPSHOT = /^([0-9a-f]{8}|[0-9a-f]{16})\.snapshot(\.lz4)?$/;
const SEGMENT = /^([0-9a-f]{8})_([0-9a-f]{8,16})\.wal\.lz4$/;
const WHOLE_WAL = /^([0-9a-f]{8})\.wal(\.lz4)?$/;
const NESTED_INDEX = /^([0-9a-f]{8}|[0-9a-f]{16})$/;
const NESTED_OFFSET = /^([0-9a-f]{8}|[0-9a-f]{16})\.wal\.lz4$/;

/** Parses a key relative to the replica root; undefined when it is not a v0.3 object name. */
export function parseV03Key(key: string): V03Key | undefined {
  const parts = key.split("/");
  if (parts[0] !== "generations" || parts.length < 4 || !GENERATION.test(parts[1])) {
    return undefined;
  }
  const generation = parts[1];
  if (parts[2] === "snapshots" && parts.length === 4) {
    const m = SNAPSHOT.exec(parts[3]);
    if (!m) return undefined;
    return { kind: "snapshot", generation, index: hex(m[1]), compressed: m[2] !== undefined };
  }
  if (parts[2] !== "wal") return undefined;
  if (parts.length === 4) {
    const seg = SEGMENT.exec(parts[3]);
    if (seg) {
      return {
        kind: "wal",
        generation,
        index: hex(seg[1]),
        offset: hex(seg[2]),
        compressed: true,
      };
    }
    const whole = WHOLE_WAL.exec(parts[3]);
    if (whole) {
      return { kind: "wal", generation, index: hex(whole[1]), offset: 0, compressed: !!whole[2] };
    }
    return undefined;
  }
  if (parts.length === 5 && NESTED_INDEX.test(parts[3])) {
    const off = NESTED_OFFSET.exec(parts[4]);
    if (!off) return undefined;
    return {
      kind: "wal",
      generation,
      index: hex(parts[3]),
      offset: hex(off[1]),
      compressed: true,
    };
  }
  return undefined;
}

/** WAL indices are capped at 0x7FFFFFFF by the writer; 16-hex legacy names still fit a double. */
function hex(s: string): number {
  return Number.parseInt(s, 16);
}

/** Litestream's own names for new objects, used in messages: `00000001_00001000.wal.lz4`. */
export function formatIndex(index: number): string {
  return index.toString(16).padStart(8, "0");
}

export function segmentName(index: number, offset: number): string {
  return `${formatIndex(index)}_${offset.toString(16).padStart(8, "0")}.wal.lz4`;
}
