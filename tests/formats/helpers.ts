/** Small shared helpers for the decoder tests (fixtures, chunked streams, hashing). */

export const LTX_FIXTURES = new URL("../fixtures/ltx/", import.meta.url);
export const LZ4_FIXTURES = new URL("../fixtures/lz4/", import.meta.url);

export function readFixture(base: URL, path: string): Uint8Array {
  return Deno.readFileSync(new URL(path, base));
}

/** A stream delivering `data` in chunks of `size` bytes (the last may be shorter). */
export function chunked(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.slice(i, i + size));
  return ReadableStream.from(parts);
}

export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return parts;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function sha256hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data.slice());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pseudoRandom(n: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Parses a TSV with a header row into objects keyed by column name. */
export function readTsv(text: string): Record<string, string>[] {
  const [head, ...rows] = text.trim().split("\n");
  const cols = head.split("\t");
  return rows.map((r) => {
    const cells = r.split("\t");
    return Object.fromEntries(cols.map((c, i) => [c, cells[i]]));
  });
}
