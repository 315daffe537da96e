import { FileStorage } from "../../src/storage/file.ts";
import { bytesSource } from "../../src/storage/storage.ts";
import {
  contentDigest,
  FILES_BASE,
  isVaultFileRel,
  listFileObjects,
  listVersions,
  localPathOf,
  parseVersionKey,
  versionAt,
  versionKey,
} from "../../src/replica/vault_files.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { withTempDir } from "../support/tmp.ts";

Deno.test("version keys: time order is key order; parse is the inverse of print", async () => {
  const digest = await contentDigest(new TextEncoder().encode("key"));
  assertEquals(digest.length, 16);
  const t = new Date("2026-12-04T04:15:00.123Z");
  const key = versionKey("rsa_key.pem", t, digest, true);
  assertEquals(key, `versions/rsa_key.pem/20261204T041500.123Z-${digest}.age`);
  assertEquals(parseVersionKey(key), { name: "rsa_key.pem", time: t, digest, encrypted: true });
  assertEquals(
    parseVersionKey(versionKey("config.json", t, digest, false))?.encrypted,
    false,
  );
  const later = versionKey("rsa_key.pem", new Date("2026-12-04T04:15:01Z"), digest, false);
  assert(key < later);
  for (
    const bad of [
      "versions/other.pem/20261204T041500.123Z-0123456789abcdef",
      "versions/rsa_key.pem/20261204T041500Z-0123456789abcdef",
      "versions/rsa_key.pem/20261204T041500.123Z-0123456789abcde",
      "versions/rsa_key.pem/x/20261204T041500.123Z-0123456789abcdef",
      "attachments/a/b",
    ]
  ) assertEquals(parseVersionKey(bad), undefined, bad);
});

Deno.test("isVaultFileRel and localPathOf: only safe three-part paths", () => {
  assert(isVaultFileRel("attachments/0f8b5a3c-2d1e-4c6b-9a7f-1e2d3c4b5a69/0123456789abcdef0123"));
  assert(isVaultFileRel("sends/abc/def"));
  for (
    const bad of [
      "attachments/../x",
      "attachments/a/..",
      "sends/a",
      "icon_cache/a/b",
      "attachments/a/b/c",
      "attachments/a/.b.tmp",
    ]
  ) {
    assert(!isVaultFileRel(bad), bad);
  }
  const paths = {
    dataDir: "/data",
    attachmentsDir: "/data/attachments",
    sendsDir: undefined,
    secrets: { "rsa_key.pem": undefined, "config.json": undefined },
  };
  assertEquals(localPathOf(paths, "attachments/c/i"), "/data/attachments/c/i");
  assertEquals(localPathOf(paths, "sends/s/f"), undefined);
});

Deno.test("listFileObjects and listVersions read the layout; versionAt is the newest at or before", async () => {
  await withTempDir(async (dir) => {
    const storage = new FileStorage(dir);
    const store = { storage, base: FILES_BASE };
    const put = (key: string, text: string) =>
      storage.putStream(FILES_BASE + key, bytesSource(new TextEncoder().encode(text)));
    await put("attachments/c1/a1", "one");
    await put("sends/s1/f1", "two!");
    await put("attachments/c1/.a2.litewarden-1-2-deadbeef.tmp", "temp"); // not an object
    const t1 = new Date("2026-12-01T00:00:00Z");
    const t2 = new Date("2026-12-02T00:00:00Z");
    await put(versionKey("rsa_key.pem", t2, "1111111111111111", false), "k2");
    await put(versionKey("rsa_key.pem", t1, "0000000000000000", false), "k1");
    await put(versionKey("config.json", t2, "2222222222222222", true), "c");
    await storage.put(".litewarden/heartbeat.json", new Uint8Array(1));

    const files = await listFileObjects(store);
    assertEquals([...files.keys()], ["attachments/c1/a1", "sends/s1/f1"]);
    assertEquals(files.get("sends/s1/f1")?.size, 4);

    const versions = await listVersions(store);
    const keys = versions.get("rsa_key.pem")!;
    assertEquals(keys.map((v) => v.digest), ["0000000000000000", "1111111111111111"]);
    assertEquals(versions.get("config.json")!.map((v) => v.encrypted), [true]);
    assertEquals(versionAt(keys, new Date("2026-11-30T00:00:00Z")), undefined);
    assertEquals(versionAt(keys, t1)?.digest, "0000000000000000");
    assertEquals(versionAt(keys, new Date("2026-12-01T23:59:59Z"))?.digest, "0000000000000000");
    assertEquals(versionAt(keys, new Date("2027-01-01T00:00:00Z"))?.digest, "1111111111111111");
  });
});
