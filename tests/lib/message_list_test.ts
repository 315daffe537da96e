/** Lists in messages are capped: a huge config never turns an error into a megabyte line. */
import { resolveTarget } from "../../src/config/resolve.ts";
import { LitewardenError } from "../../src/errors.ts";
import { listForMessage } from "../../src/lib/message_list.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";

Deno.test("listForMessage: all items up to the cap, then the count", () => {
  assertEquals(listForMessage([]), "none");
  assertEquals(listForMessage(["a", "b"]), "a, b");
  const many = Array.from({ length: 25 }, (_, i) => `d${i}`);
  assertEquals(listForMessage(many, 3), "d0, d1, d2, … (25 in all)");
  assertEquals(listForMessage(many.slice(0, 10)), many.slice(0, 10).join(", "));
});

Deno.test("a database missing from a config of 5,000: a short error line naming a few", async () => {
  await using dir = await makeTempDir();
  const lines = ["dbs:"];
  for (let i = 0; i < 5000; i++) {
    lines.push(`  - path: /data/db${i}.sqlite3`, "    replica:", `      path: /bk/db${i}`);
  }
  const config = dir.join("litestream.yml");
  await Deno.writeTextFile(config, lines.join("\n") + "\n");
  const err = await assertRejects(
    () => resolveTarget("/data/nope.sqlite3", { configPath: config, env: {}, cwd: dir.path }),
    LitewardenError,
  );
  assertEquals(err.exitCode, 2);
  assertStringIncludes(err.message, "/data/db0.sqlite3, /data/db1.sqlite3");
  assertStringIncludes(err.message, "(5000 in all)");
  assert(err.message.length < 1000, `${err.message.length} characters`);
});
