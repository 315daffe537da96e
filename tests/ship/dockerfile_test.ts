/**
 * The container image without a Docker engine: the Dockerfile is parsed and checked against the
 * repository (every COPY source exists in the build context or comes from a named stage, the
 * command is the entrypoint where it is copied, the scripts are executable POSIX sh), and the
 * shipped examples are checked against litewarden itself.
 */
import { fileURLToPath } from "node:url";
import { loadLitestreamConfig } from "../../src/config/litestream_yml.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  rest: string;
  line: number;
}

interface Stage {
  /** Image reference with build args expanded. */
  image: string;
  name?: string;
  instructions: Instruction[];
}

interface Copy {
  from?: string;
  chmod?: string;
  sources: string[];
  dest: string;
  line: number;
}

/** Parses the parts of the Dockerfile syntax this repository uses. */
function parseDockerfile(text: string): { stages: Stage[]; globalArgs: Map<string, string> } {
  const instructions: Instruction[] = [];
  let pending: { rest: string; line: number; keyword: string } | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && !pending)) return;
    const continued = line.endsWith("\\");
    const body = continued ? line.slice(0, -1).trim() : line;
    if (pending) {
      pending.rest += ` ${body}`;
    } else {
      const m = /^(\S+)\s*(.*)$/.exec(body)!;
      pending = { keyword: m[1].toUpperCase(), rest: m[2], line: i + 1 };
    }
    if (!continued) {
      instructions.push({ ...pending, rest: pending.rest.trim() });
      pending = undefined;
    }
  });
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "ARG" && stages.length === 0) {
      const [k, v] = ins.rest.split("=");
      globalArgs.set(k, v ?? "");
    } else if (ins.keyword === "FROM") {
      const words = ins.rest.split(/\s+/).filter((w) => !w.startsWith("--"));
      const image = words[0].replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_m, a: string | undefined, b: string | undefined) => globalArgs.get(a ?? b ?? "") ?? "",
      );
      const as = words.findIndex((w) => w.toUpperCase() === "AS");
      stages.push({ image, name: as > 0 ? words[as + 1] : undefined, instructions: [] });
    } else {
      assert(stages.length > 0, `line ${ins.line}: ${ins.keyword} before FROM`);
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { stages, globalArgs };
}

function copies(stage: Stage): Copy[] {
  return stage.instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD").map(
    (i) => {
      assert(!i.rest.startsWith("["), `line ${i.line}: use the plain COPY form`);
      const words = i.rest.split(/\s+/);
      const flags = words.filter((w) => w.startsWith("--"));
      const paths = words.filter((w) => !w.startsWith("--"));
      const flag = (name: string) =>
        flags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3);
      assert(paths.length >= 2, `line ${i.line}: COPY needs a source and a destination`);
      return {
        from: flag("from"),
        chmod: flag("chmod"),
        sources: paths.slice(0, -1),
        dest: paths[paths.length - 1],
        line: i.line,
      };
    },
  );
}

/** Where a COPY puts `source`: the destination itself, or inside it when it ends with `/`. */
function destOf(c: Copy, source: string): string {
  if (!c.dest.endsWith("/")) return c.dest;
  return `${c.dest}${source.replace(/\/$/, "").split("/").pop()}`;
}

function dockerignored(patterns: string[], path: string): boolean {
  const p = path.replace(/^\.\//, "");
  return patterns.some((pat) => {
    const base = pat.replace(/\/$/, "");
    return p === base || p.startsWith(`${base}/`);
  });
}

async function isExecutable(path: string): Promise<boolean> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o111 ? true : false;
}

async function shSyntaxOk(path: string): Promise<string | undefined> {
  const out = await new Deno.Command("sh", { args: ["-n", path], stderr: "piped" }).output();
  return out.success ? undefined : new TextDecoder().decode(out.stderr);
}

const dockerfile = parseDockerfile(await Deno.readTextFile(`${ROOT}Dockerfile`));
const final = dockerfile.stages[dockerfile.stages.length - 1];
const finalCopies = copies(final);

/** The destination in the final image of a file copied from the build context. */
function installedAs(source: string): string {
  for (const c of finalCopies) {
    if (!c.from && c.sources.includes(source)) return destOf(c, source);
  }
  throw new Error(`${source} is not copied into the final image`);
}

Deno.test("Dockerfile: pinned images; every COPY source is in the build context or a named stage", async () => {
  const { stages } = dockerfile;
  for (const s of stages) {
    assertMatch(s.image, /^[\w./-]+:[\w.-]+$/, `image ${s.image} has no tag`);
    assert(!s.image.endsWith(":latest"), `image ${s.image} is not pinned`);
  }
  // The versions the rest of the project is built and tested with.
  const ci = await Deno.readTextFile(`${ROOT}.ci/run`);
  const denoVersion = /deno@(\d+\.\d+\.\d+)/.exec(ci)?.[1];
  assert(stages.some((s) => s.image === `denoland/deno:${denoVersion}`), "Deno build image");
  assert(stages.some((s) => s.image === "litestream/litestream:0.3.13"), "Litestream v0.3.13");
  assertMatch(final.image, /^vaultwarden\/server:\d+\.\d+\.\d+$/);

  const ignore = (await Deno.readTextFile(`${ROOT}.dockerignore`)).split("\n")
    .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  stages.forEach((stage, index) => {
    for (const c of copies(stage)) {
      if (c.from !== undefined) {
        const named = stages.slice(0, index).find((s) => s.name === c.from);
        assert(named, `line ${c.line}: --from=${c.from} names no earlier stage`);
        // What is copied out of the build stage is what its RUN lines produce.
        if (named.instructions.some((i) => i.keyword === "RUN")) {
          for (const src of c.sources) {
            assert(
              named.instructions.some((i) => i.keyword === "RUN" && i.rest.includes(` ${src}`)),
              `line ${c.line}: no RUN in stage ${c.from} writes ${src}`,
            );
          }
        }
        continue;
      }
      for (const src of c.sources) {
        const info = Deno.statSync(`${ROOT}${src}`); // throws when missing
        assert(info.isFile || info.isDirectory);
        assert(!dockerignored(ignore, src), `line ${c.line}: ${src} is in .dockerignore`);
      }
    }
  });
});

Deno.test("Dockerfile: CMD is the entrypoint where it is copied; scripts are executable POSIX sh", async () => {
  const cmd = final.instructions.filter((i) => i.keyword === "CMD");
  assertEquals(cmd.length, 1);
  const argv = JSON.parse(cmd[0].rest) as string[];
  const entrypoint = installedAs("scripts/entrypoint.sh");
  assertEquals(argv, [entrypoint]);
  // No ENTRYPOINT: `docker run IMAGE <command>` runs the command (examples/crontab relies on it).
  assert(!dockerfile.stages.some((s) => s.instructions.some((i) => i.keyword === "ENTRYPOINT")));
  const cron = await Deno.readTextFile(`${ROOT}examples/crontab`);
  assertStringIncludes(cron, installedAs("examples/prune-cron.sh"));

  for (const script of ["scripts/entrypoint.sh", "examples/prune-cron.sh"]) {
    const c = finalCopies.find((x) => x.sources.includes(script))!;
    assertEquals(c.chmod, "755", `${script} is not made executable in the image`);
    assert(await isExecutable(`${ROOT}${script}`), `${script} is not executable in the repo`);
    const text = await Deno.readTextFile(`${ROOT}${script}`);
    assert(text.startsWith("#!/bin/sh\n"), `${script}: not a #!/bin/sh script`);
    assertEquals(await shSyntaxOk(`${ROOT}${script}`), undefined);
  }
  for (const script of ["scripts/compile_all.sh", "scripts/check_bundle.sh"]) {
    assert(await isExecutable(`${ROOT}${script}`), `${script} is not executable`);
  }

  // The programs the entrypoint calls by name are where the image puts them (on PATH).
  const litewarden = finalCopies.find((c) => c.from === "build")!;
  assertEquals(litewarden.dest, "/usr/local/bin/litewarden");
  const litestream = finalCopies.find((c) => c.from === "litestream")!;
  assertEquals(litestream.dest, "/usr/local/bin/litestream");
  const script = await Deno.readTextFile(`${ROOT}scripts/entrypoint.sh`);
  assertStringIncludes(script, "bin=${LITEWARDEN_BIN:-litewarden}");
  assertStringIncludes(script, "litestream=${LITESTREAM_BIN:-litestream}");

  // ENV agrees with where the config is copied and with the entrypoint's defaults.
  const env = final.instructions.filter((i) => i.keyword === "ENV").map((i) => i.rest).join(" ");
  const config = installedAs("examples/litestream.yml");
  assertStringIncludes(env, `LITESTREAM_CONFIG=${config}`);
  assertStringIncludes(script, `config=\${LITESTREAM_CONFIG:-${config}}`);
  assertStringIncludes(env, "LITEWARDEN_DB=/data/db.sqlite3");
  assertStringIncludes(env, "LITEWARDEN_APP_COMMAND=/start.sh"); // Vaultwarden's own CMD
});

Deno.test("Dockerfile: the build stage compiles for the image's architecture", async () => {
  const build = dockerfile.stages.find((s) => s.name === "build")!;
  const run = build.instructions.find((i) => i.keyword === "RUN")!.rest;
  assertStringIncludes(run, 'scripts/compile_all.sh "linux-${TARGETARCH');
  const plan = await new Deno.Command("sh", {
    args: [`${ROOT}scripts/compile_all.sh`, "-n", "linux-amd64", "linux-arm64", "macos-arm64"],
    env: { DENO: "deno" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(plan.code, 0, new TextDecoder().decode(plan.stderr));
  const lines = new TextDecoder().decode(plan.stdout).trim().split("\n");
  assertEquals(lines[0], "deno task bundle");
  const targets = lines.slice(1).map((l) => [
    /--target (\S+)/.exec(l)?.[1],
    /--output (\S+)/.exec(l)?.[1],
  ]);
  assertEquals(targets, [
    ["x86_64-unknown-linux-gnu", "dist/litewarden-linux-x86_64"],
    ["aarch64-unknown-linux-gnu", "dist/litewarden-linux-aarch64"],
    ["aarch64-apple-darwin", "dist/litewarden-macos-arm64"],
  ]);
  // The Dockerfile copies the one binary it built: dist/litewarden-linux-*.
  assertStringIncludes(run, "cp dist/litewarden-linux-* /litewarden");
  const bad = await new Deno.Command("sh", {
    args: [`${ROOT}scripts/compile_all.sh`, "-n", "linux-riscv64"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(bad.code, 2);
});

Deno.test("examples/litestream.yml: R2 from the environment, no secret in the file", async () => {
  const path = `${ROOT}examples/litestream.yml`;
  const text = await Deno.readTextFile(path);
  const config = await loadLitestreamConfig(path, {
    LITESTREAM_BUCKET: "vaultwarden",
    LITESTREAM_PATH: "db",
    LITESTREAM_ENDPOINT: "https://0123abcd.r2.cloudflarestorage.com",
    LITESTREAM_REGION: "auto",
    LITESTREAM_ACCESS_KEY_ID: "key-id-from-env",
    LITESTREAM_SECRET_ACCESS_KEY: "secret-from-env",
  });
  assertEquals(config.dbs.length, 1);
  assertEquals(config.dbs[0].path, "/data/db.sqlite3");
  const r = config.dbs[0].replicas[0];
  assert(r.type === "s3");
  assertEquals(
    [r.bucket, r.path, r.endpoint, r.region, r.credentials?.secretAccessKey],
    ["vaultwarden", "db", "https://0123abcd.r2.cloudflarestorage.com", "auto", "secret-from-env"],
  );
  // AWS: no endpoint at all.
  const aws = await loadLitestreamConfig(path, {
    LITESTREAM_BUCKET: "vaultwarden",
    LITESTREAM_REGION: "eu-central-1",
  });
  const a = aws.dbs[0].replicas[0];
  assert(a.type === "s3" && a.endpoint === undefined && a.region === "eu-central-1");
  // Values that look like settings are all ${…} references.
  for (const key of ["access-key-id", "secret-access-key", "bucket", "endpoint"]) {
    assertMatch(text, new RegExp(`^\\s+${key}: \\$\\{LITESTREAM_[A-Z_]+\\}$`, "m"));
  }
});

Deno.test("every environment variable of the scripts and the example config is in the README", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const files = ["scripts/entrypoint.sh", "examples/prune-cron.sh", "examples/litestream.yml"];
  for (const file of files) {
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    const names = new Set(
      [...text.matchAll(/\$\{(LITE(?:WARDEN|STREAM)_[A-Z_]+)/g)].map((m) => m[1]),
    );
    assert(names.size > 0, file);
    for (const name of names) assertStringIncludes(readme, name, `${name} (${file})`);
  }
});
