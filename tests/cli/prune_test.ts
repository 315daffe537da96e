/**
 * `litewarden prune` end to end: real Litestream v0.3.13 replicas (object times set through file
 * mtimes, or through S3 LastModified rewritten by a proxy in front of the test server), v0.5 trees
 * built from the LTX fixtures, interrupted prunes, prune next to a running Litestream, denied
 * deletes and replicas that change under a prune.
 *
 * Every kept point is restored before and after `prune --apply`, by litewarden and (v0.3) by
 * `litestream restore`, by time and by index; all four results must be byte-identical.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import {
  listFiles,
  litestreamRestore,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import type { ReplicaConfig } from "../support/litestream.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { haveSshd, sftpReplicaConfig, startSftpServer } from "../support/sshd_server.ts";
import type { TestS3Server } from "../support/s3_server.ts";
import {
  checkpoint,
  createWalDatabase,
  readUserTables,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import type { TempDir } from "../support/tmp.ts";
import { FileStorage } from "../../src/storage/file.ts";
import { S3Storage } from "../../src/storage/s3.ts";
import { AbsStorage } from "../../src/storage/abs.ts";
import { absTargetFor, startAzurite } from "../support/azurite_server.ts";
import { listReplica } from "../../src/replica/listing.ts";
import { planPrune } from "../../src/replica/retention.ts";
import type { KeepRules, PrunePlan } from "../../src/replica/retention.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const FIXTURES = new URL("../fixtures/ltx/", import.meta.url).pathname;
const MINUTE = 60_000;

// ---------------------------------------------------------------------------------------------
// The JSON documents the tests read

interface PruneDoc {
  ok: boolean;
  applied: boolean;
  notes: string[];
  points: {
    format: string;
    generation: string | null;
    index: number | null;
    txid: string | null;
    time: string;
    key: string;
    kept: boolean;
    reasons: string[];
  }[];
  delete: {
    objects: number;
    bytes: number;
    requests: number;
    groups: { kind: string; generation?: string; why: string; objects: number; bytes: number }[];
    keys: string[];
  };
  protectedYoung: number;
  deleted: number;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** RFC 3339 without milliseconds when they are zero (what a user types). */
function rfc3339(t: Date): string {
  return t.toISOString().replace(".000Z", "Z");
}

const hex8 = (n: number) => n.toString(16).padStart(8, "0");

/** Every file below `dir` with its size and mtime: what "nothing changed" compares. */
async function snapshotDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await listFiles(dir)) {
    const st = await Deno.stat(`${dir}/${key}`);
    out.push(`${key} ${st.size} ${st.mtime?.toISOString()}`);
  }
  return out;
}

async function waitFor(
  what: string,
  cond: () => Promise<boolean>,
  timeoutMs = 10_000,
  pollMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// An S3 proxy in front of the test server: LastModified under control, deletes refused on demand

interface S3Proxy {
  endpoint: string;
  /** Bucket-relative key → the LastModified listings report for it. */
  times: Map<string, Date>;
  /** Answer deletes the way S3 does for a key without s3:DeleteObject. */
  denyDeletes: boolean;
  /** Runs before a delete request is forwarded (or denied). */
  beforeDelete?: (keys: string[]) => Promise<void>;
  deleteRequests: number;
  stop(): Promise<void>;
}

/**
 * S3 LastModified is the object time of a v0.3 replica on S3 (§2.5) and the test server stamps
 * uploads with the current time; the proxy rewrites the listings (ListObjects v1 and v2 share the
 * `<Contents>` shape) so the same dated replica exists on S3 as on disk. Litestream and litewarden
 * both talk to the proxy.
 */
function startS3Proxy(upstream: string, dialect: "s3" | "abs" = "s3"): S3Proxy {
  const proxy: S3Proxy = {
    endpoint: "",
    times: new Map(),
    denyDeletes: false,
    deleteRequests: 0,
    stop: () => server.shutdown(),
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      const body = req.method === "GET" || req.method === "HEAD"
        ? undefined
        : new Uint8Array(await req.arrayBuffer());
      const parts = url.pathname.split("/").filter((p) => p !== "");
      // Azure paths carry the account before the container: /ACCOUNT/CONTAINER/BLOB.
      const keyStart = dialect === "abs" ? 2 : 1;
      const batchDelete = req.method === "POST" && url.searchParams.has("delete");
      if (batchDelete || req.method === "DELETE") {
        const keys = batchDelete
          ? [...new TextDecoder().decode(body).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])
          : [decodeURIComponent(parts.slice(keyStart).join("/"))];
        proxy.deleteRequests++;
        await proxy.beforeDelete?.(keys);
        if (proxy.denyDeletes) {
          return dialect === "abs" ? azureDenied() : accessDenied(keys, batchDelete);
        }
      }
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body,
        redirect: "manual",
      });
      const isList = dialect === "abs"
        ? url.searchParams.get("comp") === "list"
        : parts.length === 1;
      if (req.method !== "GET" || !isList || !res.ok) {
        return new Response(res.body, { status: res.status, headers: res.headers });
      }
      const xml = dialect === "abs"
        ? retimeBlobList(await res.text(), proxy.times)
        : (await res.text()).replace(/<Contents>[\s\S]*?<\/Contents>/g, (block) => {
          const key = /<Key>([^<]*)<\/Key>/.exec(block)?.[1];
          const time = key === undefined ? undefined : proxy.times.get(key);
          if (!time) return block;
          return block.replace(
            /<LastModified>[^<]*<\/LastModified>/,
            `<LastModified>${time.toISOString()}</LastModified>`,
          );
        });
      const out = new Headers(res.headers);
      out.delete("content-length");
      return new Response(xml, { status: res.status, headers: out });
    },
  );
  proxy.endpoint = `http://127.0.0.1:${server.addr.port}`;
  return proxy;
}

/** Azure's List Blobs: the object time is `Creation-Time` (RFC 1123, whole seconds). */
function retimeBlobList(xml: string, times: Map<string, Date>): string {
  return xml.replace(/<Blob>[\s\S]*?<\/Blob>/g, (block) => {
    const name = /<Name>([^<]*)<\/Name>/.exec(block)?.[1];
    const time = name === undefined ? undefined : times.get(name);
    if (!time) return block;
    return block.replace(
      /<Creation-Time>[^<]*<\/Creation-Time>/,
      `<Creation-Time>${time.toUTCString()}</Creation-Time>`,
    );
  });
}

/** Azure's answer to a delete the credentials may not make. */
function azureDenied(): Response {
  return new Response(
    "<Error><Code>AuthorizationPermissionMismatch</Code><Message>denied</Message></Error>",
    { status: 403, headers: { "x-ms-error-code": "AuthorizationPermissionMismatch" } },
  );
}

function accessDenied(keys: string[], batch: boolean): Response {
  const xml = { "content-type": "application/xml" };
  if (!batch) {
    return new Response(
      "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
      { status: 403, headers: xml },
    );
  }
  const errors = keys.map((k) =>
    `<Error><Key>${k}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
  ).join("");
  return new Response(
    `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${errors}</DeleteResult>`,
    { status: 200, headers: xml },
  );
}

// ---------------------------------------------------------------------------------------------
// A real Litestream v0.3.13 replica, built once: generation A (5 snapshots) and B (6 snapshots),
// one snapshot per WAL index, then dated by SCHEDULE.

/** Snapshot times, A0…A4 then B0…B5; each index's WAL segments follow a minute apart. */
const SCHEDULE: [string, string][] = [
  ["A0", "2025-01-06T10:00:00Z"],
  ["A1", "2025-02-12T10:00:00Z"],
  ["A2", "2025-03-03T10:00:00Z"],
  ["A3", "2025-03-20T10:00:00Z"],
  ["A4", "2025-04-01T09:00:00Z"],
  ["B0", "2025-05-02T08:00:00Z"],
  ["B1", "2025-05-12T08:00:00Z"],
  ["B2", "2025-05-13T08:00:00Z"],
  ["B3", "2025-05-14T08:00:00Z"],
  ["B4", "2025-05-14T09:30:00Z"],
  ["B5", "2025-05-14T10:15:00Z"],
];

interface V03Point {
  id: string;
  generation: string;
  index: number;
  time: Date;
  snapshotKey: string;
}

type Form = "timestamp" | "index";
const FORMS: Form[] = ["timestamp", "index"];

interface V03Base {
  tmp: TempDir;
  replica: string;
  points: V03Point[];
  /** Key → object time. */
  times: Map<string, Date>;
  /** `${point id}/${form}` → sha256 of the restore before any prune. */
  before: Map<string, string>;
}

let baseOnce: Promise<V03Base> | undefined;
const v03Base = () => (baseOnce ??= buildV03Base());

async function buildV03Base(): Promise<V03Base> {
  const tmp = await makeTempDir("litewarden-prune-");
  const dbPath = tmp.join("app.db");
  const replica = tmp.join("replica");
  const meta = tmp.join(".app.db-litestream");
  const config = await writeLitestreamConfig(tmp.path, [{
    path: dbPath,
    minCheckpointPageCount: 16,
    replicas: [{ path: replica, snapshotInterval: 40 }],
  }], { fileName: "build.yml" });
  const db = createWalDatabase(dbPath, { pageSize: 1024 });
  const generations: string[] = [];
  try {
    for (const [g, count] of [[0, 5], [1, 6]]) {
      if (g > 0) assertEquals(checkpoint(db, "TRUNCATE").busy, 0); // → a new generation
      const rep = await startReplicate(config);
      try {
        for (let i = 0; i < count; i++) {
          // More pages than min-checkpoint-page-count: Litestream checkpoints, index i begins.
          if (i > 0) writeBigTransaction(db, { minPages: 20, label: `g${g}-i${i}-big` });
          writeSmallTransactions(db, 2, { label: `g${g}-i${i}-a` });
          await rep.waitForSync();
          const gen = (await Deno.readTextFile(`${meta}/generation`)).trim();
          const snapshot = `${replica}/generations/${gen}/snapshots/${hex8(i)}.snapshot.lz4`;
          await waitFor(`snapshot ${i} of generation ${g}`, () => exists(snapshot));
          writeSmallTransactions(db, 2, { label: `g${g}-i${i}-b` });
          await rep.waitForSync();
        }
      } finally {
        await rep.stop();
      }
      generations.push((await Deno.readTextFile(`${meta}/generation`)).trim());
    }
  } finally {
    db.close();
  }

  // Date every object: snapshot i at its SCHEDULE time, its index's segments a minute apart.
  const times = new Map<string, Date>();
  const points: V03Point[] = [];
  let slot = 0;
  for (const gen of generations) {
    const dir = `${replica}/generations/${gen}`;
    const snaps = (await listFiles(`${dir}/snapshots`)).sort();
    const segs = (await listFiles(`${dir}/wal`)).sort();
    assertEquals(snaps, snaps.map((_, i) => `${hex8(i)}.snapshot.lz4`), `snapshots of ${gen}`);
    assertEquals(
      [...new Set(segs.map((s) => s.slice(0, 8)))],
      snaps.map((_, i) => hex8(i)),
      `WAL indexes of ${gen}`,
    );
    for (let i = 0; i < snaps.length; i++) {
      const [id, iso] = SCHEDULE[slot++];
      const t = new Date(iso);
      const snapshotKey = `generations/${gen}/snapshots/${snaps[i]}`;
      times.set(snapshotKey, t);
      points.push({ id, generation: gen, index: i, time: t, snapshotKey });
      segs.filter((s) => s.startsWith(hex8(i))).forEach((s, k) => {
        times.set(`generations/${gen}/wal/${s}`, new Date(t.getTime() + (k + 1) * MINUTE));
      });
    }
  }
  assertEquals(slot, SCHEDULE.length);
  for (const [key, t] of times) await Deno.utime(`${replica}/${key}`, t, t);
  assertEquals((await listFiles(replica)).length, times.size);

  // What every point restores to before any prune: litewarden and litestream agree.
  const config2 = await fileConfig(tmp, replica);
  const before = new Map<string, string>();
  await Promise.all(points.flatMap((p) =>
    FORMS.map(async (form) => {
      before.set(`${p.id}/${form}`, await restoreV03(config2, p, form, tmp));
    })
  ));
  // Points differ from each other (the restore really is point in time).
  assertEquals(new Set(points.map((p) => before.get(`${p.id}/timestamp`))).size, points.length);
  return { tmp, replica, points, times, before };
}

/** A litestream.yml naming `replica` for the database `<tmp>/app.db`. */
async function fileConfig(tmp: TempDir, replica: string, name = "prune.yml"): Promise<Config> {
  return await configFor(tmp, { path: replica }, name);
}

interface Config {
  path: string;
  dbPath: string;
}

async function configFor(tmp: TempDir, replica: ReplicaConfig, name: string): Promise<Config> {
  const dbPath = tmp.join("app.db");
  return {
    path: await writeLitestreamConfig(tmp.path, [{ path: dbPath, replicas: [replica] }], {
      fileName: name,
    }),
    dbPath,
  };
}

function pointArgs(p: V03Point, form: Form, dash: string): string[] {
  return form === "timestamp"
    ? [`${dash}timestamp`, rfc3339(p.time)]
    : [`${dash}index`, p.index.toString(16), `${dash}generation`, p.generation];
}

/** Restores one point with litewarden and with litestream; both must match; returns the hash. */
async function restoreV03(config: Config, p: V03Point, form: Form, tmp: TempDir): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: tmp.path, prefix: "restore-" });
  try {
    const [lw, ls] = await Promise.all([
      runCli([
        "restore",
        config.dbPath,
        "--config",
        config.path,
        "-o",
        `${dir}/lw.db`,
        ...pointArgs(p, form, "--"),
      ]),
      litestreamRestore([
        "-config",
        config.path,
        "-o",
        `${dir}/ls.db`,
        ...pointArgs(p, form, "-"),
        config.dbPath,
      ]),
    ]);
    assertEquals(lw.code, 0, `litewarden restore ${p.id} by ${form}: ${lw.stderr}`);
    assertEquals(ls.code, 0, `litestream restore ${p.id} by ${form}: ${ls.stderr}`);
    const hash = await sha256(`${dir}/lw.db`);
    assertEquals(await sha256(`${dir}/ls.db`), hash, `litewarden ≠ litestream: ${p.id} ${form}`);
    return hash;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every kept point restores (both tools, both forms) exactly as before any prune. */
async function assertKeptRestore(base: V03Base, config: Config, ids: string[], tmp: TempDir) {
  await Promise.all(ids.flatMap((id) =>
    FORMS.map(async (form) => {
      const p = base.points.find((x) => x.id === id)!;
      assertEquals(
        await restoreV03(config, p, form, tmp),
        base.before.get(`${id}/${form}`),
        `${id} by ${form}`,
      );
    })
  ));
}

/** Copies the dated base replica to `dir` (mtimes included). */
async function copyBase(base: V03Base, dir: string): Promise<void> {
  for (const [key, t] of base.times) {
    const dst = `${dir}/${key}`;
    await Deno.mkdir(dst.slice(0, dst.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${base.replica}/${key}`, dst);
    await Deno.utime(dst, t, t);
  }
}

/** Rule sets over SCHEDULE and the points each keeps (reasons of the newest omitted). */
const RULE_SETS: { flags: string[]; kept: string[]; reason: Record<string, string[]> }[] = [
  {
    flags: ["--keep-last", "3"],
    kept: ["B5", "B4", "B3"],
    reason: { B4: ["last"], B3: ["last"] },
  },
  {
    flags: ["--keep-daily", "2", "--keep-monthly", "3"],
    kept: ["B5", "B2", "A4", "A3"],
    reason: { B2: ["daily"], A4: ["monthly"], A3: ["monthly"] },
  },
  {
    // Counted back from the newest point (2025), not from now: four points are within 2 days.
    flags: ["--keep-within", "2d"],
    kept: ["B5", "B4", "B3", "B2"],
    reason: { B5: ["newest", "within"], B4: ["within"], B3: ["within"], B2: ["within"] },
  },
  {
    flags: ["--keep-hourly", "2", "--keep-weekly", "3"],
    kept: ["B5", "B4", "B0", "A4"],
    reason: { B4: ["hourly"], B0: ["weekly"], A4: ["weekly"] },
  },
  { flags: ["--keep-last", "1"], kept: ["B5"], reason: { B5: ["newest", "last"] } },
];

interface ReplicaView {
  /** Sorted keys (relative to the replica root) with size and, on disk, mtime. */
  snapshot(): Promise<string[]>;
  keys(): Promise<string[]>;
}

function fileView(dir: string): ReplicaView {
  return {
    snapshot: () => snapshotDir(dir),
    keys: () => listFiles(dir),
  };
}

function s3View(storage: S3Storage): ReplicaView {
  const list = () => Array.fromAsync(storage.list(""));
  return {
    snapshot: async () => (await list()).map((o) => `${o.key} ${o.size}`),
    keys: async () => (await list()).map((o) => o.key),
  };
}

/**
 * One rule set on one copy of the base replica: the dry run changes nothing and plans exactly the
 * expected points; --apply deletes what it planned; every kept point restores as before; the
 * dropped points are gone; a second run deletes nothing.
 */
async function runRuleSet(
  base: V03Base,
  config: Config,
  view: ReplicaView,
  rules: (typeof RULE_SETS)[number],
  tmp: TempDir,
): Promise<void> {
  const args = ["prune", config.dbPath, "--config", config.path, ...rules.flags, "--json"];
  const before = await view.snapshot();
  const dry = await runCliJson<PruneDoc>(args);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(await view.snapshot(), before, "the dry run deleted something");
  assertEquals(dry.json.applied, false);
  assertEquals(dry.json.deleted, 0);
  const keptIds = dry.json.points.filter((p) => p.kept).map((p) => idOf(base, p.key));
  assertEquals(keptIds.sort(), [...rules.kept].sort(), rules.flags.join(" "));
  for (const [id, reasons] of Object.entries(rules.reason)) {
    const p = dry.json.points.find((x) => idOf(base, x.key) === id)!;
    for (const r of reasons) assert(p.reasons.includes(r), `${id} kept by ${r}: ${p.reasons}`);
  }
  assertEquals(dry.json.points.length, base.points.length);
  assert(dry.json.delete.objects > 0);
  assertEquals(dry.json.delete.requests, Math.ceil(dry.json.delete.objects / 100));
  // The groups, in order, are the keys.
  let at = 0;
  for (const g of dry.json.delete.groups) {
    const keys = dry.json.delete.keys.slice(at, at += g.objects);
    assert(keys.every((k) => k.startsWith(`generations/${g.generation}/`)), g.why);
  }
  assertEquals(at, dry.json.delete.objects);

  const applied = await runCliJson<PruneDoc>([...args, "--apply"]);
  assertEquals(applied.code, 0, applied.stderr);
  assertEquals(applied.json.deleted, dry.json.delete.objects);
  assertEquals(applied.json.delete.keys, dry.json.delete.keys);
  const gone = new Set(dry.json.delete.keys);
  const left = await view.keys();
  assertEquals(left, before.map((l) => l.split(" ")[0]).filter((k) => !gone.has(k)));
  assertEquals(left, expectedLeft(base, rules.kept), rules.flags.join(" "));
  await assertKeptRestore(base, config, rules.kept, tmp);

  const again = await runCliJson<PruneDoc>([...args, "--apply"]);
  assertEquals(again.code, 0, again.stderr);
  assertEquals([again.json.delete.objects, again.json.deleted], [0, 0], "second run");
  assertEquals(await view.keys(), left);
}

/**
 * What a prune keeping `ids` leaves: per generation the kept snapshots and every WAL segment from
 * the lowest kept index on; nothing of a generation without a kept point.
 */
function expectedLeft(base: V03Base, ids: string[]): string[] {
  const kept = base.points.filter((p) => ids.includes(p.id));
  return [...base.times.keys()].filter((key) => {
    const [, gen, kind, name] = key.split("/");
    const mine = kept.filter((p) => p.generation === gen);
    if (kind === "snapshots") return mine.some((p) => p.snapshotKey === key);
    return mine.length > 0 &&
      parseInt(name.slice(0, 8), 16) >= Math.min(...mine.map((p) => p.index));
  }).sort();
}

function idOf(base: V03Base, key: string): string {
  return base.points.find((p) => p.snapshotKey === key)?.id ?? key;
}

// ---------------------------------------------------------------------------------------------
// v0.3 on a file replica

Deno.test("prune v0.3 file replica: every rule set keeps its points restorable, byte for byte", async (t) => {
  const base = await v03Base();
  for (const rules of RULE_SETS) {
    await t.step(rules.flags.join(" "), async () => {
      await using tmp = await makeTempDir();
      await copyBase(base, tmp.join("replica"));
      const config = await fileConfig(tmp, tmp.join("replica"));
      await runRuleSet(base, config, fileView(tmp.join("replica")), rules, tmp);
    });
  }
});

Deno.test("prune text output: the plan, then what --apply did", async () => {
  const base = await v03Base();
  await using tmp = await makeTempDir();
  await copyBase(base, tmp.join("replica"));
  const { path, dbPath } = await fileConfig(tmp, tmp.join("replica"));
  const dry = await runCli(["prune", dbPath, "--config", path, "--keep-last", "2"]);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, "(dry run: nothing deleted)");
  assertMatchLine(
    dry.stdout,
    /^\s+keep\s+2025-05-14T10:15:00Z\s+generation [0-9a-f]{16} index 00000005\s+newest, last$/,
  );
  assertMatchLine(
    dry.stdout,
    /^\s+drop\s+2025-01-06T10:00:00Z\s+generation [0-9a-f]{16} index 00000000\s*$/,
  );
  assertMatchLine(dry.stdout, /^\s+\d+ objects to delete, .* freed, 1 delete request\(s\)/);
  assertStringIncludes(dry.stdout, "run again with --apply to delete");
  // --keep-last 2 keeps B5 and B4: generation A goes whole, B loses what is below index 4.
  assertMatchLine(
    dry.stdout,
    /^\s+\d+ objects, .*: v0\.3 generation \S+: no kept point, all of it goes$/,
  );
  assertMatchLine(
    dry.stdout,
    /^\s+\d+ objects, .*: v0\.3 generation \S+: snapshots no rule keeps, and the WAL below index 00000004 \(its oldest kept point\)$/,
  );
  const applied = await runCli(["prune", dbPath, "--config", path, "--keep-last", "2", "--apply"]);
  assertEquals(applied.code, 0, applied.stderr);
  assertMatchLine(applied.stdout, /^\s+deleted \d+ objects$/);
});

Deno.test("prune --apply shows its deletions' progress on a terminal", async () => {
  const base = await v03Base();
  await using tmp = await makeTempDir();
  await copyBase(base, tmp.join("replica"));
  const { path, dbPath } = await fileConfig(tmp, tmp.join("replica"));
  const args = ["prune", dbPath, "--config", path, "--keep-last", "2", "--apply"];
  const applied = await runCli(args, { terminal: true });
  assertEquals(applied.code, 0, applied.stderr);
  assertStringIncludes(applied.progress, "deleting [");
  assert(applied.progress.endsWith("\r\x1b[K"), JSON.stringify(applied.progress));
});

function assertMatchLine(text: string, re: RegExp): void {
  assert(text.split("\n").some((l) => re.test(l)), `no line matches ${re} in:\n${text}`);
}

Deno.test("prune: bad rules are usage errors (exit 2) and touch nothing", async () => {
  const base = await v03Base();
  await using tmp = await makeTempDir();
  await copyBase(base, tmp.join("replica"));
  const { path, dbPath } = await fileConfig(tmp, tmp.join("replica"));
  const before = await snapshotDir(tmp.join("replica"));
  for (
    const [flags, part] of [
      [[], "give at least one keep rule"],
      [["--keep-last", "two"], "--keep-last"],
      [["--keep-last", "1", "--min-age", "soon"], "--min-age"],
      [["--keep-within", "-1d"], "--keep-within"],
      // A rule of 0 would keep only the newest point and delete all other history.
      [["--keep-daily", "0"], "invalid --keep-daily 0: a rule of 0 keeps nothing"],
      [["--keep-last", "0"], "invalid --keep-last 0: a rule of 0 keeps nothing"],
      [["--keep-hourly", "00"], "invalid --keep-hourly 00: a rule of 0 keeps nothing"],
      [["--keep-daily", "7", "--keep-weekly", "0"], "invalid --keep-weekly 0: a rule of 0"],
      [["--keep-monthly", "0"], "invalid --keep-monthly 0: a rule of 0 keeps nothing"],
      [["--keep-within", "0s"], "invalid --keep-within 0s: a rule of 0 keeps nothing"],
      [["--keep-within", "0h0m"], "invalid --keep-within 0h0m: a rule of 0 keeps nothing"],
    ] as [string[], string][]
  ) {
    const r = await runCli(["prune", dbPath, "--config", path, ...flags, "--apply"]);
    assertEquals(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, part);
    assertEquals(r.stderr.split("\n").filter((l) => l !== "").length, 1, r.stderr);
  }
  // No rule at all is refused, naming every rule there is.
  const none = await runCli(["prune", dbPath, "--config", path, "--apply"]);
  for (const rule of ["last", "hourly", "daily", "weekly", "monthly", "within"]) {
    assertStringIncludes(none.stderr, `--keep-${rule}`);
  }
  assertEquals(await snapshotDir(tmp.join("replica")), before);
});

Deno.test("prune: --min-age (default 1h) keeps objects younger than it", async () => {
  const base = await v03Base();
  await using tmp = await makeTempDir();
  const replica = tmp.join("replica");
  await copyBase(base, replica);
  // WAL of generation B's indexes 0 and 1 looks freshly written (the snapshots keep their
  // dates, so the points do not change): it may not go by default.
  const now = new Date();
  const genB = base.points.find((p) => p.id === "B0")!.generation;
  const young = [...base.times.keys()].filter((k) =>
    k.startsWith(`generations/${genB}/wal/0000000`) && Number(k.split("/")[3].slice(0, 8)) <= 1
  );
  assert(young.length >= 2);
  for (const k of young) await Deno.utime(`${replica}/${k}`, now, now);
  const { path, dbPath } = await fileConfig(tmp, replica);
  const r = await runCliJson<PruneDoc>([
    "prune",
    dbPath,
    "--config",
    path,
    "--keep-last",
    "1",
    "--apply",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json.protectedYoung, young.length);
  assert(r.json.delete.keys.every((k) => !young.includes(k)));
  for (const k of young) assert(await exists(`${replica}/${k}`), k);
  // With --min-age 0s they go.
  const r2 = await runCliJson<PruneDoc>([
    "prune",
    dbPath,
    "--config",
    path,
    "--keep-last",
    "1",
    "--min-age",
    "0s",
    "--apply",
    "--json",
  ]);
  assertEquals(r2.code, 0, r2.stderr);
  assertEquals(r2.json.deleted, young.length);
  await assertKeptRestore(base, { path, dbPath }, ["B5"], tmp);
});

// ---------------------------------------------------------------------------------------------
// v0.3 on S3 (through the proxy, so LastModified carries the same dates)

interface S3Case {
  server: TestS3Server;
  proxy: S3Proxy;
  bucket: string;
}

async function withS3(fn: (s3: S3Case) => Promise<void>): Promise<void> {
  const server = await startS3Server();
  const proxy = startS3Proxy(server.endpoint);
  try {
    await server.createBucket("prune");
    await fn({ server, proxy, bucket: "prune" });
  } finally {
    await proxy.stop();
    await server.stop();
  }
}

/** Uploads the dated base replica under `prefix`; returns a storage on it and its config. */
async function uploadBase(
  s3: S3Case,
  base: V03Base,
  prefix: string,
  tmp: TempDir,
): Promise<{ storage: S3Storage; config: Config }> {
  const storage = new S3Storage(s3TargetFor(s3.server, s3.bucket, prefix));
  for (const [key, t] of base.times) {
    await storage.put(key, await Deno.readFile(`${base.replica}/${key}`));
    s3.proxy.times.set(`${prefix}/${key}`, t);
  }
  const config = await configFor(tmp, {
    type: "s3",
    bucket: s3.bucket,
    path: prefix,
    endpoint: s3.proxy.endpoint,
    forcePathStyle: true,
    accessKeyId: s3.server.credentials.accessKeyId,
    secretAccessKey: s3.server.credentials.secretAccessKey,
  }, `${prefix.replaceAll("/", "-")}.yml`);
  return { storage, config };
}

Deno.test("prune v0.3 S3 replica: every rule set keeps its points restorable, byte for byte", async (t) => {
  const base = await v03Base();
  await withS3(async (s3) => {
    let n = 0;
    for (const rules of RULE_SETS) {
      await t.step(rules.flags.join(" "), async () => {
        await using tmp = await makeTempDir();
        const { storage, config } = await uploadBase(s3, base, `case${n++}/db`, tmp);
        try {
          await runRuleSet(base, config, s3View(storage), rules, tmp);
        } finally {
          storage.close();
        }
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// v0.3 on an SFTP replica (real sshd; Litestream restores over SFTP too)

Deno.test({
  name: "prune v0.3 SFTP replica: every rule set keeps its points restorable, byte for byte",
  ignore: !haveSshd(),
  async fn(t) {
    const base = await v03Base();
    await using server = await startSftpServer();
    let n = 0;
    for (const rules of RULE_SETS) {
      await t.step(rules.flags.join(" "), async () => {
        await using tmp = await makeTempDir();
        // sshd serves this machine: the replica is a local directory seen through SFTP.
        const dir = `${server.dataDir}/case${n++}/db`;
        await copyBase(base, dir);
        const config = await configFor(tmp, sftpReplicaConfig(server, dir), "sftp.yml");
        await runRuleSet(base, config, fileView(dir), rules, tmp);
      });
    }
  },
});

Deno.test("prune on S3 without delete permission: exit 4 before deleting anything", async () => {
  const base = await v03Base();
  await withS3(async (s3) => {
    await using tmp = await makeTempDir();
    const { storage, config } = await uploadBase(s3, base, "denied/db", tmp);
    try {
      const before = await s3View(storage).snapshot();
      s3.proxy.denyDeletes = true;
      const r = await runCli([
        "prune",
        config.dbPath,
        "--config",
        config.path,
        "--keep-last",
        "1",
        "--apply",
      ]);
      assertEquals(r.code, 4, r.stderr);
      assertStringIncludes(r.stderr, "permission denied");
      assertStringIncludes(r.stderr, "s3:DeleteObject");
      assert(!r.stderr.includes(s3.server.credentials.secretAccessKey));
      // Only the probe was sent: no real key was part of a delete request.
      assertEquals(s3.proxy.deleteRequests, 1);
      assertEquals(await s3View(storage).snapshot(), before);
      // The dry run needs no delete permission.
      const dry = await runCli([
        "prune",
        config.dbPath,
        "--config",
        config.path,
        "--keep-last",
        "1",
      ]);
      assertEquals(dry.code, 0, dry.stderr);
    } finally {
      storage.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// v0.3 on Azure Blob (azurite, through the proxy, so Creation-Time carries the same dates)

Deno.test("prune v0.3 Azure Blob replica (azurite): every rule set keeps its points restorable, byte for byte", async (t) => {
  const base = await v03Base();
  const server = await startAzurite();
  const proxy = startS3Proxy(new URL(server.endpoint).origin, "abs");
  const container = "prune";
  try {
    await server.createContainer(container);
    const absReplica = (prefix: string): ReplicaConfig => ({
      type: "abs",
      bucket: container,
      path: prefix,
      endpoint: `${proxy.endpoint}/${server.accountName}`,
      extra: { "account-name": server.accountName, "account-key": server.accountKey },
    });
    const upload = async (prefix: string, tmp: TempDir) => {
      const storage = new AbsStorage(absTargetFor(server, container, prefix));
      for (const [key, time] of base.times) {
        await storage.put(key, await Deno.readFile(`${base.replica}/${key}`));
        proxy.times.set(`${prefix}/${key}`, time);
      }
      const config = await configFor(tmp, absReplica(prefix), `${prefix.replaceAll("/", "-")}.yml`);
      const list = () => Array.fromAsync(storage.list(""));
      const view: ReplicaView = {
        snapshot: async () => (await list()).map((o) => `${o.key} ${o.size}`),
        keys: async () => (await list()).map((o) => o.key),
      };
      return { storage, config, view };
    };
    let n = 0;
    for (const rules of RULE_SETS) {
      await t.step(rules.flags.join(" "), async () => {
        await using tmp = await makeTempDir();
        const { config, view } = await upload(`case${n++}/db`, tmp);
        await runRuleSet(base, config, view, rules, tmp);
      });
    }
    await t.step("without delete permission: exit 4 before deleting anything", async () => {
      await using tmp = await makeTempDir();
      const { config, view } = await upload("denied/db", tmp);
      const before = await view.snapshot();
      proxy.denyDeletes = true;
      proxy.deleteRequests = 0;
      try {
        const r = await runCli([
          "prune",
          config.dbPath,
          "--config",
          config.path,
          "--keep-last",
          "1",
          "--apply",
        ]);
        assertEquals(r.code, 4, r.stderr);
        assertStringIncludes(r.stderr, "permission denied");
        assert(!r.stderr.includes(server.accountKey));
        assertEquals(proxy.deleteRequests, 1, "only the probe was sent");
        assertEquals(await view.snapshot(), before);
      } finally {
        proxy.denyDeletes = false;
      }
    });
  } finally {
    await proxy.stop();
    await server.stop();
  }
});

Deno.test("prune stops without deleting when a kept point disappears before the deletes", async () => {
  const base = await v03Base();
  await withS3(async (s3) => {
    await using tmp = await makeTempDir();
    const { storage, config } = await uploadBase(s3, base, "racing/db", tmp);
    try {
      // Between the plan and the re-listing (at the delete-permission probe), "someone else"
      // removes B4, a point --keep-last 2 keeps.
      const b4 = base.points.find((p) => p.id === "B4")!;
      s3.proxy.beforeDelete = async (keys) => {
        if (keys.some((k) => k.includes(".litewarden-delete-probe-"))) {
          await storage.delete([b4.snapshotKey]);
        }
      };
      const before = await s3View(storage).keys();
      const r = await runCli([
        "prune",
        config.dbPath,
        "--config",
        config.path,
        "--keep-last",
        "2",
        "--apply",
      ]);
      assertEquals(r.code, 5, r.stderr);
      assertStringIncludes(r.stderr, `${b4.snapshotKey} disappeared`);
      assertStringIncludes(r.stderr, "nothing was deleted");
      assertEquals(await s3View(storage).keys(), before.filter((k) => k !== b4.snapshotKey));
      assertEquals(s3.proxy.deleteRequests, 1);
    } finally {
      storage.close();
    }
  });
});

Deno.test("prune deletes only what the re-listed plan agrees on when new points arrive", async () => {
  const base = await v03Base();
  await withS3(async (s3) => {
    await using tmp = await makeTempDir();
    const prefix = "growing/db";
    const { storage, config } = await uploadBase(s3, base, prefix, tmp);
    try {
      // Before the re-listing a "new" snapshot B6 appears (a copy of B5 at index 6, newer):
      // --keep-last 2 would now drop B4, which the first plan kept; it must survive this run.
      const b5 = base.points.find((p) => p.id === "B5")!;
      const b6Key = b5.snapshotKey.replace(
        /[0-9a-f]{8}\.snapshot\.lz4$/,
        `${hex8(6)}.snapshot.lz4`,
      );
      s3.proxy.beforeDelete = async (keys) => {
        if (keys.some((k) => k.includes(".litewarden-delete-probe-"))) {
          await storage.put(b6Key, await Deno.readFile(`${base.replica}/${b5.snapshotKey}`));
          s3.proxy.times.set(`${prefix}/${b6Key}`, new Date(b5.time.getTime() + 30 * MINUTE));
        }
      };
      const r = await runCliJson<PruneDoc>([
        "prune",
        config.dbPath,
        "--config",
        config.path,
        "--keep-last",
        "2",
        "--apply",
        "--json",
      ]);
      assertEquals(r.code, 0, r.stderr);
      const keys = await s3View(storage).keys();
      const b4 = base.points.find((p) => p.id === "B4")!;
      assert(keys.includes(b4.snapshotKey), "B4 was kept by the first plan");
      assert(keys.includes(b6Key));
      assert(r.json.deleted > 0 && r.json.deleted === r.json.delete.objects);
      await assertKeptRestore(base, config, ["B4"], tmp);
    } finally {
      storage.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Interrupted prunes (a subprocess, SIGINT then SIGKILL between deletes)

/** Hard-links generation A of the base replica under `copies` new generation ids. */
async function cloneGenerationA(base: V03Base, replica: string, copies: number): Promise<void> {
  const genA = base.points[0].generation;
  const keys = [...base.times.keys()].filter((k) => k.startsWith(`generations/${genA}/`));
  for (let c = 0; c < copies; c++) {
    const gen = `a${c.toString(16).padStart(15, "0")}`;
    await Deno.mkdir(`${replica}/generations/${gen}/snapshots`, { recursive: true });
    await Deno.mkdir(`${replica}/generations/${gen}/wal`, { recursive: true });
    for (const k of keys) {
      // Hard links share the mtime of generation A's (already dated) objects.
      await Deno.link(`${replica}/${k}`, `${replica}/${k.replace(genA, gen)}`);
    }
  }
}

/** Starts `deno run main.ts prune …` and signals it as soon as its first deletion is visible. */
async function interruptPrune(
  args: string[],
  firstKey: string,
  signal: Deno.Signal,
): Promise<{ status: Deno.CommandStatus; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "main.ts", ...args],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = child.output();
  try {
    // Deletes run at thousands per second; a 1 ms poll signals within the first few dozen.
    await waitFor(
      `the first deletion (${firstKey})`,
      async () => !(await exists(firstKey)),
      30_000,
      1,
    );
    child.kill(signal);
  } catch (err) {
    child.kill("SIGKILL");
    await output;
    throw err;
  }
  const out = await output;
  return {
    status: { success: out.success, code: out.code, signal: out.signal },
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("an interrupted prune (SIGINT, then SIGKILL) leaves every kept point restorable", async () => {
  const base = await v03Base();
  await using tmp = await makeTempDir();
  const replica = tmp.join("replica");
  await copyBase(base, replica);
  await cloneGenerationA(base, replica, 250);
  const config = await fileConfig(tmp, replica);
  const args = ["prune", config.dbPath, "--config", config.path, "--keep-daily", "2"];
  const kept = ["B5", "B2"];

  const plan = await runCliJson<PruneDoc>([...args, "--json"]);
  assertEquals(plan.code, 0, plan.stderr);
  const total = plan.json.delete.objects;
  assert(total > 4_000, `only ${total} deletions`);
  const planned = plan.json.delete.keys;
  const remaining = async () => {
    const present = new Set(await listFiles(replica));
    return planned.filter((k) => present.has(k)).length;
  };

  const first = await interruptPrune([...args, "--apply"], `${replica}/${planned[0]}`, "SIGINT");
  assertEquals(first.status.code, 130, first.stderr);
  assertStringIncludes(first.stderr, "interrupted after deleting");
  assertStringIncludes(first.stderr, "run prune again to finish");
  const afterInt = await remaining();
  assert(afterInt > 0 && afterInt < total, `SIGINT left ${afterInt} of ${total}`);
  // Oldest first: what is gone is a prefix of the plan.
  const present = new Set(await listFiles(replica));
  assertEquals(planned.filter((k) => present.has(k)), planned.slice(total - afterInt));
  await assertKeptRestore(base, config, kept, tmp);

  // The second run plans what is left; kill it hard after its first delete.
  const replan = await runCliJson<PruneDoc>([...args, "--json"]);
  assertEquals(replan.json.delete.keys, planned.slice(total - afterInt));
  const second = await interruptPrune(
    [...args, "--apply"],
    `${replica}/${replan.json.delete.keys[0]}`,
    "SIGKILL",
  );
  assertEquals(second.status.signal, "SIGKILL");
  const afterKill = await remaining();
  assert(afterKill < afterInt, `SIGKILL left ${afterKill} of ${afterInt}`);
  await assertKeptRestore(base, config, kept, tmp);

  const last = await runCliJson<PruneDoc>([...args, "--apply", "--json"]);
  assertEquals(last.code, 0, last.stderr);
  assertEquals(last.json.deleted, afterKill);
  assertEquals(await remaining(), 0);
  await assertKeptRestore(base, config, kept, tmp);
  const again = await runCliJson<PruneDoc>([...args, "--apply", "--json"]);
  assertEquals(again.json.deleted, 0);
});

/** Restores the latest point with both tools; they must agree; returns the hash. */
async function restoreLatest(config: Config, tmp: TempDir): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: tmp.path, prefix: "latest-" });
  try {
    const [lw, ls] = await Promise.all([
      runCli(["restore", config.dbPath, "--config", config.path, "-o", `${dir}/lw.db`]),
      litestreamRestore(["-config", config.path, "-o", `${dir}/ls.db`, config.dbPath]),
    ]);
    assertEquals(lw.code, 0, `litewarden restore latest: ${lw.stderr}`);
    assertEquals(ls.code, 0, `litestream restore latest: ${ls.stderr}`);
    const hash = await sha256(`${dir}/lw.db`);
    assertEquals(await sha256(`${dir}/ls.db`), hash, "litewarden ≠ litestream: latest");
    return hash;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The plan `prune --apply` would run (checked against the CLI's dry run), for cutting. */
async function realPlan(
  config: Config,
  storage: FileStorage,
  rules: KeepRules,
  flags: string[],
): Promise<PrunePlan> {
  const plan = planPrune(await listReplica(storage), rules, { minAgeMs: 0, now: new Date() });
  const args = ["prune", config.dbPath, "--config", config.path, ...flags, "--min-age", "0s"];
  const dry = await runCliJson<PruneDoc>([...args, "--json"]);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(plan.deletions.map((d) => d.key), dry.json.delete.keys, "the plan --apply runs");
  return plan;
}

Deno.test("a prune cut after each of its deletions leaves every kept point and the latest restorable by both tools", async () => {
  const base = await v03Base();
  await using tmp = await makeTempDir();
  const replica = tmp.join("replica");
  await copyBase(base, replica);
  const config = await fileConfig(tmp, replica);
  // Kept: B5, B2 (daily), A4, A3 (monthly): both generations lose WAL indexes of several
  // segments below their oldest kept index, the case an oldest-first order broke for Litestream.
  const flags = ["--keep-daily", "2", "--keep-monthly", "3"];
  const kept = ["B5", "B2", "A4", "A3"];
  const storage = new FileStorage(replica);
  const plan = await realPlan(config, storage, { daily: 2, monthly: 3 }, flags);
  const n = plan.deletions.length;
  assert(n > 20, `only ${n} deletions`);
  const latest = await restoreLatest(config, tmp);
  for (let k = 0; k <= n; k++) {
    if (k > 0) await storage.delete([plan.deletions[k - 1].key]);
    await assertKeptRestore(base, config, kept, tmp);
    assertEquals(await restoreLatest(config, tmp), latest, `latest after ${k} of ${n} deletions`);
    // A dropped point whose snapshot is still there restores as before too (by time).
    const present = new Set(await listFiles(replica));
    await Promise.all(
      base.points.filter((p) => !kept.includes(p.id) && present.has(p.snapshotKey)).map(
        async (p) =>
          assertEquals(
            await restoreV03(config, p, "timestamp", tmp),
            base.before.get(`${p.id}/timestamp`),
            `dropped ${p.id} after ${k} of ${n} deletions`,
          ),
      ),
    );
  }
  assertEquals(await listFiles(replica), expectedLeft(base, kept));
});

// ---------------------------------------------------------------------------------------------
// Prune next to a running Litestream

Deno.test("prune while Litestream replicates into the same replica loses nothing", async () => {
  await using tmp = await makeTempDir();
  const dbPath = tmp.join("live.db");
  const replica = tmp.join("replica");
  const config = await writeLitestreamConfig(tmp.path, [{
    path: dbPath,
    minCheckpointPageCount: 16,
    replicas: [{ path: replica, snapshotInterval: 30 }],
  }], { fileName: "live.yml" });
  const db = createWalDatabase(dbPath, { pageSize: 1024 });
  const rep = await startReplicate(config);
  let prunes = 0;
  let deleted = 0;
  try {
    writeSmallTransactions(db, 1, { label: "first" });
    await rep.waitForSync();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        writeSmallTransactions(db, 1, { label: `live-${i}` });
        if (i % 10 === 9) writeBigTransaction(db, { minPages: 20, label: `live-big-${i}` });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      const deadline = Date.now() + 2_500;
      while (Date.now() < deadline || deleted === 0) {
        const r = await runCliJson<PruneDoc>([
          "prune",
          dbPath,
          "--config",
          config,
          "--keep-last",
          "1",
          "--min-age",
          "0s",
          "--apply",
          "--json",
        ]);
        assertEquals(r.code, 0, r.stderr);
        prunes++;
        deleted += r.json.deleted;
        if (Date.now() > deadline + 10_000) break;
      }
    } finally {
      writing = false;
      await writer;
    }
    await rep.waitForSync();
  } finally {
    await rep.stop();
  }
  try {
    assert(deleted > 0, `${prunes} prunes deleted nothing`);
    const live = readUserTables(dbPath);
    assert(live.items.length > 50);
    const lw = await runCli(["restore", dbPath, "--config", config, "-o", tmp.join("lw.db")]);
    assertEquals(lw.code, 0, lw.stderr);
    assertEquals(readUserTables(tmp.join("lw.db")), live);
    const ls = await litestreamRestore(["-config", config, "-o", tmp.join("ls.db"), dbPath]);
    assertEquals(ls.code, 0, ls.stderr);
    assertEquals(await sha256(tmp.join("ls.db")), await sha256(tmp.join("lw.db")));
  } finally {
    db.close();
  }
});

// ---------------------------------------------------------------------------------------------
// v0.5 trees from the LTX fixtures

/**
 * The nochecksum fixture tree (what Litestream v0.5 writes) plus a second snapshot: L0 TXID 1 is
 * a full image starting at TXID 1, so `ltx/9/…01-…01.ltx` is the same file under a name its header
 * agrees with. Points: TXID 1 (header time 00:01, decodes to S1) and TXID 4 (00:05, S4).
 * mtimes are set to the header times, as Litestream's file replica does.
 */
const V05_FILES: [string, number][] = [
  ["0/0000000000000001-0000000000000001.ltx", 1],
  ["0/0000000000000002-0000000000000002.ltx", 2],
  ["0/0000000000000003-0000000000000003.ltx", 3],
  ["0/0000000000000004-0000000000000004.ltx", 4],
  ["1/0000000000000002-0000000000000004.ltx", 4],
  ["2/0000000000000001-0000000000000004.ltx", 4],
  ["9/0000000000000001-0000000000000004.ltx", 5],
];
const V05_SNAPSHOT_1 = "9/0000000000000001-0000000000000001.ltx";
const V05_T0 = 1735689600000; // header timestamps: T0 + minutes
const V05_POINTS = [
  { txid: "0000000000000001", minute: 1, state: "S1.db" },
  { txid: "0000000000000004", minute: 5, state: "S4.db" },
];

/** `(relative path in ltx/, bytes, header time)` of the tree. */
async function v05Objects(): Promise<[string, Uint8Array, Date][]> {
  const root = `${FIXTURES}ltx-v0.5.2-block/nochecksum/ltx`;
  const out: [string, Uint8Array, Date][] = [];
  for (const [rel, minute] of V05_FILES) {
    out.push([rel, await Deno.readFile(`${root}/${rel}`), new Date(V05_T0 + minute * MINUTE)]);
  }
  out.push([
    V05_SNAPSHOT_1,
    await Deno.readFile(`${root}/${V05_FILES[0][0]}`),
    new Date(V05_T0 + MINUTE),
  ]);
  return out;
}

async function writeV05Tree(dir: string): Promise<void> {
  for (const [rel, bytes, t] of await v05Objects()) {
    const path = `${dir}/ltx/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, bytes);
    await Deno.utime(path, t, t);
  }
}

/** Restores a v0.5 point by TXID and by a time just after it; both must equal its state file. */
async function assertV05Restores(config: Config, txids: string[], tmp: TempDir): Promise<void> {
  for (const p of V05_POINTS.filter((x) => txids.includes(x.txid))) {
    const want = await sha256(`${FIXTURES}states/${p.state}`);
    // v0.5 restores files strictly before a timestamp, which must lie within the replica's
    // time span: the newest point is restored by TXID (and as the latest) only.
    const at = rfc3339(new Date(V05_T0 + p.minute * MINUTE + 1));
    const forms = p === V05_POINTS.at(-1) ? [["--txid", p.txid]] : [["--txid", p.txid], [
      "--timestamp",
      at,
    ]];
    for (const flags of forms) {
      const out = tmp.join(`v05-${crypto.randomUUID()}.db`);
      const r = await runCli([
        "restore",
        config.dbPath,
        "--config",
        config.path,
        "-o",
        out,
        ...flags,
      ]);
      assertEquals(r.code, 0, `${flags.join(" ")}: ${r.stderr}`);
      assertEquals(await sha256(out), want, `TXID ${p.txid} by ${flags[0]}`);
      await Deno.remove(out);
    }
  }
}

const V05_RULE_SETS: { flags: string[]; kept: string[]; deleted: string[] }[] = [
  {
    flags: ["--keep-last", "1"],
    kept: ["0000000000000004"],
    deleted: [
      "0/0000000000000001-0000000000000001.ltx",
      V05_SNAPSHOT_1,
      "0/0000000000000002-0000000000000002.ltx",
      "0/0000000000000003-0000000000000003.ltx",
    ],
  },
  {
    // 4 minutes back from the newest point reaches TXID 1's snapshot; from now nothing would.
    flags: ["--keep-within", "4m"],
    kept: ["0000000000000001", "0000000000000004"],
    deleted: ["0/0000000000000001-0000000000000001.ltx"],
  },
  {
    flags: ["--keep-hourly", "5"], // both points are in the same hour
    kept: ["0000000000000004"],
    deleted: [
      "0/0000000000000001-0000000000000001.ltx",
      V05_SNAPSHOT_1,
      "0/0000000000000002-0000000000000002.ltx",
      "0/0000000000000003-0000000000000003.ltx",
    ],
  },
];

async function runV05RuleSet(
  config: Config,
  view: ReplicaView,
  keyOf: (rel: string) => string,
  rules: (typeof V05_RULE_SETS)[number],
  tmp: TempDir,
): Promise<void> {
  const args = ["prune", config.dbPath, "--config", config.path, ...rules.flags, "--json"];
  await assertV05Restores(config, V05_POINTS.map((p) => p.txid), tmp);
  const before = await view.snapshot();
  const dry = await runCliJson<PruneDoc>(args);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(await view.snapshot(), before, "the dry run deleted something");
  assertEquals(dry.json.points.filter((p) => p.kept).map((p) => p.txid).sort(), rules.kept);
  assertEquals(dry.json.delete.keys, rules.deleted.map(keyOf));
  const applied = await runCliJson<PruneDoc>([...args, "--apply"]);
  assertEquals(applied.code, 0, applied.stderr);
  assertEquals(applied.json.deleted, rules.deleted.length);
  assertEquals(
    await view.keys(),
    before.map((l) => l.split(" ")[0]).filter((k) => !rules.deleted.map(keyOf).includes(k)),
  );
  await assertV05Restores(config, rules.kept, tmp);
  // The latest restore is still TXID 4.
  const latest = tmp.join("latest.db");
  const r = await runCli(["restore", config.dbPath, "--config", config.path, "-o", latest]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await sha256(latest), await sha256(`${FIXTURES}states/S4.db`));
  await Deno.remove(latest);
  const again = await runCliJson<PruneDoc>([...args, "--apply"]);
  assertEquals([again.json.delete.objects, again.json.deleted], [0, 0], "second run");
}

Deno.test("prune v0.5 file replica (LTX fixtures): kept snapshots restore to their states", async (t) => {
  for (const rules of V05_RULE_SETS) {
    await t.step(rules.flags.join(" "), async () => {
      await using tmp = await makeTempDir();
      const replica = tmp.join("replica");
      await writeV05Tree(replica);
      const config = await fileConfig(tmp, replica);
      await runV05RuleSet(config, fileView(replica), (rel) => `ltx/${rel}`, rules, tmp);
    });
  }
});

Deno.test("prune v0.5: a prune cut after each of its deletions leaves the kept point and the latest restorable", async () => {
  await using tmp = await makeTempDir();
  const replica = tmp.join("replica");
  await writeV05Tree(replica);
  const config = await fileConfig(tmp, replica);
  const storage = new FileStorage(replica);
  const plan = await realPlan(config, storage, { last: 1 }, ["--keep-last", "1"]);
  assertEquals(plan.deletions.length, 4);
  for (let k = 0; k <= plan.deletions.length; k++) {
    if (k > 0) await storage.delete([plan.deletions[k - 1].key]);
    await assertV05Restores(config, ["0000000000000004"], tmp);
    const latest = tmp.join(`latest-${k}.db`);
    const r = await runCli(["restore", config.dbPath, "--config", config.path, "-o", latest]);
    assertEquals(r.code, 0, `latest after ${k} deletions: ${r.stderr}`);
    assertEquals(await sha256(latest), await sha256(`${FIXTURES}states/S4.db`));
  }
});

Deno.test("prune v0.5 S3 replica (hex-level keys): kept snapshots restore to their states", async (t) => {
  await withS3(async (s3) => {
    let n = 0;
    for (const rules of V05_RULE_SETS) {
      await t.step(rules.flags.join(" "), async () => {
        await using tmp = await makeTempDir();
        const prefix = `v05-${n++}/db`;
        const storage = new S3Storage(s3TargetFor(s3.server, s3.bucket, prefix));
        const keyOf = (rel: string) =>
          `${Number(rel.split("/")[0]).toString(16).padStart(4, "0")}/${rel.split("/")[1]}`;
        try {
          for (const [rel, bytes, t] of await v05Objects()) {
            await storage.put(keyOf(rel), bytes);
            s3.proxy.times.set(`${prefix}/${keyOf(rel)}`, t);
          }
          const config = await configFor(tmp, {
            type: "s3",
            bucket: s3.bucket,
            path: prefix,
            endpoint: s3.proxy.endpoint,
            forcePathStyle: true,
            accessKeyId: s3.server.credentials.accessKeyId,
            secretAccessKey: s3.server.credentials.secretAccessKey,
          }, "v05.yml");
          await runV05RuleSet(config, s3View(storage), keyOf, rules, tmp);
        } finally {
          storage.close();
        }
      });
    }
  });
});

Deno.test("prune v0.5: fresh copies (mtime now) are younger than the default --min-age", async () => {
  await using tmp = await makeTempDir();
  const replica = tmp.join("replica");
  await writeV05Tree(replica);
  const now = new Date();
  for (const key of await listFiles(replica)) await Deno.utime(`${replica}/${key}`, now, now);
  const config = await fileConfig(tmp, replica);
  const r = await runCliJson<PruneDoc>([
    "prune",
    config.dbPath,
    "--config",
    config.path,
    "--keep-last",
    "1",
    "--apply",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  // The rules still see the header times (TXID 1's snapshot is dropped) …
  assertEquals(r.json.points.map((p) => [p.txid, p.kept]), [
    ["0000000000000004", true],
    ["0000000000000001", false],
  ]);
  // … but every object is minutes old, so nothing goes.
  assertEquals([r.json.deleted, r.json.protectedYoung], [0, 4]);
});

// ---------------------------------------------------------------------------------------------
// --v03-tree

Deno.test("prune --v03-tree removes the v0.3 tree once the v0.5 history restores", async (t) => {
  const base = await v03Base();
  await using tmp = await makeTempDir();

  await t.step("the v0.5 history is newer: the whole generations/ tree goes", async () => {
    const replica = tmp.join("both");
    await copyBase(base, replica);
    // v0.3 objects from 2024, before the v0.5 history (2025-01-01) began.
    for (const key of base.times.keys()) {
      const t2 = new Date(base.times.get(key)!.getTime() - 365 * 86_400_000);
      await Deno.utime(`${replica}/${key}`, t2, t2);
    }
    await writeV05Tree(replica);
    const config = await fileConfig(tmp, replica, "both.yml");
    const before = await snapshotDir(replica);
    const dry = await runCliJson<PruneDoc>([
      "prune",
      config.dbPath,
      "--config",
      config.path,
      "--v03-tree",
      "--json",
    ]);
    assertEquals(dry.code, 0, dry.stderr);
    assertEquals(await snapshotDir(replica), before);
    assertStringIncludes(dry.json.notes.join("\n"), "restored cleanly");
    const apply = await runCliJson<PruneDoc>([
      "prune",
      config.dbPath,
      "--config",
      config.path,
      "--v03-tree",
      "--apply",
      "--json",
    ]);
    assertEquals(apply.code, 0, apply.stderr);
    const left = await listFiles(replica);
    assertEquals(left.filter((k) => k.startsWith("generations/")), []);
    assert(
      apply.json.delete.keys.filter((k) => k.startsWith("generations/")).length === base.times.size,
    );
    await assertV05Restores(config, ["0000000000000001", "0000000000000004"], tmp);
    const again = await runCliJson<PruneDoc>([
      "prune",
      config.dbPath,
      "--config",
      config.path,
      "--v03-tree",
      "--apply",
      "--json",
    ]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.json.deleted, 0);
  });

  await t.step("the v0.3 tree holds the newest point: it stays (exit 9)", async () => {
    const replica = tmp.join("v03-newer");
    await copyBase(base, replica); // dated 2025-01 … 2025-05, after the v0.5 history
    await writeV05Tree(replica);
    const config = await fileConfig(tmp, replica, "v03-newer.yml");
    const before = await snapshotDir(replica);
    const r = await runCli([
      "prune",
      config.dbPath,
      "--config",
      config.path,
      "--v03-tree",
      "--apply",
    ]);
    assertEquals(r.code, 9, r.stderr);
    assertStringIncludes(r.stderr, "newer");
    assertEquals(await snapshotDir(replica), before);
  });

  await t.step("the v0.5 history does not restore: the v0.3 tree stays", async () => {
    const replica = tmp.join("v05-broken");
    await copyBase(base, replica);
    for (const key of base.times.keys()) {
      const t2 = new Date(base.times.get(key)!.getTime() - 365 * 86_400_000);
      await Deno.utime(`${replica}/${key}`, t2, t2);
    }
    await writeV05Tree(replica);
    // A flipped byte in the newest snapshot: its checksum no longer verifies.
    const victim = `${replica}/ltx/9/0000000000000001-0000000000000004.ltx`;
    const bytes = await Deno.readFile(victim);
    bytes[200] ^= 0xff;
    const st = await Deno.stat(victim);
    await Deno.writeFile(victim, bytes);
    await Deno.utime(victim, st.mtime!, st.mtime!);
    const config = await fileConfig(tmp, replica, "v05-broken.yml");
    const before = await snapshotDir(replica);
    const r = await runCli([
      "prune",
      config.dbPath,
      "--config",
      config.path,
      "--v03-tree",
      "--apply",
    ]);
    assertEquals(r.code, 5, r.stderr);
    assertStringIncludes(r.stderr, "the v0.3 tree stays");
    assertEquals(await snapshotDir(replica), before);
  });

  await t.step("no v0.5 history at all: usage error", async () => {
    const replica = tmp.join("v03-only");
    await copyBase(base, replica);
    const config = await fileConfig(tmp, replica, "v03-only.yml");
    const r = await runCli([
      "prune",
      config.dbPath,
      "--config",
      config.path,
      "--v03-tree",
      "--apply",
    ]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, "only backup");
  });
});
