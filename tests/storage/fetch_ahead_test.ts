import { fetchAhead } from "../../src/storage/fetch_ahead.ts";
import { FileStorage } from "../../src/storage/file.ts";
import type { ObjectInfo } from "../../src/storage/storage.ts";
import { readAll } from "../../src/storage/storage.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { bytes } from "../support/bytes.ts";
import { makeTempDir } from "../support/tmp.ts";

/** A file replica of `sizes.length` objects with deterministic contents; and a probe around it. */
async function objects(dir: string, sizes: number[]) {
  const storage = new FileStorage(dir);
  for (const [i, n] of sizes.entries()) {
    await Deno.writeFile(`${dir}/obj${String(i).padStart(3, "0")}`, bytes(n, i + 1));
  }
  const items: ObjectInfo[] = [];
  for await (const o of storage.list("")) items.push(o);
  // What the downloads did: bytes read from storage but not yet handed to the consumer, and
  // downloads open at once (from GET to the end of its body), at their worst.
  const probe = { read: 0, consumed: 0, maxAhead: 0, open: 0, maxOpen: 0, gets: [] as string[] };
  const open = async (o: ObjectInfo) => {
    probe.gets.push(o.key);
    probe.open++;
    probe.maxOpen = Math.max(probe.maxOpen, probe.open);
    const body = await storage.get(o.key);
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctrl) {
          probe.read += chunk.length;
          probe.maxAhead = Math.max(probe.maxAhead, probe.read - probe.consumed);
          ctrl.enqueue(chunk);
        },
        flush() {
          probe.open--;
        },
      }),
    );
  };
  return { items, open, probe };
}

async function consume(stream: ReadableStream<Uint8Array>, probe: { consumed: number }) {
  const parts: Uint8Array[] = [];
  for await (const c of stream) {
    probe.consumed += c.length;
    parts.push(c);
  }
  return await readAll(ReadableStream.from(parts));
}

Deno.test("fetchAhead: every object in order, byte for byte, holding no more than the budget", async () => {
  await using tmp = await makeTempDir();
  const sizes = [3 << 20, ...Array.from({ length: 40 }, (_, i) => 50_000 + i * 7_000), 2 << 20, 10];
  const { items, open, probe } = await objects(tmp.path, sizes);
  const budget = 1 << 20;
  let i = 0;
  for await (
    const { item, stream } of fetchAhead(items, open, { maxBytesAhead: budget, maxRequests: 6 })
  ) {
    assertEquals(item.key, items[i].key);
    assertEquals(await consume(stream, probe), bytes(sizes[i], i + 1));
    // Let the read-ahead run while "applying" (as a restore writes pages).
    await new Promise((r) => setTimeout(r, 2));
    i++;
  }
  assertEquals(i, sizes.length);
  assertEquals(probe.gets, items.map((o) => o.key));
  // The head streams; the rest is held up to the budget (plus a chunk per open download).
  assert(probe.maxAhead <= budget + 6 * (256 << 10), `held ${probe.maxAhead} bytes ahead`);
  assert(probe.maxAhead > 200_000, `read ahead only ${probe.maxAhead} bytes`);
  assert(probe.maxOpen <= 6, `${probe.maxOpen} downloads open at once`);
  assert(probe.maxOpen > 1, "never more than one download at once");
});

Deno.test("fetchAhead: objects are requested before the consumer asks, as many as the budget holds", async () => {
  await using tmp = await makeTempDir();
  const { items, open, probe } = await objects(tmp.path, Array(20).fill(1000));
  for (const [budget, expected] of [[5500, 6], [1 << 20, 20]]) {
    probe.gets = [];
    const gen = fetchAhead(items, open, { maxBytesAhead: budget, maxRequests: 12 });
    const first = await gen.next();
    assert(!first.done);
    // Nothing consumed yet: the head and what fits the budget after it are requested (small
    // bodies end at once, so maxRequests does not bind).
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(probe.gets.length, expected, `budget ${budget}`);
    await first.value.stream.cancel();
    await gen.return(undefined);
  }
});

Deno.test("fetchAhead: a missing object fails at its turn, after the ones before it", async () => {
  await using tmp = await makeTempDir();
  const { items, open, probe } = await objects(tmp.path, [1000, 2000, 3000, 4000]);
  await Deno.remove(`${tmp.path}/${items[2].key}`);
  const got: string[] = [];
  let failure: unknown;
  try {
    for await (const { item, stream } of fetchAhead(items, open, { maxRequests: 4 })) {
      await consume(stream, probe);
      got.push(item.key);
    }
  } catch (err) {
    failure = err;
  }
  assertEquals(got, [items[0].key, items[1].key]);
  assert(failure instanceof Error && failure.message.includes(items[2].key), String(failure));
});

Deno.test("fetchAhead: stopping early cancels the downloads still open", async () => {
  await using tmp = await makeTempDir();
  const { items, open } = await objects(tmp.path, Array(8).fill(600_000));
  const gen = fetchAhead(items, open, { maxBytesAhead: 4 << 20, maxRequests: 8 });
  const first = await gen.next();
  assert(!first.done);
  await first.value.stream.cancel();
  await gen.return(undefined);
  // No read-ahead goes on: Deno's leak check fails the test on an unfinished read or open file.
});
