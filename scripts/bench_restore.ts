/**
 * Restore benchmark: `deno task bench` (after `deno install`).
 *
 * Builds a database of about `--size-mb` MB (default 200) while the real Litestream v0.3.13
 * replicates it into a file replica: half of it is in the database file before Litestream starts
 * (so it lands in the generation's snapshot), the other half is written in many small commits
 * that become many WAL segments across many WAL indexes. Then it times `litewarden restore` (as
 * `deno run -A main.ts restore …`, a fresh process each time, like a user runs it) and
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
 */
import { parseArgs } from "node:util";
import { generateAgeIdentity, recipientOf } from "../src/formats/age.ts";
import {
  fileReplicaObjects,
  fileReplicaUrl,
  litestreamPath,
  startReplicate,
  writeLitestreamConfig,
} from "../tests/support/litestream.ts";
import {
  checkpoint,
  createWalDatabase,
  inTransaction,
  pageCountOf,
} from "../tests/support/sqlite_writer.ts";
import { makeTempDir } from "../tests/support/tmp.ts";
import { sftpReplicaConfig, startSftpServer } from "../tests/support/sshd_server.ts";

const REPO = new URL("../", import.meta.url).pathname;
const PAGE_SIZE = 4096;
/** Bytes per row: half random (incompressible), half repetitive text, like real records. */
const ROW_BYTES = 1000;
/** Bytes committed between two replica syncs: one WAL segment each. */
const SEGMENT_BYTES = 512 << 10;
/** Litestream checkpoints (a new WAL index) once an index holds this many frames (~4 MiB). */
const MIN_CHECKPOINT_PAGES = 1000;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "size-mb": { type: "string", default: "200" },
    runs: { type: "string", default: "5" },
    dir: { type: "string" },
    parallelism: { type: "string" },
    age: { type: "boolean", default: false },
    sftp: { type: "boolean", default: false },
  },
});
const useAge = values.age;
const sizeMb = Number(values["size-mb"]);
const runs = Number(values.runs);
if (!(sizeMb > 0) || !Number.isInteger(runs) || runs < 1) {
  console.error(
    "usage: bench_restore.ts [--size-mb N] [--runs N] [--dir PATH] [--parallelism N] [--age] [--sftp]",
  );
  Deno.exit(2);
}
const parallelismArgs = values.parallelism ? ["-parallelism", values.parallelism] : [];

// ---------------------------------------------------------------------------------------------
// Building the replica

interface Built {
  replica: string;
  dbPath: string;
  config: string;
  /** `--age`: the identity file litewarden restores with. */
  identityFile?: string;
  dbBytes: number;
  objects: number;
  snapshotBytes: number;
  walBytes: number;
  indexes: number;
}

function fillRows(db: ReturnType<typeof createWalDatabase>, bytes: number, label: string): void {
  const insert = db.prepare("INSERT INTO items (label, body) VALUES (?, ?)");
  const text = "litewarden benchmark row; ".repeat(Math.ceil(ROW_BYTES / 2 / 26)).slice(
    0,
    ROW_BYTES / 2,
  );
  const textBytes = new TextEncoder().encode(text);
  inTransaction(db, () => {
    for (let done = 0, i = 0; done < bytes; done += ROW_BYTES, i++) {
      const body = new Uint8Array(ROW_BYTES);
      crypto.getRandomValues(body.subarray(0, ROW_BYTES / 2));
      body.set(textBytes, ROW_BYTES / 2);
      insert.run(`${label}-${i}`, body);
    }
  });
}

async function build(dir: string): Promise<Built> {
  const dbPath = `${dir}/bench.db`;
  const replica = `${dir}/replica`;
  const config = `${dir}/litestream.yml`;
  const identityFile = `${dir}/age-identity.txt`;
  const db = createWalDatabase(dbPath, { pageSize: PAGE_SIZE });
  try {
    const total = sizeMb * 1e6;
    const size = () => pageCountOf(db) * PAGE_SIZE;
    // First half: in the database file before Litestream starts → the snapshot.
    for (let n = 0; size() < total / 2; n++) {
      fillRows(db, Math.min(16 << 20, total / 2 - size()), `snap${n}`);
    }
    checkpoint(db, "TRUNCATE");
    let age: Record<string, unknown> | undefined;
    if (useAge) {
      const identity = await generateAgeIdentity();
      await Deno.writeTextFile(identityFile, `${identity}\n`);
      age = { age: { identities: [identity], recipients: [await recipientOf(identity, "bench")] } };
    }
    await writeLitestreamConfig(dir, [{
      path: dbPath,
      minCheckpointPageCount: MIN_CHECKPOINT_PAGES,
      replicas: [{ path: replica, extra: age }],
    }]);
    const rep = await startReplicate(config, { syncTimeoutMs: 120_000 });
    try {
      // Second half: one ~512 KiB commit per sync → one WAL segment each.
      for (let n = 0; size() < total; n++) {
        fillRows(db, SEGMENT_BYTES, `wal${n}`);
        await rep.waitForSync();
        if (n % 20 === 0) progress(`built ${Math.round(size() / 1e6)} MB`);
      }
    } finally {
      await rep.stop();
    }
  } finally {
    db.close();
  }
  progress("");
  const objects = await fileReplicaObjects(replica);
  const built: Built = {
    replica,
    dbPath,
    config,
    ...(useAge && { identityFile }),
    dbBytes: (await Deno.stat(dbPath)).size,
    objects: objects.length,
    snapshotBytes: objects.filter((o) => o.kind === "snapshot").reduce((s, o) => s + o.size, 0),
    walBytes: objects.filter((o) => o.kind === "wal").reduce((s, o) => s + o.size, 0),
    indexes: new Set(objects.filter((o) => o.kind === "wal").map((o) => o.index)).size,
  };
  await Deno.writeTextFile(`${dir}/built.json`, JSON.stringify({ sizeMb, useAge, ...built }));
  return built;
}

async function reuse(dir: string): Promise<Built | undefined> {
  try {
    const saved = JSON.parse(await Deno.readTextFile(`${dir}/built.json`));
    return saved.sizeMb === sizeMb && saved.useAge === useAge ? saved as Built : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Timing one restore

interface Sample {
  seconds: number;
  /** Peak resident set size in KiB. */
  maxRssKiB: number;
}

const hasGnuTime = await Deno.stat("/usr/bin/time").then((s) => s.isFile, () => false);

async function timed(cmd: string, args: string[], statFile: string): Promise<Sample> {
  const argv = hasGnuTime ? ["/usr/bin/time", "-f", "%M", "-o", statFile, cmd, ...args] : [
    cmd,
    ...args,
  ];
  const started = performance.now();
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: REPO,
    env: { NO_PROGRESS: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hwm = 0;
  let polling = !hasGnuTime;
  const poll = (async () => {
    while (polling) {
      hwm = Math.max(hwm, await vmHwm(child.pid));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const out = await child.output();
  const seconds = (performance.now() - started) / 1000;
  polling = false;
  await poll;
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}):\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const maxRssKiB = hasGnuTime ? Number((await Deno.readTextFile(statFile)).trim()) : hwm;
  return { seconds, maxRssKiB };
}

async function vmHwm(pid: number): Promise<number> {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function removeOutputs(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    await Deno.remove(`${dir}/${e.name}`, { recursive: true });
  }
}

/** sha256sum of a (large) file, without reading it into this process. */
async function sha256(path: string): Promise<string> {
  const out = await new Deno.Command("sha256sum", { args: [path], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split(" ")[0];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function progress(text: string): void {
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${text}`));
  }
}

// ---------------------------------------------------------------------------------------------

const tmp = values.dir ? undefined : await makeTempDir("litewarden-bench-");
let stopServer = async () => {};
const dir = values.dir ?? tmp!.path;
try {
  await Deno.mkdir(dir, { recursive: true });
  let built = values.dir ? await reuse(dir) : undefined;
  const buildStarted = performance.now();
  if (!built) {
    await Deno.remove(`${dir}/replica`, { recursive: true }).catch(() => {});
    built = await build(dir);
    console.log(`built in ${((performance.now() - buildStarted) / 1000).toFixed(1)} s`);
  }
  console.log(
    `replica${
      built.identityFile ? " (age-encrypted)" : ""
    }: ${built.objects} objects (${built.indexes} WAL indexes), snapshot ${
      mb(built.snapshotBytes)
    } + WAL ${mb(built.walBytes)} stored; database ${mb(built.dbBytes)}`,
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
      timed(Deno.execPath(), [
        "run",
        "-A",
        // The V8 flag the compiled binaries carry (deno.json `compile`, scripts/compile_all.sh).
        "--v8-flags=--max-semi-space-size=2",
        "main.ts",
        "restore",
        ...parallelismArgs,
        "-o",
        out,
        ...lwSource,
      ], statFile),
    litestream: (out: string) =>
      timed(litestreamPath(), ["restore", ...parallelismArgs, "-o", out, ...lsSource], statFile),
    // verify = restore into a temp dir + integrity_check + foreign_key_check + app detection.
    verify: (_out: string) =>
      timed(Deno.execPath(), [
        "run",
        "-A",
        "--v8-flags=--max-semi-space-size=2",
        "main.ts",
        "verify",
        ...parallelismArgs,
        ...lwSource,
      ], statFile),
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
      (await timed(Deno.execPath(), ["run", "-A", "main.ts", "--version"], statFile)).seconds,
    );
  }

  const lw = median(samples.litewarden.map((s) => s.seconds));
  const ls = median(samples.litestream.map((s) => s.seconds));
  const rss = (xs: Sample[]) => (Math.max(...xs.map((s) => s.maxRssKiB)) / 1024).toFixed(0);
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
    `(litewarden start-up alone, \`main.ts --version\`: ${median(startup).toFixed(3)} s)`,
  );
  console.log(
    `(${runs} runs each, alternating; RSS from ${
      hasGnuTime ? "/usr/bin/time" : "/proc VmHWM polling"
    }; litewarden timed as \`deno run -A --v8-flags=--max-semi-space-size=2 main.ts restore\`, including Deno start-up)`,
  );
} finally {
  await stopServer();
  await tmp?.cleanup();
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
