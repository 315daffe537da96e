/** The numeric flag parsers: digits only, bounded; out of range is exit 2 naming the flag. */
import { parseDuration } from "../../src/checks/freshness.ts";
import { parseParallelism, parseWholeNumber } from "../../src/cli/options.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assertEquals, assertThrows } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;

Deno.test("parseWholeNumber: decimal digits within the range, nothing else", () => {
  assertEquals(parseWholeNumber("0", "--n", 0, 10), 0);
  assertEquals(parseWholeNumber("0010", "--n", 0, 10), 10);
  assertEquals(parseParallelism("64"), 64);
  for (const bad of ["", "-1", "+1", "1.0", "1e3", "0x10", " 1", "11", "99999999999999999999"]) {
    const err = assertThrows(() => parseWholeNumber(bad, "--n", 0, 10), LitewardenError);
    assertEquals(err.exitCode, 2, bad);
    assertEquals(err.message, `invalid --n ${bad}: expected a whole number from 0 to 10`);
  }
});

Deno.test("parseDuration: bounded at 100 years", () => {
  assertEquals(parseDuration("36500d", "--max-age"), 36500 * 86_400_000);
  for (const bad of ["99999999999999999999d", "40000d", "1e400s"]) {
    assertThrows(() => parseDuration(bad, "--max-age"), LitewardenError, "invalid --max-age");
  }
});

Deno.test("prune and verify: a 20-digit count or duration is exit 2 before any work", async () => {
  const replica = `file://${SAMPLE}`;
  for (
    const args of [
      ["prune", replica, "--keep-last", "99999999999999999999"],
      ["prune", replica, "--keep-daily", "1.5"],
      ["prune", replica, "--keep-within", "99999999999999999999d"],
      ["verify", replica, "--max-age", "99999999999999999999h"],
      ["verify", replica, "--parallelism", "0"],
    ]
  ) {
    const r = await runCli(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stderr.split("\n").length, 1, r.stderr);
  }
});
