/**
 * docs/RELIABILITY.md names, for every fault and input class, the tests that prove it. This keeps
 * the page true: every `tests/…_test.ts` "test name" it cites must still exist in that file.
 */
import { assert } from "./support/assert.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("every test docs/RELIABILITY.md cites exists", async () => {
  const doc = await Deno.readTextFile(`${ROOT}docs/RELIABILITY.md`);
  const refs = [...doc.matchAll(/`(tests\/[\w/]+_test\.ts)` "([^"]+)"/g)];
  assert(refs.length >= 40, `only ${refs.length} test references found`);
  const missing: string[] = [];
  for (const [, file, name] of refs) {
    const source = await Deno.readTextFile(`${ROOT}${file}`).catch(() => "");
    if (!source.includes(name)) missing.push(`${file} "${name}"`);
  }
  assert(missing.length === 0, `cited but not found:\n${missing.join("\n")}`);
});
