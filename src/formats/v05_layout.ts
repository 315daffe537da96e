/**
 * Litestream v0.5 LTX object keys (LITESTREAM-FORMATS §3.1). File-like backends write
 * `ltx/<level>/<min>-<max>.ltx` (decimal level); S3 writes `<level as 4 hex>/<min>-<max>.ltx`.
 */
export type LtxKeyScheme = "ltx-dir" | "hex-level";

export interface V05Key {
  level: number;
  minTxid: bigint;
  maxTxid: bigint;
  scheme: LtxKeyScheme;
}

const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;
const DECIMAL_LEVEL = /^[0-9]$/;
const HEX_LEVEL = /^000[0-9]$/;

/** Parses a key relative to the replica root; undefined when it is not an LTX object name. */
export function parseV05Key(key: string): V05Key | undefined {
  // S3 keys under an empty root start with "/" (§7.1): tolerate it.
  const parts = (key.startsWith("/") ? key.slice(1) : key).split("/");
  let level: number;
  let scheme: LtxKeyScheme;
  let name: string;
  if (parts.length === 3 && parts[0] === "ltx" && DECIMAL_LEVEL.test(parts[1])) {
    level = Number(parts[1]);
    scheme = "ltx-dir";
    name = parts[2];
  } else if (parts.length === 2 && HEX_LEVEL.test(parts[0])) {
    level = Number.parseInt(parts[0], 16);
    scheme = "hex-level";
    name = parts[1];
  } else {
    return undefined;
  }
  const m = NAME.exec(name);
  if (!m) return undefined;
  const minTxid = BigInt(`0x${m[1]}`);
  const maxTxid = BigInt(`0x${m[2]}`);
  if (minTxid < 1n || maxTxid < minTxid) return undefined;
  return { level, minTxid, maxTxid, scheme };
}

export const SNAPSHOT_LEVEL = 9;
