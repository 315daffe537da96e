/**
 * Throughput of the hot decoders: `deno bench -A tests/formats/`. Divide the bytes named in each
 * bench by its time per iteration for MB/s (pages.db: 90112 bytes of real SQLite pages).
 */
import { crc64 } from "../../src/formats/crc64.ts";
import { lz4DecodeFrames, lz4FrameDecoderStream } from "../../src/formats/lz4.ts";
import { xxhash32 } from "../../src/formats/xxhash32.ts";
import { chunked, LZ4_FIXTURES, pseudoRandom, readFixture } from "./helpers.ts";

const pagesB4 = readFixture(LZ4_FIXTURES, "pages.db.B4.lz4");
const pagesB4D = readFixture(LZ4_FIXTURES, "pages.db.B4D.lz4");
const data4m = pseudoRandom(4 << 20, 11);

Deno.bench("lz4DecodeFrames pages.db.B4 (90112 bytes out)", () => {
  lz4DecodeFrames(pagesB4);
});

Deno.bench("lz4DecodeFrames pages.db.B4D linked (90112 bytes out)", () => {
  lz4DecodeFrames(pagesB4D);
});

Deno.bench("lz4FrameDecoderStream pages.db.B4, 16 KiB chunks (90112 bytes out)", async () => {
  for await (const _ of chunked(pagesB4, 16384).pipeThrough(lz4FrameDecoderStream())) {
    // Consume.
  }
});

Deno.bench("crc64 (4 MiB)", () => {
  crc64(data4m);
});

Deno.bench("xxhash32 (4 MiB)", () => {
  xxhash32(data4m);
});
