/**
 * Malformed or corrupt replica data found by a decoder. The message says what failed and where
 * (byte offset, page or frame number); callers prefix the object name and map it to exit code 5.
 */
export class FormatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FormatError";
  }
}

/** `0x`-prefixed lowercase hex of a 32-bit value, zero-padded to 8 digits, for messages. */
export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}

/** `0x`-prefixed lowercase hex of a 64-bit value, zero-padded to 16 digits, for messages. */
export function hex64(n: bigint): string {
  return `0x${BigInt.asUintN(64, n).toString(16).padStart(16, "0")}`;
}
