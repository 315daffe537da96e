import { ExitCode, LitewardenError } from "../../src/errors.ts";
import { ageEncrypt, generateAgeIdentity, recipientOf } from "../../src/formats/age.ts";
import { FormatError } from "../../src/formats/format_error.ts";
import { openStorage } from "../../src/storage/open.ts";
import { readAll } from "../../src/storage/storage.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";

const KEY = "generations/0123456789abcdef/snapshots/00000000.snapshot.lz4";

function bytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
}

Deno.test("decrypting storage: age objects come out as plaintext, everything else unchanged", async () => {
  await using tmp = await makeTempDir();
  const id = await generateAgeIdentity();
  const recipient = await recipientOf(id, "t");
  const plain = bytes(200_000);
  const encrypted = await ageEncrypt(plain, [recipient]);
  await Deno.mkdir(tmp.join("generations/0123456789abcdef/snapshots"), { recursive: true });
  await Deno.writeFile(tmp.join(KEY), encrypted);
  await Deno.writeFile(tmp.join("plain.bin"), plain);
  await Deno.writeFile(tmp.join("tiny.bin"), new Uint8Array([1, 2, 3]));
  await Deno.writeFile(tmp.join("empty.bin"), new Uint8Array());
  const age = {
    identities: [{ text: `# mine\n${id}\n`, source: "key.txt" }],
    recipients: [],
    unknownKeys: [],
  };
  const storage = await openStorage({ type: "file", name: "file", path: tmp.path, age });
  assertEquals(await readAll(await storage.get(KEY)), plain);
  assertEquals(await readAll(await storage.get("plain.bin")), plain);
  assertEquals(await readAll(await storage.get("tiny.bin")), new Uint8Array([1, 2, 3]));
  assertEquals(await readAll(await storage.get("empty.bin")), new Uint8Array());
  // Ranged reads see the stored bytes (the encryption probe, LTX headers).
  assertEquals(
    await readAll(await storage.get(KEY, { offset: 0, length: 22 })),
    encrypted.subarray(0, 22),
  );

  // Without an identity: exit 2 saying what to pass.
  const none = await openStorage({ type: "file", name: "file", path: tmp.path });
  assertEquals(await readAll(await none.get("plain.bin")), plain);
  const missing = await assertRejects(() => none.get(KEY), LitewardenError);
  assertEquals(missing.exitCode, ExitCode.usage);
  assertStringIncludes(missing.message, `${KEY} at file://${tmp.path} is age-encrypted`);
  assertStringIncludes(missing.message, "--age-identity FILE");

  // Another key: exit 2 naming the recipients of the identities given, never the identities.
  const other = await generateAgeIdentity();
  const others = await recipientOf(other, "t");
  const wrong = await openStorage({
    type: "file",
    name: "file",
    path: tmp.path,
    age: { ...age, identities: [{ text: other, source: "o" }, { text: other, source: "p" }] },
  });
  const mismatch = await assertRejects(() => wrong.get(KEY), LitewardenError);
  assertEquals(mismatch.exitCode, ExitCode.usage);
  assertStringIncludes(
    mismatch.message,
    `none of the 2 age identities (recipients ${others}, ${others}) can decrypt ${KEY}`,
  );
  assert(!mismatch.message.includes(other));

  // Damage inside the payload surfaces as a FormatError while streaming (the decoders name it).
  const flipped = encrypted.slice();
  flipped[flipped.length - 1000] ^= 1;
  await Deno.writeFile(tmp.join(KEY), flipped);
  await assertRejects(async () => await readAll(await storage.get(KEY)), FormatError);
  // A broken header is damage (exit 5) at once.
  await Deno.writeFile(tmp.join(KEY), encrypted.slice(0, 60));
  const header = await assertRejects(() => storage.get(KEY), LitewardenError);
  assertEquals(header.exitCode, ExitCode.damaged);
  assertStringIncludes(header.message, `${KEY} is damaged: its age header is invalid`);

  // A malformed identity is exit 2 naming its line, not its content.
  const bad = await assertRejects(
    () =>
      openStorage({
        type: "file",
        name: "file",
        path: tmp.path,
        age: { ...age, identities: [{ text: `\n${id.slice(0, -2)}\n`, source: "k.txt" }] },
      }),
    LitewardenError,
  );
  assertEquals(bad.exitCode, ExitCode.usage);
  assertStringIncludes(bad.message, "line 2 of k.txt is a malformed age identity");
  assert(!bad.message.includes(id.slice(0, -2)));
});
