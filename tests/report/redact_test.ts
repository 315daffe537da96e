/**
 * The redaction choke point: URL userinfo is removed from any text, registered or not, however
 * many `/` and `@` the secret holds; registered secrets go in their plain and URL-encoded forms.
 */
import { assertEquals } from "../support/assert.ts";
import { redact, redactUrlUserinfo, registerSecret } from "../../src/report/redact.ts";

Deno.test("redactUrlUserinfo: every URL-shaped userinfo, a / or @ in the secret included", () => {
  const cases: [string, string][] = [
    ["s3://KEY:SECRET@bucket/db", "s3://***@bucket/db"],
    ["failed for s3://AKIA:ab/cd+ef@bucket/db: x", "failed for s3://***@bucket/db: x"],
    ["http://KEY:SECRET@host:9000/x?y=1", "http://***@host:9000/x?y=1"],
    ['{"location":"s3://K:a/b@c@bkt/p"}', '{"location":"s3://***@bkt/p"}'],
    ["s3://bkt/p?endpoint=http://K:S@h", "s3://bkt/p?endpoint=http://***@h"],
    ["two: ftp://u:p@a and https://t0ken@b", "two: ftp://***@a and https://***@b"],
    [
      "no userinfo s3://bucket/db and mail a@b.example",
      "no userinfo s3://bucket/db and mail a@b.example",
    ],
  ];
  for (const [input, want] of cases) assertEquals(redactUrlUserinfo(input), want, input);
});

Deno.test("redact: registered secrets, plain and percent-encoded, longest first", () => {
  registerSecret("redact-test/Secret+Value");
  registerSecret("short"); // too short to redact safely
  assertEquals(
    redact("a redact-test/Secret+Value b redact-test%2FSecret%2BValue c short"),
    "a *** b *** c short",
  );
});
