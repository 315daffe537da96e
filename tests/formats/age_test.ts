import {
  AGE_PROBE_BYTES,
  ageEncrypt,
  AgeIdentityMismatch,
  AgeKeyError,
  AgeKeyring,
  generateAgeIdentity,
  isAgeEncrypted,
  parseAgeIdentities,
  parseAgeRecipients,
  recipientOf,
} from "../../src/formats/age.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import { readAll } from "../../src/storage/storage.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";

const CHUNK = 64 * 1024;

function bytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 131 + 17) & 0xff);
}

/** Splits `data` into pieces of `size` bytes, the way a network stream arrives. */
function streamOf(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.slice(i, i + size));
  return ReadableStream.from(parts);
}

async function keyring(...ids: string[]): Promise<AgeKeyring> {
  return await AgeKeyring.create(ids.map((key) => ({ key, source: "test" })));
}

Deno.test("age: identity files: one key a line, # comments and blank lines ignored", async () => {
  const a = await generateAgeIdentity();
  const b = await generateAgeIdentity();
  const text = `# created: 2026-01-01\n# public key: age1…\n\n${a}\r\n  ${b}  \n`;
  assertEquals(parseAgeIdentities(text, "key.txt"), [
    { key: a, where: "line 4 of key.txt" },
    { key: b, where: "line 5 of key.txt" },
  ]);
  assertEquals(parseAgeIdentities("# nothing\n", "x"), []);
  const pq = assertThrows(
    () => parseAgeIdentities(`${a}\nAGE-SECRET-KEY-PQ-1QQQQ\n`, "key.txt"),
    AgeKeyError,
  );
  assertEquals(
    pq.message,
    "line 2 of key.txt is a post-quantum age identity; Litestream v0.3 uses X25519 keys (AGE-SECRET-KEY-1…) only",
  );
  const junk = assertThrows(() => parseAgeIdentities(`${a.toLowerCase()}x\n`, "f"), AgeKeyError);
  assert(junk.message.startsWith("line 1 of f is not an age X25519 identity"), junk.message);
  assert(!junk.message.includes(a.toLowerCase()), "the message must not echo the key");
  assertThrows(() => parseAgeIdentities("AGE-PLUGIN-YUBIKEY-1XYZ", "f"), AgeKeyError, "plugin");
  assertEquals(parseAgeRecipients("# r\nage1abc\n", "r"), ["age1abc"]);
  assertThrows(() => parseAgeRecipients("ssh-ed25519 AAAA", "r"), AgeKeyError, "line 1 of r");
});

Deno.test("age: the recipient of an identity; a bad checksum is an AgeKeyError", async () => {
  const id = await generateAgeIdentity();
  assert(id.startsWith("AGE-SECRET-KEY-1"));
  const r = await recipientOf(id, "x");
  assert(/^age1[0-9a-z]{58}$/.test(r), r);
  const broken = id.slice(0, -1) + (id.endsWith("Q") ? "P" : "Q");
  const err = await assertRejects(() => recipientOf(broken, "line 3 of k"), AgeKeyError);
  assertEquals(err.message, "line 3 of k is a malformed age identity (bad checksum or length)");
});

Deno.test("age: streaming round trip at STREAM chunk boundaries and odd read sizes", async () => {
  const id = await generateAgeIdentity();
  const kr = await keyring(id);
  assertEquals(kr.recipients, [await recipientOf(id, "x")]);
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5]) {
    const plain = bytes(size);
    const file = await ageEncrypt(plain, kr.recipients);
    assert(isAgeEncrypted(file.subarray(0, AGE_PROBE_BYTES)));
    for (const piece of [1, 7, 4096, 1 << 20]) {
      // Tiny pieces are slow; at boundaries they matter only around the first chunk.
      if ((piece === 1 && size > 1) || (piece === 7 && size > CHUNK + 1)) continue;
      const out = await readAll(await kr.decrypt(streamOf(file, piece)));
      assertEquals(out.length, size, `size ${size}, pieces of ${piece}`);
      assertEquals(out, plain);
    }
  }
  // Past chunk 255 the counter carries into its next byte (a 16 MiB object).
  const big = bytes(256 * CHUNK + 1);
  const bigFile = await ageEncrypt(big, kr.recipients);
  assertEquals(await readAll(await kr.decrypt(streamOf(bigFile, 1 << 20))), big);
  // The stream form of ageEncrypt gives the same kind of file.
  const streamed = await readAll(await ageEncrypt(streamOf(bytes(CHUNK * 2), 1000), kr.recipients));
  assertEquals(await readAll(await kr.decrypt(streamOf(streamed, 999))), bytes(CHUNK * 2));
});

Deno.test("age: the magic line, and only it, marks an age file", () => {
  const enc = new TextEncoder();
  assert(isAgeEncrypted(enc.encode("age-encryption.org/v1\n-> X25519 abc\n")));
  assert(!isAgeEncrypted(enc.encode("age-encryption.org/v1")), "needs the newline");
  assert(!isAgeEncrypted(enc.encode("age-encryption.org/v2\n")));
  assert(!isAgeEncrypted(new Uint8Array([0x04, 0x22, 0x4d, 0x18, 0, 0, 0, 0])), "LZ4 magic");
  assert(!isAgeEncrypted(new Uint8Array()));
});

Deno.test("age: another key is AgeIdentityMismatch; damage and truncation are FormatErrors", async () => {
  const id = await generateAgeIdentity();
  const kr = await keyring(id);
  const file = await ageEncrypt(bytes(3 * CHUNK + 100), kr.recipients);

  const other = await keyring(await generateAgeIdentity());
  await assertRejects(() => other.decrypt(streamOf(file, 4096)), AgeIdentityMismatch);
  // Any one identity that fits is enough.
  const both = await keyring(await generateAgeIdentity(), id);
  assertEquals((await readAll(await both.decrypt(streamOf(file, 4096)))).length, 3 * CHUNK + 100);

  const flipped = file.slice();
  flipped[file.length - 2 * CHUNK] ^= 0x01; // inside the second payload chunk
  const err = await assertRejects(
    async () => await readAll(await kr.decrypt(streamOf(flipped, 4096))),
    FormatError,
  );
  assert(/fails authentication after 65536 plaintext bytes/.test(err.message), err.message);

  // Cut off after a whole chunk: the last chunk must carry the final flag.
  const headerAndOneChunk = file.length - (2 * CHUNK + 100 + 2 * 16);
  const cut = file.slice(0, headerAndOneChunk);
  await assertRejects(
    async () => await readAll(await kr.decrypt(streamOf(cut, 4096))),
    FormatError,
    "damaged or truncated",
  );
  // Two full chunks swapped, or bytes appended after the last chunk: authentication fails.
  const headerLength = file.length - (3 * CHUNK + 100 + 4 * 16);
  const swapped = file.slice();
  swapped.set(file.subarray(headerLength, headerLength + CHUNK + 16), headerLength + CHUNK + 16);
  swapped.set(
    file.subarray(headerLength + CHUNK + 16, headerLength + 2 * (CHUNK + 16)),
    headerLength,
  );
  await assertRejects(
    async () => await readAll(await kr.decrypt(streamOf(swapped, 4096))),
    FormatError,
    "age payload chunk 0 fails authentication",
  );
  const appended = new Uint8Array(file.length + 20);
  appended.set(file);
  await assertRejects(
    async () => await readAll(await kr.decrypt(streamOf(appended, 4096))),
    FormatError,
    "fails authentication",
  );
  const badHeader = file.slice();
  badHeader[30] ^= 0x20; // inside the recipient stanza line
  await assertRejects(() => kr.decrypt(streamOf(badHeader, 4096)), Error);
  await assertRejects(
    () => kr.decrypt(streamOf(file.slice(0, 40), 40)),
    FormatError,
    "age header is invalid",
  );
});
