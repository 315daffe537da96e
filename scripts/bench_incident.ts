/**
 * After-an-incident benchmark: `deno task bench --incident` (after `deno install`).
 *
 * 1. `snapshot-diff` of two points of the ~200 MB replica `deno task bench` builds (the oldest
 *    point and the latest), against one `litestream restore` of its latest point: the goal is at
 *    most 3 times.
 * 2. `snapshot-diff --when` over a replica with at least 500 restore points (a ~20 MB database
 *    written in one commit per sync by the real Litestream v0.3.13), against one `litestream
 *    restore` of it: the goal is at most 5 times.
 *
 * Both tools run as fresh processes, alternately, `--runs` times each (default 3); medians and the
 * ratios are printed with the load average (the machine is shared).
 *
 * Options:
 *   --size-mb N   size of the diffed replica (default 200)
 *   --points N    restore points of the searched replica (default 600)
 *   --runs N      timed runs per tool (default 3)
 *   --dir PATH    build into PATH and keep it (a later run reuses it)
 */
import { parseArgs } from "node:util";
import {
  fileReplicaObjects,
  fileReplicaUrl,
  litestreamPath,
  startReplicate,
  writeLitestreamConfig,
} from "../tests/support/litestream.ts";
import { checkpoint, createWalDatabase, inTransaction } from "../tests/support/sqlite_writer.ts";
import { makeTempDir } from "../tests/support/tmp.ts";
import {
  buildOrReuse,
  describeBuilt,
  litewardenArgv,
  loadAverage,
  median,
  progress,
  removeOutputs,
  timed,
  useBundle,
} from "./bench_support.ts";

export async function runIncidentBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      "size-mb": { type: "string", default: "200" },
      points: { type: "string", default: "600" },
      runs: { type: "string", default: "3" },
      dir: { type: "string" },
    },
  });
  const sizeMb = Number(values["size-mb"]);
  const pointsWanted = Number(values.points);
  const runs = Number(values.runs);
  const tmp = values.dir ? undefined : await makeTempDir("litewarden-bench-incident-");
  const dir = values.dir ?? tmp!.path;
  try {
    await useBundle(tmp?.path ?? dir);
    const built = await buildOrReuse(`${dir}/diff`, sizeMb);
    console.log(`diffed replica: ${describeBuilt(built)}`);
    const searched = await buildManyPoints(`${dir}/when`, pointsWanted);
    console.log(
      `searched replica: ${
        (searched.dbBytes / 1e6).toFixed(1)
      } MB database, ${searched.points} restore points (WAL segments) in ${searched.indexes} WAL indexes`,
    );
    const out = `${dir}/out`;
    await Deno.mkdir(out, { recursive: true });
    const stat = `${dir}/time.txt`;
    const restore = (url: string) => () =>
      timed(litestreamPath(), ["restore", "-o", `${out}/ls.db`, url], stat);
    const litewarden = (a: string[]) => () => {
      const [cmd, argv] = litewardenArgv(a);
      return timed(cmd, argv, stat);
    };
    const diffUrl = fileReplicaUrl(built.replica);
    const whenUrl = fileReplicaUrl(searched.replica);
    const oldest = await oldestPointSpec(built.replica);
    const cases = [
      {
        name: "snapshot-diff of two points",
        goal: 3,
        ours: litewarden(["snapshot-diff", diffUrl, "--from", oldest, "--to", "latest", "--json"]),
        base: restore(diffUrl),
      },
      {
        name: `snapshot-diff --when over ${searched.points} points`,
        goal: 5,
        // The row the last commit wrote: the search runs to the very end.
        ours: litewarden([
          "snapshot-diff",
          whenUrl,
          "--when",
          `SELECT count(*) FROM items WHERE label = 'p${searched.points - 1}'`,
          "--json",
        ]),
        base: restore(whenUrl),
      },
    ];
    const load = await loadAverage();
    for (const c of cases) {
      const ours: number[] = [];
      const base: number[] = [];
      for (let i = 0; i < runs; i++) {
        await removeOutputs(out);
        base.push((await c.base()).seconds);
        await removeOutputs(out);
        ours.push((await c.ours()).seconds);
      }
      const ratio = median(ours) / median(base);
      console.log(
        `${c.name}: litewarden ${median(ours).toFixed(2)} s, one litestream restore ${
          median(base).toFixed(2)
        } s, ratio ${ratio.toFixed(2)} (goal ≤ ${c.goal}: ${ratio <= c.goal ? "met" : "NOT met"})`,
      );
    }
    console.log(`load average at the start: ${load}; ${runs} runs each, medians`);
  } finally {
    await tmp?.[Symbol.asyncDispose]();
  }
}

/** `index:I_O` of the first WAL segment of the replica's newest generation (its oldest point). */
async function oldestPointSpec(replica: string): Promise<string> {
  const objects = await fileReplicaObjects(replica);
  const gen = objects.at(-1)!.generation;
  const first = objects.find((o) => o.generation === gen && o.kind === "wal")!;
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  return `index:${hex(first.index)}_${hex(first.offset!)}`;
}

/** A ~20 MB database, then `points` small commits, each its own WAL segment (one sync each). */
async function buildManyPoints(dir: string, points: number) {
  await Deno.mkdir(dir, { recursive: true });
  const savedPath = `${dir}/built.json`;
  try {
    const saved = JSON.parse(await Deno.readTextFile(savedPath));
    if (saved.points >= points) return saved as Awaited<ReturnType<typeof build>>;
  } catch {
    // Build.
  }
  return await build();

  async function build() {
    const dbPath = `${dir}/many.db`;
    const replica = `${dir}/replica`;
    await Deno.remove(replica, { recursive: true }).catch(() => {});
    await Deno.remove(dbPath).catch(() => {});
    // The writer's `items` table (label, body), filled with random bodies.
    const db = createWalDatabase(dbPath, { pageSize: 4096 });
    try {
      const insert = db.prepare("INSERT INTO items (label, body) VALUES (?, hex(randomblob(500)))");
      inTransaction(db, () => {
        for (let i = 0; i < 20_000; i++) insert.run(`base${i}`);
      });
      checkpoint(db, "TRUNCATE");
      const config = await writeLitestreamConfig(dir, [{
        path: dbPath,
        monitorInterval: 10,
        minCheckpointPageCount: 400,
        replicas: [{ path: replica, syncInterval: 10 }],
      }]);
      const rep = await startReplicate(config, { syncTimeoutMs: 60_000 });
      try {
        for (let i = 0; i < points; i++) {
          insert.run(`p${i}`);
          await rep.waitForSync();
          if (i % 50 === 0) progress(`committed ${i} of ${points}`);
        }
      } finally {
        await rep.stop();
      }
    } finally {
      db.close();
    }
    progress("");
    const objects = await fileReplicaObjects(replica);
    const wal = objects.filter((o) => o.kind === "wal");
    const result = {
      replica,
      dbBytes: (await Deno.stat(dbPath)).size,
      points: wal.length,
      indexes: new Set(wal.map((o) => o.index)).size,
    };
    await Deno.writeTextFile(savedPath, JSON.stringify(result));
    return result;
  }
}

if (import.meta.main) await runIncidentBench(Deno.args);
