/**
 * Seeded mutation fuzzing of every decoder, in-process for volume: real replica objects (the
 * sample's Litestream v0.3.13 LZ4 snapshot and WAL segments, the LZ4 fixtures, the LTX files of
 * Litestream v0.5, SQLite database headers, object names) are mutated thousands of times. Each
 * case must end in a result or a FormatError (the decoder's documented failure, exit 5 upstream):
 * no other exception, no hang, bounded memory; and where the format carries a checksum, a
 * result must be the original's (a mutation is never decoded into other data).
 *
 * Reproduce a failure from the seed in its message: `new Rng(seed)` replays the same mutation.
 */
import {
  ageEncrypt,
  AgeIdentityMismatch,
  AgeKeyring,
  generateAgeIdentity,
  recipientOf,
} from "../../src/formats/age.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import { LtxDecoder } from "../../src/formats/ltx_decoder.ts";
import { lz4DecodeFrames, lz4FrameDecoderStream } from "../../src/formats/lz4.ts";
import { parseDatabaseHeader, SQLITE_HEADER_SIZE } from "../../src/formats/sqlite_header.ts";
import {
  parseWalHeader,
  readWalPageMap,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  WalFrameValidator,
  WalReader,
} from "../../src/formats/sqlite_wal.ts";
import { StreamReader } from "../../src/formats/stream_reader.ts";
import { parseV03Key } from "../../src/formats/v03_layout.ts";
import { parseV05Key } from "../../src/formats/v05_layout.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { mutate, mutateSome, Rng } from "../support/mutate.ts";
import type { Region } from "../support/mutate.ts";
import { chunked, collect, concat } from "./helpers.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica/", import.meta.url).pathname;
const LZ4_DIR = new URL("../fixtures/lz4/", import.meta.url).pathname;
const LTX_DIR = new URL("../fixtures/ltx/", import.meta.url).pathname;
const HEAP_LIMIT = 768 * 1024 * 1024;
const HANG_MS = 10_000;

function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir.replace(/\/$/, "")}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(p, suffix));
    else if (e.name.endsWith(suffix)) out.push(p);
  }
  return out.sort();
}

const sampleLz4 = filesUnder(SAMPLE, ".lz4");
const regions: Region[] = ["anywhere", "head", "tail"];

/** Runs `cases` seeded cases; only FormatError may be thrown; heap stays bounded. */
async function fuzz(
  name: string,
  cases: number,
  one: (rng: Rng, seed: number) => Promise<void> | void,
): Promise<{ rejected: number; accepted: number }> {
  let rejected = 0;
  let accepted = 0;
  for (let seed = 1; seed <= cases; seed++) {
    const rng = new Rng(seed * 7919 + name.length);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        one(rng, seed),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name} seed ${seed}: hang`)), HANG_MS);
        }),
      ]);
      accepted++;
    } catch (err) {
      if (!(err instanceof FormatError)) {
        throw new Error(`${name} seed ${seed}: ${err instanceof Error ? err.stack : err}`);
      }
      rejected++;
    } finally {
      clearTimeout(timer);
    }
    if (seed % 250 === 0) {
      const heap = Deno.memoryUsage().heapUsed;
      assert(heap < HEAP_LIMIT, `${name} seed ${seed}: heap ${heap} bytes`);
    }
  }
  return { rejected, accepted };
}

const equal = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

Deno.test("fuzz LZ4: Litestream's frames and the fixtures, whole-buffer and streaming", async () => {
  const litestream = sampleLz4.map((p) => ({ p, bytes: Deno.readFileSync(p) }));
  const fixtures = filesUnder(LZ4_DIR, ".lz4").map((p) => ({ p, bytes: Deno.readFileSync(p) }));
  const clean = new Map(litestream.map((o) => [o.p, lz4DecodeFrames(o.bytes)]));
  const stats = await fuzz("lz4 litestream", 2500, (rng, seed) => {
    const o = rng.pick(litestream);
    const m = mutate(o.bytes, rng, rng.pick(regions));
    const out = lz4DecodeFrames(m.bytes);
    // Litestream writes content checksums: a decoded result can only be the original.
    assert(equal(out, clean.get(o.p)!), `seed ${seed} ${o.p}: ${m.what} decoded to other data`);
  });
  assert(stats.rejected > 2000, `only ${stats.rejected} of 2500 mutations rejected`);
  await fuzz("lz4 fixtures", 1500, (rng) => {
    lz4DecodeFrames(mutateSome(rng.pick(fixtures).bytes, rng, rng.pick(regions)).bytes);
  });
  // The streaming decoder, in odd chunkings, agrees with the whole-buffer one.
  await fuzz("lz4 stream", 600, async (rng, seed) => {
    const o = rng.pick(litestream);
    const m = mutate(o.bytes, rng, rng.pick(regions));
    let whole: Uint8Array | FormatError;
    try {
      whole = lz4DecodeFrames(m.bytes);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      whole = err;
    }
    const parts: Uint8Array[] = [];
    try {
      for await (
        const c of chunked(m.bytes, 1 + rng.int(700)).pipeThrough(lz4FrameDecoderStream())
      ) {
        parts.push(c);
      }
    } catch (err) {
      assert(whole instanceof FormatError, `seed ${seed}: only the stream failed: ${err}`);
      throw err;
    }
    assert(!(whole instanceof FormatError), `seed ${seed}: only the buffer decode failed`);
    assert(equal(concat(parts), whole), `seed ${seed}: stream and buffer disagree`);
  });
});

/** The sample's WAL indexes, each its segments joined: header and frames as SQLite wrote them. */
function sampleWals(): Uint8Array[] {
  const byIndex = new Map<string, Uint8Array[]>();
  // By file name, not by a "/wal/" anywhere in the path (a checkout can live in a dir named wal).
  for (const p of sampleLz4.filter((p) => p.endsWith(".wal.lz4"))) {
    const index = p.slice(p.lastIndexOf("/") + 1).split("_")[0];
    byIndex.set(index, [...(byIndex.get(index) ?? []), lz4DecodeFrames(Deno.readFileSync(p))]);
  }
  return [...byIndex.values()].map((parts) => concat(parts)).filter((w) =>
    w.length > WAL_HEADER_SIZE
  );
}

/** Frames the validator accepts, as byte ranges of `wal`. */
function acceptedFrames(wal: Uint8Array): Uint8Array[] {
  const header = parseWalHeader(wal.subarray(0, WAL_HEADER_SIZE));
  const v = new WalFrameValidator(header);
  const size = WAL_FRAME_HEADER_SIZE + header.pageSize;
  const frames: Uint8Array[] = [];
  for (let at = WAL_HEADER_SIZE; at + size <= wal.length; at += size) {
    const frame = wal.subarray(at, at + size);
    if (
      !v.accept(frame.subarray(0, WAL_FRAME_HEADER_SIZE), frame.subarray(WAL_FRAME_HEADER_SIZE))
    ) {
      break;
    }
    frames.push(frame);
  }
  assert(v.committedFrames <= v.frames);
  return frames;
}

Deno.test("fuzz WAL: header and frame checks never accept a mutated frame", async () => {
  const wals = sampleWals();
  assert(wals.length >= 3, "the sample has several WAL indexes");
  const clean = wals.map(acceptedFrames);
  await fuzz("wal", 2500, (rng, seed) => {
    const i = rng.int(wals.length);
    const m = mutate(wals[i], rng, rng.pick(regions));
    const frames = acceptedFrames(m.bytes);
    // Every accepted frame is the original's frame at that position (checksums chain them).
    for (const [k, f] of frames.entries()) {
      assert(k < clean[i].length && equal(f, clean[i][k]), `seed ${seed}: ${m.what}: frame ${k}`);
    }
  });
});

Deno.test("fuzz WalReader: streamed in odd chunks, its page map holds only original frames", async () => {
  const wals = sampleWals();
  const clean = wals.map(acceptedFrames);
  await fuzz("wal reader", 1500, async (rng, seed) => {
    const i = rng.int(wals.length);
    const m = mutate(wals[i], rng, rng.pick(regions));
    const wal = await WalReader.open(new StreamReader(chunked(m.bytes, 1 + rng.int(9000))));
    const map = await readWalPageMap(wal);
    const what = `seed ${seed}: ${m.what}`;
    assert(map.committedFrames <= map.frames && map.frames <= clean[i].length, what);
    // The stream reader agrees with the buffer-based validator on where the valid WAL ends.
    let whole: number;
    try {
      whole = acceptedFrames(m.bytes).length;
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      whole = -1;
    }
    assertEquals(map.frames, whole, what);
    const frameSize = WAL_FRAME_HEADER_SIZE + map.header.pageSize;
    for (const [pgno, offset] of map.pages) {
      assert(pgno >= 1 && pgno <= map.databaseSize, `${what}: page ${pgno}`);
      const k = (offset - WAL_HEADER_SIZE - WAL_FRAME_HEADER_SIZE) / frameSize;
      assert(Number.isInteger(k) && k < map.committedFrames, `${what}: offset ${offset}`);
      const page = m.bytes.subarray(offset, offset + map.header.pageSize);
      assert(equal(page, clean[i][k].subarray(WAL_FRAME_HEADER_SIZE)), `${what}: frame ${k}`);
    }
  });
});

Deno.test("fuzz LTX: every Litestream v0.5 file, header, pages, index and trailer", async () => {
  const files = filesUnder(LTX_DIR, ".ltx").map((p) => Deno.readFileSync(p));
  assert(files.length >= 20);
  const decode = async (bytes: Uint8Array, chunk: number) => {
    const d = new LtxDecoder(chunked(bytes, chunk));
    await d.readHeader();
    const pages: Uint8Array[] = [];
    for await (const p of d.pages()) pages.push(concat([new Uint8Array([p.pgno & 0xff]), p.data]));
    return concat(pages);
  };
  const clean = await Promise.all(files.map((f) => decode(f, 4096)));
  const stats = await fuzz("ltx", 2500, async (rng, seed) => {
    const i = rng.int(files.length);
    const m = mutate(files[i], rng, rng.pick(regions));
    const pages = await decode(m.bytes, 1 + rng.int(5000));
    // The CRC-64 file checksum covers everything: a completed decode is the original.
    assert(equal(pages, clean[i]), `seed ${seed}: ${m.what} decoded to other pages`);
  });
  assert(stats.rejected > 2000, `only ${stats.rejected} of 2500 mutations rejected`);
});

Deno.test("fuzz SQLite headers and object names: parse or refuse, never crash", async () => {
  const dbs = filesUnder(`${LTX_DIR}states`, ".db").map((p) =>
    Deno.readFileSync(p).subarray(0, SQLITE_HEADER_SIZE)
  );
  await fuzz("sqlite header", 1500, (rng) => {
    const h = mutate(rng.pick(dbs), rng, "anywhere").bytes;
    const parsed = parseDatabaseHeader(h);
    assert(parsed.pageSize >= 512 && parsed.pageSize <= 65536, `page size ${parsed.pageSize}`);
  });
  const names = [
    ...sampleLz4.map((p) => p.slice(SAMPLE.length)),
    ...filesUnder(LTX_DIR, ".ltx").map((p) => p.slice(p.indexOf("/ltx/", LTX_DIR.length) + 1)),
  ];
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const clean = new Map(names.map((n) => [n, [parseV03Key(n), parseV05Key(n)]]));
  await fuzz("object names", 2000, (rng, seed) => {
    const name = rng.pick(names);
    const mutated = dec.decode(mutate(enc.encode(name), rng).bytes);
    const parsed = [parseV03Key(mutated), parseV05Key(mutated)];
    if (mutated === name) assertEquals(parsed, clean.get(name), `seed ${seed}`);
  });
});

Deno.test("fuzz age: mutated encrypted objects never decrypt to other data", async () => {
  const identity = await generateAgeIdentity();
  const keyring = await AgeKeyring.create([{ key: identity, source: "fuzz" }]);
  const recipient = await recipientOf(identity, "fuzz");
  // Litestream encrypts each object whole; a snapshot and WAL segments of the sample.
  const plain = sampleLz4.slice(0, 6).map((p) => Deno.readFileSync(p));
  const sealed = await Promise.all(plain.map((p) => ageEncrypt(p, [recipient])));
  let mismatched = 0;
  const stats = await fuzz("age", 600, async (rng, seed) => {
    const i = rng.int(sealed.length);
    const m = mutate(sealed[i], rng, rng.pick(regions));
    let out: Uint8Array;
    try {
      out = concat(await collect(await keyring.decrypt(chunked(m.bytes, 1 + rng.int(4000)))));
    } catch (err) {
      // A damaged recipient stanza reads as "encrypted for another key" (exit 2 upstream).
      if (!(err instanceof AgeIdentityMismatch)) throw err;
      mismatched++;
      return;
    }
    // STREAM chunks are authenticated: a decryption that completes is the original.
    assert(equal(out, plain[i]), `seed ${seed}: ${m.what} decrypted to other data`);
  });
  assert(stats.rejected + mismatched > 500, `only ${stats.rejected} + ${mismatched} rejected`);
});
