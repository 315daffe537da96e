/**
 * What the restore benchmarks share (scripts/bench_restore.ts, scripts/bench_s3.ts): building a
 * replica with the real Litestream, timing a child process with its peak RSS, medians.
 */
import {
  fileReplicaObjects,
  startReplicate,
  writeLitestreamConfig,
} from "../tests/support/litestream.ts";
import {
  checkpoint,
  createWalDatabase,
  inTransaction,
  pageCountOf,
} from "../tests/support/sqlite_writer.ts";
import { generateAgeIdentity, recipientOf } from "../src/formats/age.ts";

export const REPO = new URL("../", import.meta.url).pathname;
const PAGE_SIZE = 4096;
/** Bytes per row: half random (incompressible), half repetitive text, like real records. */
const ROW_BYTES = 1000;
/** Bytes committed between two replica syncs: one WAL segment each. */
const SEGMENT_BYTES = 512 << 10;
/** Litestream checkpoints (a new WAL index) once an index holds this many frames (~4 MiB). */
const MIN_CHECKPOINT_PAGES = 1000;

export interface Built {
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

/**
 * Builds a database of about `sizeMb` MB in `dir` while the real Litestream v0.3.13 replicates it
 * into a file replica: half of it is in the database file before Litestream starts (so it lands
 * in the generation's snapshot), the other half is written in many small commits that become
 * many WAL segments across many WAL indexes.
 */
async function build(dir: string, sizeMb: number, useAge: boolean): Promise<Built> {
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

/**
 * The replica of `sizeMb` MB in `dir`: the one a previous run left there (same size and
 * encryption), or a new one.
 */
export async function buildOrReuse(dir: string, sizeMb: number, useAge = false): Promise<Built> {
  await Deno.mkdir(dir, { recursive: true });
  try {
    const saved = JSON.parse(await Deno.readTextFile(`${dir}/built.json`));
    if (saved.sizeMb === sizeMb && saved.useAge === useAge) return saved as Built;
  } catch {
    // Nothing reusable: build.
  }
  await Deno.remove(`${dir}/replica`, { recursive: true }).catch(() => {});
  await Deno.remove(`${dir}/bench.db`).catch(() => {});
  const started = performance.now();
  const built = await build(dir, sizeMb, useAge);
  console.log(
    `built a ${sizeMb} MB replica in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return built;
}

export function describeBuilt(built: Built): string {
  return `${built.objects} objects (${built.indexes} WAL indexes), snapshot ${
    mb(built.snapshotBytes)
  } + WAL ${mb(built.walBytes)} stored; database ${mb(built.dbBytes)}`;
}

// ---------------------------------------------------------------------------------------------
// Timing one child process

export interface Sample {
  seconds: number;
  /** Peak resident set size in KiB. */
  maxRssKiB: number;
  /** User + system CPU seconds (0 without /usr/bin/time): less noisy than wall time on a shared machine. */
  cpuSeconds: number;
}

export const hasGnuTime = await Deno.stat("/usr/bin/time").then((s) => s.isFile, () => false);

/** Runs `cmd args` in the repository (NO_PROGRESS=1 plus `env`); fails unless it exits 0. */
export async function timed(
  cmd: string,
  args: string[],
  statFile: string,
  env: Record<string, string> = {},
): Promise<Sample> {
  const argv = hasGnuTime ? ["/usr/bin/time", "-f", "%M %U %S", "-o", statFile, cmd, ...args] : [
    cmd,
    ...args,
  ];
  const started = performance.now();
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: REPO,
    env: { NO_PROGRESS: "1", ...env },
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
  if (!hasGnuTime) return { seconds, maxRssKiB: hwm, cpuSeconds: 0 };
  // The last line: GNU time puts "Command exited with non-zero status" lines before it.
  const [rss, user, sys] = (await Deno.readTextFile(statFile)).trim().split("\n").at(-1)!.split(" ")
    .map(Number);
  return { seconds, maxRssKiB: rss, cpuSeconds: user + sys };
}

async function vmHwm(pid: number): Promise<number> {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * What the benchmarks run as litewarden: `deno run -A` of the bundle (`deno task bundle`, the file
 * the release binaries are compiled from, so it starts like them: no module graph to resolve) or,
 * with {@link useSourceEntry}, of main.ts; with the V8 flag the compiled binaries carry.
 */
export function litewardenArgv(args: string[]): [string, string[]] {
  return [
    Deno.execPath(),
    ["run", "-A", "--v8-flags=--max-semi-space-size=2", litewardenEntry, ...args],
  ];
}

let litewardenEntry = "main.ts";

/** Bundles main.ts into `dir` (as `deno task bundle` does) and times that from now on. */
export async function useBundle(dir: string): Promise<string> {
  const out = `${dir}/litewarden.js`;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "--external", "*.node", "-o", out, "main.ts"],
    cwd: REPO,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!res.success) throw new Error("deno bundle failed");
  litewardenEntry = out;
  return out;
}

/** Times `deno run main.ts` (module graph and npm resolution included) instead of the bundle. */
export function useSourceEntry(): void {
  litewardenEntry = "main.ts";
}

/** How litewarden is run, for the footnote. */
export function litewardenForm(): string {
  return litewardenEntry === "main.ts"
    ? "`deno run -A --v8-flags=--max-semi-space-size=2 main.ts`"
    : "`deno run -A --v8-flags=--max-semi-space-size=2` of the bundle (what the binaries are compiled from)";
}

export async function removeOutputs(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    await Deno.remove(`${dir}/${e.name}`, { recursive: true });
  }
}

/** sha256sum of a (large) file, without reading it into this process. */
export async function sha256(path: string): Promise<string> {
  const out = await new Deno.Command("sha256sum", { args: [path], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split(" ")[0];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median CPU seconds. */
export function cpu(xs: Sample[]): number {
  return median(xs.map((s) => s.cpuSeconds));
}

export function peakMiB(xs: Sample[]): string {
  return (Math.max(...xs.map((s) => s.maxRssKiB)) / 1024).toFixed(0);
}

export function progress(text: string): void {
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${text}`));
  }
}

export function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** The machine's load average (the bench shares its cores), from /proc/loadavg. */
export async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}
