/**
 * Restore benchmark: `deno task bench` (after `deno install`).
 *
 * Builds a database of about `--size-mb` MB (default 200) while the real Litestream v0.3.13
 * replicates it into a file replica: half of it is in the database file before Litestream starts
 * (so it lands in the generation's snapshot), the other half is written in many small commits
 * that become many WAL segments across many WAL indexes. Then it times `litewarden restore` (as
 * `deno run -A` of the bundle, a fresh process each time, like a user runs it) and
 * `litestream restore` alternately, `--runs` times each (default 5), checks once that both
 * produce the same bytes, and prints the median wall time of each, the ratio litewarden /
 * litestream and each one's peak RSS (from `/usr/bin/time`, or by polling /proc VmHWM).
 *
 * Options:
 *   --size-mb N     database size in MB (default 200)
 *   --runs N        timed restores per tool (default 5, at least 1)
 *   --dir PATH      build into PATH and keep it; a later run with the same PATH and size reuses
 *                   the replica (handy while profiling). Default: a temp dir, removed at the end.
 *   --parallelism N passed to both tools (default: their default, 8)
 *   --age           replicate with age encryption (a key pair made for the run): litewarden
 *                   restores with --age-identity, litestream from the config (the only form in
 *                   which it decrypts); compare with a run without it for the cost of decryption
 *   --sftp          read the same replica through a local OpenSSH sshd (tests/support/sshd_server.ts)
 *                   instead of as a file replica: both tools restore over SFTP (`type: sftp`)
 *   --source        time `deno run main.ts` instead of the bundle the release binaries are compiled
 *                   from (`deno task bundle`; the default)
 *   --s3            the S3 matrix instead (scripts/bench_s3.ts, which lists its own options)
 *   --incident      snapshot-diff and --when against one restore instead (scripts/bench_incident.ts)
 */
import { parseArgs } from "node:util";
import {
  fileReplicaUrl,
  litestreamPath,
  writeLitestreamConfig,
} from "../tests/support/litestream.ts";
import { makeTempDir } from "../tests/support/tmp.ts";
import { sftpReplicaConfig, startSftpServer } from "../tests/support/sshd_server.ts";
import {
  buildOrReuse,
  describeBuilt,
  hasGnuTime,
  litewardenArgv,
  litewardenForm,
  loadAverage,
  mb,
  median,
  peakMiB,
  removeOutputs,
  type Sample,
  sha256,
  timed,
  useBundle,
} from "./bench_support.ts";

if (Deno.args.includes("--incident")) {
  const { runIncidentBench } = await import("./bench_incident.ts");
  await runIncidentBench(Deno.args.filter((a) => a !== "--incident"));
  Deno.exit(0);
}
if (Deno.args.includes("--s3")) {
  const { runS3Bench } = await import("./bench_s3.ts");
  await runS3Bench(Deno.args.filter((a) => a !== "--s3"));
  Deno.exit(0);
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "size-mb": { type: "string", default: "200" },
    runs: { type: "string", default: "5" },
    dir: { type: "string" },
    parallelism: { type: "string" },
    age: { type: "boolean", default: false },
    sftp: { type: "boolean", default: false },
    source: { type: "boolean", default: false },
  },
});
const useAge = values.age;
const sizeMb = Number(values["size-mb"]);
const runs = Number(values.runs);
if (!(sizeMb > 0) || !Number.isInteger(runs) || runs < 1) {
  console.error(
    "usage: bench_restore.ts [--size-mb N] [--runs N] [--dir PATH] [--parallelism N] [--age] [--sftp] | --s3 …",
  );
  Deno.exit(2);
}
const parallelismArgs = values.parallelism ? ["-parallelism", values.parallelism] : [];

const tmp = values.dir ? undefined : await makeTempDir("litewarden-bench-");
let stopServer = async () => {};
const dir = values.dir ?? tmp!.path;
try {
  if (!values.source) await useBundle(tmp?.path ?? dir);
  const built = await buildOrReuse(dir, sizeMb, useAge);
  console.log(
    `replica${built.identityFile ? " (age-encrypted)" : ""}: ${describeBuilt(built)}`,
  );

  const outDir = `${dir}/restores`;
  await Deno.mkdir(outDir, { recursive: true });
  const url = fileReplicaUrl(built.replica);
  // Litestream decrypts only in config form; litewarden reads the URL with the identity file.
  let lwSource = built.identityFile ? ["--age-identity", built.identityFile, url] : [url];
  let lsSource = built.identityFile ? ["-config", built.config, built.dbPath] : [url];
  if (values.sftp) {
    // The same directory through sshd, named in a config both tools read (with --age, the
    // identity goes in it too: Litestream decrypts only in config form).
    const server = await startSftpServer();
    stopServer = () => server.stop();
    const identity = built.identityFile
      ? (await Deno.readTextFile(built.identityFile)).trim()
      : undefined;
    const config = await writeLitestreamConfig(dir, [{
      path: built.dbPath,
      replicas: [
        sftpReplicaConfig(
          server,
          built.replica,
          identity ? { age: { identities: [identity] } } : {},
        ),
      ],
    }], { fileName: "sftp-litestream.yml" });
    lwSource = lsSource = ["-config", config, built.dbPath];
    console.log(`reading the replica over SFTP (sshd on ${server.hostPort})`);
  }
  const statFile = `${dir}/time.txt`;
  const tools = {
    litewarden: (out: string) =>
      timed(...litewardenArgv(["restore", ...parallelismArgs, "-o", out, ...lwSource]), statFile),
    litestream: (out: string) =>
      timed(litestreamPath(), ["restore", ...parallelismArgs, "-o", out, ...lsSource], statFile),
    // verify = restore into a temp dir + integrity_check + foreign_key_check + app detection.
    verify: (_out: string) =>
      timed(...litewardenArgv(["verify", ...parallelismArgs, ...lwSource]), statFile),
  };
  const samples: Record<keyof typeof tools, Sample[]> = {
    litewarden: [],
    litestream: [],
    verify: [],
  };

  // Warm-up and correctness check: one restore each, compared byte for byte.
  await removeOutputs(outDir);
  await tools.litewarden(`${outDir}/lw.db`);
  await tools.litestream(`${outDir}/ls.db`);
  const [a, b] = [await sha256(`${outDir}/lw.db`), await sha256(`${outDir}/ls.db`)];
  if (a !== b) throw new Error(`restores differ: litewarden ${a}, litestream ${b}`);
  console.log(`outputs identical (sha256 ${a.slice(0, 16)}…), ${mb(built.dbBytes)}`);

  for (let i = 0; i < runs; i++) {
    // Alternate which tool goes first, so neither always runs on a cache the other warmed.
    const order: (keyof typeof tools)[] = i % 2 === 0
      ? ["litewarden", "litestream", "verify"]
      : ["verify", "litestream", "litewarden"];
    for (const tool of order) {
      await removeOutputs(outDir);
      const s = await tools[tool](`${outDir}/${tool}.db`);
      samples[tool].push(s);
      console.log(
        `run ${i + 1} ${tool.padEnd(10)} ${s.seconds.toFixed(3)} s  peak RSS ${
          (s.maxRssKiB / 1024).toFixed(0)
        } MiB`,
      );
    }
  }
  await removeOutputs(outDir);

  // Start-up alone (module loading), to tell it apart from the restore work.
  const startup: number[] = [];
  for (let i = 0; i < 3; i++) {
    startup.push(
      (await timed(...litewardenArgv(["--version"]), statFile)).seconds,
    );
  }

  const lw = median(samples.litewarden.map((s) => s.seconds));
  const ls = median(samples.litestream.map((s) => s.seconds));
  const rss = peakMiB;
  console.log("");
  console.log(
    `median litewarden restore  ${lw.toFixed(3)} s   peak RSS ${rss(samples.litewarden)} MiB`,
  );
  console.log(
    `median litestream restore  ${ls.toFixed(3)} s   peak RSS ${rss(samples.litestream)} MiB`,
  );
  console.log(`ratio litewarden/litestream ${(lw / ls).toFixed(2)}`);
  const vf = median(samples.verify.map((s) => s.seconds));
  console.log(
    `median litewarden verify   ${vf.toFixed(3)} s   peak RSS ${rss(samples.verify)} MiB`,
  );
  console.log(`ratio verify/litestream-restore ${(vf / ls).toFixed(2)} (target ≤ 1.5)`);
  console.log(
    `(litewarden start-up alone, \`--version\`: ${median(startup).toFixed(3)} s)`,
  );
  console.log(
    `(load average ${await loadAverage()}; ${runs} runs each, alternating; RSS from ${
      hasGnuTime ? "/usr/bin/time" : "/proc VmHWM polling"
    }; litewarden timed as ${litewardenForm()}, including Deno start-up)`,
  );
} finally {
  await stopServer();
  await tmp?.cleanup();
}
