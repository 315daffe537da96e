/**
 * The only module that imports `yaml`. Parses text into plain values the way Litestream's
 * `gopkg.in/yaml.v2` feeds its string fields: every scalar is kept as the text written in the
 * file (`0x1F` stays "0x1F", `1e3` stays "1e3", `yes` stays "yes"), `~`/`null`/empty is null,
 * aliases and `<<` merge keys are resolved. Callers decide what a string means (bools, paths).
 *
 * Syntax errors become one line naming the file, line and column. The reason is chosen from the
 * parser's error code, never copied from its message: those quote the offending source text,
 * which may be a secret.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
  type YAMLError,
} from "yaml";
import { UsageError } from "../errors.ts";

export type YamlValue = string | null | YamlValue[] | YamlMap;
export interface YamlMap {
  [key: string]: YamlValue;
}

/** A parsed document: its value and where its collections and keys were written. */
export interface YamlDocument {
  value: YamlValue;
  /**
   * 1-based line of `container` itself, or of `key`'s value (or of the key, for an empty value)
   * inside it. Undefined for values not produced by this document.
   */
  lineOf(container: YamlMap | YamlValue[], key?: string | number): number | undefined;
}

const REASONS: Record<string, string> = {
  ALIAS_PROPS: "an alias cannot have an anchor or a tag",
  BAD_ALIAS: "bad alias (a value starting with * is an alias; quote the value)",
  BAD_COLLECTION_TYPE: "the tag does not fit this kind of value",
  BAD_DIRECTIVE: "bad directive",
  BAD_DQ_ESCAPE:
    "invalid escape sequence in a double-quoted value (use single quotes for backslashes)",
  BAD_INDENT: "bad indentation",
  BAD_PROP_ORDER: "anchors and tags must come after the ? or : indicator",
  BAD_SCALAR_START: "a plain value cannot start with this character; quote the value",
  BLOCK_AS_IMPLICIT_KEY: "a nested block cannot be a key (check the indentation)",
  BLOCK_IN_FLOW: "block values are not allowed inside [ ] or { }",
  DUPLICATE_KEY: "duplicate key",
  IMPOSSIBLE: "unparseable input",
  KEY_OVER_1024_CHARS: "a key longer than 1024 characters",
  MISSING_CHAR: "missing character (an unclosed quote, bracket or brace, or no space after :)",
  MULTILINE_IMPLICIT_KEY: "a key must be on a single line (missing ':' or bad indentation?)",
  MULTIPLE_ANCHORS: "a value can have only one anchor",
  MULTIPLE_DOCS: "more than one document",
  MULTIPLE_TAGS: "a value can have only one tag",
  NON_STRING_KEY: "a key must be a plain value",
  RESOURCE_EXHAUSTION: "too many alias expansions",
  TAB_AS_INDENT: "tabs are not allowed as indentation",
  TAG_RESOLVE_FAILED: "unknown tag (a value starting with ! is a tag; quote the value)",
  UNEXPECTED_TOKEN: "unexpected content (check quoting, indentation and the space after ':')",
};

function syntaxError(path: string, err: YAMLError, lc: LineCounter) {
  const pos = err.linePos?.[0] ?? lc.linePos(err.pos[0]);
  const reason = REASONS[err.code] ?? "syntax error";
  return new UsageError(
    `invalid YAML in ${path} at line ${pos.line}, column ${pos.col}: ${reason}`,
  );
}

/** Parses `text` (read from `path`, used in messages). Only the first document counts, as in Go. */
export function parseYaml(text: string, path: string): YamlDocument {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lines = new WeakMap<object, { self?: number; keys: Map<string | number, number> }>();
  const lineOf = (container: YamlMap | YamlValue[], key?: string | number) => {
    const entry = lines.get(container);
    if (!entry) return undefined;
    return key === undefined ? entry.self : entry.keys.get(key);
  };
  if (!Array.isArray(docs)) return { value: null, lineOf }; // empty stream
  // Errors in later documents matter too: Go's decoder reads the whole stream's tokens.
  for (const doc of docs) {
    if (doc.errors.length > 0) throw syntaxError(path, doc.errors[0], lc);
  }
  const doc = docs[0];
  if (!doc) return { value: null, lineOf };

  const lineAt = (node: Node | null | undefined): number | undefined => {
    const start = node?.range?.[0];
    return start === undefined ? undefined : lc.linePos(start).line;
  };
  const active = new Set<Node>();
  const converted = new Map<Node, YamlValue>();
  let expansions = 0;

  const convert = (node: unknown): YamlValue => {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      if (++expansions > 10_000) {
        throw new UsageError(`invalid YAML in ${path}: too many alias expansions`);
      }
      const target = node.resolve(doc);
      if (!target) {
        throw new UsageError(
          `invalid YAML in ${path} at line ${lineAt(node) ?? "?"}: alias to an unknown anchor`,
        );
      }
      return convert(target);
    }
    if (isScalar(node)) return scalarText(node.value, node.source, node.type);
    if (!isMap(node) && !isSeq(node)) return null;
    // A collection reached again through an alias is converted once and shared: no exponential
    // blow-up from nested aliases ("billion laughs"); the values are never mutated.
    const done = converted.get(node);
    if (done !== undefined) return done;
    if (active.has(node)) {
      throw new UsageError(
        `invalid YAML in ${path} at line ${lineAt(node) ?? "?"}: an alias refers to itself`,
      );
    }
    active.add(node);
    try {
      if (isSeq(node)) {
        const out: YamlValue[] = [];
        const keys = new Map<string | number, number>();
        node.items.forEach((item, i) => {
          out.push(convert(item));
          const line = lineAt(item as Node);
          if (line !== undefined) keys.set(i, line);
        });
        lines.set(out, { self: lineAt(node), keys });
        converted.set(node, out);
        return out;
      }
      const out: YamlMap = {};
      const keys = new Map<string | number, number>();
      const merged: YamlMap[] = [];
      for (const pair of node.items) {
        const key = convert(pair.key);
        // Non-scalar keys are ignored; so is `__proto__`, which no config key is.
        if (key === null || typeof key !== "string" || key === "__proto__") continue;
        const valueNode = pair.value as Node | null;
        if (key === "<<" && isScalar(pair.key) && pair.key.type === "PLAIN") {
          const v = convert(valueNode);
          const sources = Array.isArray(v) ? v : [v];
          for (const src of sources) {
            if (src !== null && typeof src === "object" && !Array.isArray(src)) merged.push(src);
          }
          continue;
        }
        out[key] = convert(valueNode);
        const line = lineAt(valueNode) ?? lineAt(pair.key as Node);
        if (line !== undefined) keys.set(key, line);
      }
      // Merge keys: explicit keys win; earlier merge sources win over later ones.
      for (const src of merged) {
        for (const [k, v] of Object.entries(src)) {
          if (!Object.hasOwn(out, k)) {
            out[k] = v;
            const line = lines.get(src)?.keys.get(k);
            if (line !== undefined) keys.set(k, line);
          }
        }
      }
      lines.set(out, { self: lineAt(node), keys });
      converted.set(node, out);
      return out;
    } finally {
      active.delete(node);
    }
  };

  return { value: convert(doc.contents), lineOf };
}

/** A scalar as Go's yaml.v2 hands it to a string field: the written text; null stays null. */
function scalarText(value: unknown, source: string | undefined, type: string | undefined) {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (type === "PLAIN" && source !== undefined) return source;
  return String(value);
}
