import { parseYaml, type YamlMap, type YamlValue } from "../../src/config/yaml.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

const F = "/etc/litestream.yml";

function asMap(v: YamlValue): YamlMap {
  assert(v !== null && typeof v === "object" && !Array.isArray(v));
  return v;
}

Deno.test("yaml: scalars keep the written text (Go string fields)", () => {
  const v = asMap(
    parseYaml(
      "a: 0x1F\nb: 1e3\nc: yes\nd: 'q'\ne: \"x\\ty\"\nf: 0123\ng: true\nh: !!str 12\n",
      F,
    ).value,
  );
  assertEquals(v, {
    a: "0x1F",
    b: "1e3",
    c: "yes",
    d: "q",
    e: "x\ty",
    f: "0123",
    g: "true",
    h: "12",
  });
});

Deno.test("yaml: ~, null and empty values are null", () => {
  assertEquals(parseYaml("a: ~\nb: null\nc:\nd: ''\n", F).value, {
    a: null,
    b: null,
    c: null,
    d: "",
  });
});

Deno.test("yaml: empty text and comments only are null", () => {
  assertEquals(parseYaml("", F).value, null);
  assertEquals(parseYaml("# nothing\n", F).value, null);
});

Deno.test("yaml: anchors, aliases and << merge keys (explicit keys win)", () => {
  const text = [
    "base: &r {type: s3, bucket: b, region: r1}",
    "dbs:",
    "  - path: /a",
    "    replicas:",
    "      - <<: *r",
    "        region: r2",
    "      - *r",
  ].join("\n");
  const v = asMap(parseYaml(text, F).value);
  assertEquals(v.dbs, [{
    path: "/a",
    replicas: [
      { region: "r2", type: "s3", bucket: "b" },
      { type: "s3", bucket: "b", region: "r1" },
    ],
  }]);
});

Deno.test("yaml: only the first document counts", () => {
  assertEquals(parseYaml("a: 1\n---\na: 2\n", F).value, { a: "1" });
});

Deno.test("yaml: lineOf reports where values were written", () => {
  const doc = parseYaml("x: 1\ndbs:\n  - path: /a\n    replica:\n      url: s3://b/p\n", F);
  const root = asMap(doc.value);
  assertEquals(doc.lineOf(root, "dbs"), 3);
  const dbs = root.dbs;
  assert(Array.isArray(dbs));
  assertEquals(doc.lineOf(dbs, 0), 3);
  const db = asMap(dbs[0]);
  assertEquals(doc.lineOf(asMap(db.replica)), 5);
  assertEquals(doc.lineOf(asMap(db.replica), "url"), 5);
});

Deno.test("yaml: syntax errors name file, line and column (exit 2)", () => {
  const err = assertThrows(
    () => parseYaml("dbs:\n  - path: /a\n\treplicas: []\n", F),
    LitewardenError,
  );
  assertEquals(err.exitCode, 2);
  assertEquals(
    err.message,
    "invalid YAML in /etc/litestream.yml at line 3, column 1: tabs are not allowed as indentation",
  );
});

Deno.test("yaml: duplicate keys are an error, as in Go's yaml.v2", () => {
  assertThrows(
    () => parseYaml("a: 1\na: 2\n", F),
    LitewardenError,
    "line 2, column 1: duplicate key",
  );
});

Deno.test("yaml: error messages never quote the source text", () => {
  const secret = "Zq9!secretVALUE";
  for (
    const text of [
      `secret-access-key: "ab\\q${secret}"\n`, // bad escape
      `secret-access-key: !${secret}\n`, // unknown tag
      `secret-access-key: *${secret}\n`, // unknown alias
      `secret-access-key: @${secret}\n`, // bad plain start
      `a: b\nsecret-access-key: ${secret}: x\n`, // nested implicit key
      `a: [${secret}\n`, // unclosed flow
      `secret-access-key: "${secret}\n`, // unclosed quote
    ]
  ) {
    const err = assertThrows(() => parseYaml(text, F), LitewardenError);
    assertEquals(err.exitCode, 2);
    assert(!err.message.includes(secret), err.message);
    assert(!err.message.includes("\n"), err.message);
    assert(err.message.startsWith(`invalid YAML in ${F}`), err.message);
  }
});

Deno.test("yaml: nested aliases do not blow up (billion laughs)", () => {
  const lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
  for (let i = 1; i <= 9; i++) {
    lines.push(`l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(", ")}]`);
  }
  const start = performance.now();
  const v = asMap(parseYaml(lines.join("\n") + "\n", F).value);
  assert(Array.isArray(v.l9) && v.l9.length === 10);
  assert(performance.now() - start < 2000);
});
