/**
 * The S3 cold-start benchmark: `deno task bench --s3` (after `deno install`).
 *
 * For each size, a replica written by the real Litestream v0.3.13 (scripts/bench_support.ts:
 * half snapshot, half many WAL segments in many indexes) is uploaded into the S3 server the tests
 * use (fauxqs on 127.0.0.1, tests/support/s3_server.ts), and both tools read it through
 * scripts/latency_proxy.ts, which adds a round trip of N ms to every request and connection.
 * For every size and latency, three things are timed alternately (fresh processes, the order
 * flipped every run): `litewarden restore`, `litestream restore`, and the container gate
 * (`litewarden restore` + `litewarden verify --file`, summed). Both tools read the same
 * litestream.yml (`-config`). Prints medians, the ratios to Litestream's restore, peak RSS and the
 * load average; then a parallelism sweep of litewarden against Litestream at its default, and
 * start-up: `deno run` of an empty script, `litewarden --version` and a restore of the 300 KB sample
 * replica (samples/) from S3.
 *
 * Options:
 *   --sizes LIST       database sizes in MB (default 30,200)
 *   --latency LIST     added round trips in ms (default 0,10,50,150)
 *   --runs N           timed runs per tool and cell (default 3)
 *   --parallelism N    passed to litewarden in the matrix (default: its own)
 *   --sweep LIST       litewarden parallelism values for the sweep (default 1,2,4,8,16,32; "" skips)
 *   --sweep-latency N  latency of the sweep, on the largest size (default 50)
 *   --dir PATH         keep the built replicas in PATH and reuse them on the next run
 *   --source           time `deno run main.ts` instead of the bundle the release binaries are
 *                      compiled from (adds module-graph and npm resolution to every start)
 */
import { parseArgs } from "node:util";
import { S3Storage } from "../src/storage/s3.ts";
import { litestreamPath, writeLitestreamConfig } from "../tests/support/litestream.ts";
import { s3TargetFor, startS3Server, uploadTree } from "../tests/support/s3_server.ts";
import type { TestS3Server } from "../tests/support/s3_server.ts";
import { makeTempDir } from "../tests/support/tmp.ts";
import {
  buildOrReuse,
  type Built,
  cpu,
  describeBuilt,
  litewardenArgv,
  litewardenForm,
  loadAverage,
  median,
  peakMiB,
  removeOutputs,
  REPO,
  type Sample,
  sha256,
  timed,
  useBundle,
} from "./bench_support.ts";
import { startLatencyProxy } from "./latency_proxy.ts";

const BUCKET = "bench";

function list(text: string | undefined): number[] {
  if (!text) return [];
  return text.split(",").filter((s) => s.trim() !== "").map(Number);
}

interface Replica {
  sizeMb: number;
  built: Built;
  /** Key prefix in the bucket. */
  prefix: string;
}

export async function runS3Bench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      sizes: { type: "string", default: "30,200" },
      latency: { type: "string", default: "0,10,50,150" },
      runs: { type: "string", default: "3" },
      parallelism: { type: "string" },
      sweep: { type: "string", default: "1,2,4,8,16,32" },
      "sweep-latency": { type: "string", default: "50" },
      dir: { type: "string" },
      source: { type: "boolean", default: false },
    },
  });
  const sizes = list(values.sizes);
  const latencies = list(values.latency);
  const sweep = list(values.sweep);
  const sweepLatency = Number(values["sweep-latency"]);
  const runs = Number(values.runs);
  const bad = (xs: number[]) => xs.some((x) => !(x >= 0) || !Number.isFinite(x));
  if (
    sizes.length === 0 || bad(sizes) || bad(latencies) || bad(sweep) || !(sweepLatency >= 0) ||
    !Number.isInteger(runs) || runs < 1
  ) {
    console.error(
      "usage: bench_restore.ts --s3 [--sizes 30,200] [--latency 0,10,50,150] [--runs N] [--parallelism N] [--sweep 1,2,4,8,16,32] [--sweep-latency MS] [--dir PATH]",
    );
    Deno.exit(2);
  }
  const parallelismArgs = values.parallelism ? ["--parallelism", values.parallelism] : [];

  const tmp = await makeTempDir("litewarden-bench-s3-");
  const keep = values.dir;
  if (!values.source) await useBundle(tmp.path);
  const server = await startS3Server();
  try {
    await server.createBucket(BUCKET);
    const replicas: Replica[] = [];
    for (const sizeMb of sizes) {
      const built = await buildOrReuse(`${keep ?? tmp.path}/size-${sizeMb}`, sizeMb);
      const prefix = `size-${sizeMb}`;
      await upload(server, built.replica, prefix);
      replicas.push({ sizeMb, built, prefix });
      console.log(`${sizeMb} MB replica: ${describeBuilt(built)}`);
    }
    const sample = "samples-replica";
    await upload(server, `${REPO}samples/vaultwarden-replica`, sample);

    const outDir = tmp.join("restores");
    await Deno.mkdir(outDir);
    const statFile = tmp.join("time.txt");
    const bench = new Bench(server, tmp.path, outDir, statFile);

    console.log(`\nload average ${await loadAverage()} (${navigator.hardwareConcurrency} cores)`);
    console.log(
      "size    latency  litewarden  litestream  ratio  gate     gate/ls  CPU lw/ls s  RSS lw/gate/ls MiB",
    );
    for (const r of replicas) {
      await bench.checkIdentical(r);
      for (const latency of latencies) {
        const cell = await bench.cell(r, latency, runs, parallelismArgs);
        const lw = median(cell.litewarden.map((s) => s.seconds));
        const ls = median(cell.litestream.map((s) => s.seconds));
        const gate = median(cell.gate.map((s) => s.seconds));
        console.log(
          `${`${r.sizeMb} MB`.padEnd(8)}${`${latency} ms`.padEnd(9)}${secs(lw)}${secs(ls)}${
            (lw / ls).toFixed(2).padEnd(7)
          }${secs(gate, 9)}${(gate / ls).toFixed(2).padEnd(9)}${
            `${cpu(cell.litewarden).toFixed(2)}/${cpu(cell.litestream).toFixed(2)}`.padEnd(13)
          }${peakMiB(cell.litewarden)}/${peakMiB(cell.gate)}/${peakMiB(cell.litestream)}`,
        );
      }
    }

    if (sweep.length > 0) {
      const r = replicas[replicas.length - 1];
      console.log(
        `\nparallelism sweep: ${r.sizeMb} MB at ${sweepLatency} ms (litestream at its default)`,
      );
      console.log("parallelism  litewarden  litestream  ratio  CPU lw s  RSS MiB");
      for (const p of sweep) {
        const cell = await bench.cell(r, sweepLatency, runs, ["--parallelism", String(p)], false);
        const lw = median(cell.litewarden.map((s) => s.seconds));
        const ls = median(cell.litestream.map((s) => s.seconds));
        console.log(
          `${String(p).padEnd(13)}${secs(lw)}${secs(ls)}${(lw / ls).toFixed(2).padEnd(7)}${
            cpu(cell.litewarden).toFixed(2).padEnd(10)
          }${peakMiB(cell.litewarden)}`,
        );
      }
    }

    console.log("\nstart-up (medians of 5, alternating)");
    const empty = tmp.join("empty.ts");
    await Deno.writeTextFile(empty, "");
    const startup = { empty: [] as Sample[], version: [] as Sample[], sample: [] as Sample[] };
    const sampleConfig = await bench.config(sample, "sample", 0);
    for (let i = 0; i < 5; i++) {
      startup.empty.push(await timed(Deno.execPath(), ["run", "-A", empty], statFile));
      startup.version.push(await timed(...litewardenArgv(["--version"]), statFile));
      await removeOutputs(outDir);
      startup.sample.push(
        await timed(
          ...litewardenArgv([
            "restore",
            "-o",
            `${outDir}/db.sqlite3`,
            "-config",
            sampleConfig,
            tmp.join("sample"),
          ]),
          statFile,
        ),
      );
    }
    const base = median(startup.empty.map((s) => s.seconds));
    for (const [name, xs] of Object.entries(startup)) {
      const m = median(xs.map((s) => s.seconds));
      console.log(
        `${
          {
            empty: "deno run empty.ts",
            version: "litewarden --version",
            sample: "restore 300 KB sample (S3, 0 ms)",
          }[name]!.padEnd(34)
        }${secs(m)}${(m / base).toFixed(2)}× empty`,
      );
    }
    console.log(
      `\nload average ${await loadAverage()}; ${runs} runs per cell; litewarden as ${litewardenForm()}, Deno start-up included; the S3 server and the proxy run in this process`,
    );
  } finally {
    await server.stop();
    await tmp.cleanup();
  }
}

function secs(s: number, width = 12): string {
  return `${s.toFixed(3)} s`.padEnd(width);
}

async function upload(server: TestS3Server, dir: string, prefix: string): Promise<void> {
  const storage = new S3Storage(s3TargetFor(server, BUCKET, prefix));
  try {
    await uploadTree(storage, dir);
  } finally {
    storage.close();
  }
}

class Bench {
  constructor(
    private readonly server: TestS3Server,
    private readonly dir: string,
    private readonly outDir: string,
    private readonly statFile: string,
  ) {}

  /** A litestream.yml naming database `name` with the replica at `prefix`, via a proxy endpoint. */
  config(prefix: string, name: string, latency: number, endpoint = this.server.endpoint) {
    return writeLitestreamConfig(this.dir, [{
      path: `${this.dir}/${name}`,
      replicas: [{
        type: "s3",
        bucket: BUCKET,
        path: prefix,
        endpoint,
        forcePathStyle: true,
        accessKeyId: this.server.credentials.accessKeyId,
        secretAccessKey: this.server.credentials.secretAccessKey,
      }],
    }], { fileName: `${name}-${latency}ms.yml`, testDefaults: false });
  }

  private run(tool: "litewarden" | "litestream", cfg: string, db: string, extra: string[]) {
    const name = `${this.dir}/${db}`;
    const out = `${this.outDir}/${tool}.db`;
    return tool === "litewarden"
      ? timed(
        ...litewardenArgv(["restore", ...extra, "-o", out, "-config", cfg, name]),
        this.statFile,
      )
      : timed(litestreamPath(), ["restore", "-o", out, "-config", cfg, name], this.statFile);
  }

  async checkIdentical(r: Replica): Promise<void> {
    const cfg = await this.config(r.prefix, `db${r.sizeMb}`, 0);
    await removeOutputs(this.outDir);
    await this.run("litewarden", cfg, `db${r.sizeMb}`, []);
    await this.run("litestream", cfg, `db${r.sizeMb}`, []);
    const [a, b] = [
      await sha256(`${this.outDir}/litewarden.db`),
      await sha256(`${this.outDir}/litestream.db`),
    ];
    if (a !== b) {
      throw new Error(`restores of ${r.sizeMb} MB differ: litewarden ${a}, litestream ${b}`);
    }
    await removeOutputs(this.outDir);
  }

  /** `runs` alternating samples of each tool (and the gate) at `latency`. */
  async cell(r: Replica, latency: number, runs: number, lwArgs: string[], withGate = true) {
    const proxy = await startLatencyProxy({ target: this.server.endpoint, delayMs: latency });
    const name = `db${r.sizeMb}`;
    try {
      const cfg = await this.config(r.prefix, name, latency, proxy.endpoint);
      const samples = {
        litewarden: [] as Sample[],
        litestream: [] as Sample[],
        gate: [] as Sample[],
      };
      const gate = async (): Promise<Sample> => {
        const restore = await this.run("litewarden", cfg, name, lwArgs);
        const verify = await timed(
          ...litewardenArgv(["verify", "--file", `${this.outDir}/litewarden.db`]),
          this.statFile,
        );
        return {
          seconds: restore.seconds + verify.seconds,
          maxRssKiB: Math.max(restore.maxRssKiB, verify.maxRssKiB),
          cpuSeconds: restore.cpuSeconds + verify.cpuSeconds,
        };
      };
      for (let i = 0; i < runs; i++) {
        const order: (keyof typeof samples)[] = i % 2 === 0
          ? ["litewarden", "litestream", "gate"]
          : ["gate", "litestream", "litewarden"];
        for (const tool of order) {
          if (tool === "gate" && !withGate) continue;
          await removeOutputs(this.outDir);
          samples[tool].push(
            tool === "gate" ? await gate() : await this.run(tool, cfg, name, lwArgs),
          );
        }
      }
      await removeOutputs(this.outDir);
      return samples;
    } finally {
      await proxy.stop();
    }
  }
}
