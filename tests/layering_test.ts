/**
 * The package layering stated in README's layout paragraph, checked on the real imports of every
 * module: a lower layer never imports a higher one, packages form no cycle, and no module below
 * src/cli names an exit code (they throw typed errors; src/errors.ts maps kinds to codes).
 */
import { assert, assertEquals } from "./support/assert.ts";

const SRC = new URL("../src/", import.meta.url).pathname;

/** Bottom to top; packages on one line may import each other, as long as no cycle forms. */
const LAYERS: string[][] = [
  ["errors.ts", "lib"],
  ["formats"],
  ["config", "storage"],
  ["replica"],
  ["checks", "apps"],
  ["report"],
  ["cli"],
];
const RANK = new Map(LAYERS.flatMap((names, rank) => names.map((n) => [n, rank] as const)));

/** The package of a path below src/: its first segment (`errors.ts` is its own). */
const packageOf = (rel: string) => rel.split("/")[0];

async function sourceFiles(dir = SRC, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await sourceFiles(`${dir}${e.name}/`, r));
    else if (e.name.endsWith(".ts")) out.push(r);
  }
  return out.sort();
}

/** Relative module specifiers of static imports, re-exports and dynamic imports. */
function importsOf(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"/g)) {
    specs.push(m[1]);
  }
  for (const m of text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) specs.push(m[1]);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+"([^"]+)"/g)) specs.push(m[1]);
  return specs.filter((s) => s.startsWith("."));
}

/** Imports between packages: `from` package → set of imported packages, with one example each. */
async function packageImports(): Promise<Map<string, Map<string, string>>> {
  const graph = new Map<string, Map<string, string>>();
  for (const rel of await sourceFiles()) {
    const text = await Deno.readTextFile(SRC + rel);
    for (const spec of importsOf(text)) {
      const target = new URL(spec, `file://${SRC}${rel}`).pathname;
      assert(target.startsWith(SRC), `${rel} imports ${spec}, outside src/`);
      const from = packageOf(rel);
      const to = packageOf(target.slice(SRC.length));
      if (from === to) continue;
      if (!graph.has(from)) graph.set(from, new Map());
      graph.get(from)!.set(to, `${rel} imports ${spec}`);
    }
  }
  return graph;
}

Deno.test("the import parser sees every kind of import", () => {
  const text = `import { a } from "./a.ts";\nimport type {\n  B,\n} from "../b/b.ts";\n` +
    `export { c } from "./c.ts";\nconst { D } = await import("../d/d.ts");\nimport "./e.ts";\n` +
    `import { f } from "commander";`;
  assertEquals(importsOf(text).sort(), ["../b/b.ts", "../d/d.ts", "./a.ts", "./c.ts", "./e.ts"]);
});

Deno.test("every package below src/ has a layer", async () => {
  const packages = new Set((await sourceFiles()).map(packageOf));
  for (const p of packages) assert(RANK.has(p), `src/${p} has no layer in LAYERS and README`);
});

Deno.test("no module imports from a higher layer", async () => {
  const upward: string[] = [];
  for (const [from, tos] of await packageImports()) {
    for (const [to, example] of tos) {
      if (RANK.get(to)! > RANK.get(from)!) upward.push(`${from} → ${to}: ${example}`);
    }
  }
  assertEquals(upward, []);
});

Deno.test("packages import each other without cycles", async () => {
  const graph = await packageImports();
  const cycles: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (p: string, path: string[]) => {
    if (state.get(p) === "done") return;
    if (state.get(p) === "visiting") {
      cycles.push([...path.slice(path.indexOf(p)), p].join(" → "));
      return;
    }
    state.set(p, "visiting");
    for (const to of graph.get(p)?.keys() ?? []) visit(to, [...path, p]);
    state.set(p, "done");
  };
  for (const p of graph.keys()) visit(p, []);
  assertEquals(cycles, []);
});

Deno.test("no module below src/cli names an exit code or branches on one", async () => {
  const offenders: string[] = [];
  for (const rel of await sourceFiles()) {
    if (rel === "errors.ts" || packageOf(rel) === "cli") continue;
    const text = await Deno.readTextFile(SRC + rel);
    if (/\bExitCode\b/.test(text)) offenders.push(rel);
    if (/new LitewardenError\(\s*\d/.test(text)) offenders.push(`${rel} (bare literal)`);
    // Control flow asks what happened (instanceof, kind), never which code it would exit with.
    if (/\b\w*(?:err|error|cause)\w*\??\.exitCode\b/i.test(text)) {
      offenders.push(`${rel} (.exitCode)`);
    }
  }
  assertEquals(offenders, []);
});
