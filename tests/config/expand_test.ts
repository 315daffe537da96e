import { cleanPath, expandConfigText, expandPath, goExpand } from "../../src/config/expand.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assertEquals, assertThrows } from "../support/assert.ts";

const env = { HOME: "/home/u", BUCKET: "b1", A_1: "x", "12": "twelve", "A B": "spaced" };
const ex = (s: string) => goExpand(s, (k) => (env as Record<string, string>)[k] ?? "");

Deno.test("goExpand: $VAR and ${VAR}", () => {
  assertEquals(ex("s3://$BUCKET/db"), "s3://b1/db");
  assertEquals(ex("s3://${BUCKET}/db"), "s3://b1/db");
  assertEquals(ex("${BUCKET}x"), "b1x");
  assertEquals(ex("$BUCKETx"), ""); // the name runs on: BUCKETx is unset
  assertEquals(ex("$A_1-y"), "x-y");
  assertEquals(ex("${A B}"), "spaced");
  assertEquals(ex("${12}"), "twelve");
});

Deno.test("goExpand: unset variables become empty", () => {
  assertEquals(ex("a${NOPE}b"), "ab");
  assertEquals(ex("pa$word"), "pa");
  assertEquals(ex("$NOPE"), "");
});

Deno.test("goExpand: special one-character names", () => {
  assertEquals(ex("pa$$word"), "paword"); // `$$` is the variable named "$"
  assertEquals(ex("$1abc"), "abc");
  assertEquals(ex("${1}"), "");
  assertEquals(ex("a$*b$#c$@d$!e$?f$-g"), "abcdefg");
  assertEquals(ex("$$PID"), "PID");
});

Deno.test("goExpand: a $ not followed by a name stays", () => {
  assertEquals(ex("cost 5$"), "cost 5$");
  assertEquals(ex("a $ b"), "a $ b");
  assertEquals(ex("a$%b"), "a$%b");
  assertEquals(ex("a$.b"), "a$.b");
  assertEquals(ex("$é"), "$é");
  assertEquals(ex("$"), "$");
  assertEquals(ex("no dollars"), "no dollars");
});

Deno.test("goExpand: bad brace syntax is eaten like Go", () => {
  assertEquals(ex("x${}y"), "xy");
  assertEquals(ex("x${abc"), "xabc");
  assertEquals(ex("x${"), "x");
});

Deno.test("expandConfigText: env values are inserted once, not re-expanded", () => {
  assertEquals(expandConfigText("k: ${S}", { S: "p$ss${X}" }), "k: p$ss${X}");
});

Deno.test("expandConfigText: $PID maps to the given pid (v0.5)", () => {
  assertEquals(expandConfigText("/tmp/$PID/${PID}", {}, 42), "/tmp/42/42");
  assertEquals(expandConfigText("/tmp/$PID", { PID: "7" }), "/tmp/7");
});

Deno.test("cleanPath behaves like Go's path.Clean", () => {
  assertEquals(cleanPath(""), ".");
  assertEquals(cleanPath("/"), "/");
  assertEquals(cleanPath("a//b/./c/"), "a/b/c");
  assertEquals(cleanPath("/a/../../b"), "/b");
  assertEquals(cleanPath("a/../.."), "..");
  assertEquals(cleanPath("./x"), "x");
});

Deno.test("expandPath: absolute, relative to cwd, ~ and ~/", () => {
  assertEquals(expandPath("/var/lib/x.db", "/cwd", env), "/var/lib/x.db");
  assertEquals(expandPath("data/x.db", "/cwd", env), "/cwd/data/x.db");
  assertEquals(expandPath("./x.db", "/cwd/", env), "/cwd/x.db");
  assertEquals(expandPath("../x.db", "/cwd/sub", env), "/cwd/x.db");
  assertEquals(expandPath("~/x.db", "/cwd", env), "/home/u/x.db");
  assertEquals(expandPath("~", "/cwd", env), "/home/u");
  assertEquals(expandPath("~user/x.db", "/cwd", env), "/cwd/~user/x.db"); // as Litestream
  const err = assertThrows(() => expandPath("~/x", "/cwd", {}), LitewardenError, "HOME");
  assertEquals(err.exitCode, 2);
});
