/**
 * `restore` installs without replacing: a file that appears at the target while a restore runs
 * (another restore, the app starting) is never overwritten, and of two restores racing to one
 * target exactly one wins; the other exits 9. Real Litestream replica, served by the S3 server,
 * whose object downloads the test holds so both restores are provably mid-way.
 */
import { run } from "../../src/cli/program.ts";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { listFiles, replicateRandomBlobs } from "../support/litestream.ts";
import { startS3Server } from "../support/s3_server.ts";
import type { TestS3Server } from "../support/s3_server.ts";
import { makeTempDir } from "../support/tmp.ts";

Deno.env.set("NO_PROGRESS", "1");

const BUCKET = "install";
const TEMP_FILE = /\.litewarden-.*\.tmp$/;

interface Captured {
  code: number;
  stderr: string;
}

async function litewarden(...args: string[]): Promise<Captured> {
  const err: string[] = [];
  const code = await run(args, { out: () => {}, err: (t) => err.push(t), isTTY: false });
  return { code, stderr: err.join("\n") };
}

/** Holds every object download (not listings) until `release()`; counts the held requests. */
class DownloadGate {
  held = 0;
  #open = false;
  #waiters: (() => void)[] = [];
  onRequest = async (method: string, url: string) => {
    const path = url.split("?")[0];
    if (this.#open || method !== "GET" || !path.includes("/generations/")) return;
    this.held++;
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  };
  release() {
    this.#open = true;
    for (const w of this.#waiters.splice(0)) w();
  }
}

async function until(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function tempFiles(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) =>
    TEMP_FILE.test(n)
  );
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Uploads a file replica's objects under `prefix` through the server's S3 API. */
async function upload(server: TestS3Server, replica: string, prefix: string): Promise<void> {
  for (const key of await listFiles(replica)) {
    const res = await fetch(`${server.endpoint}/${BUCKET}/${prefix}/${key}`, {
      method: "PUT",
      body: await Deno.readFile(`${replica}/${key}`),
    });
    await res.body?.cancel();
    assert(res.ok, `PUT ${key}: HTTP ${res.status}`);
  }
}

Deno.test({
  name: "restore never replaces a file that appears at the target; of two racing restores one wins",
  // The download gate hooks the embedded server.
  ignore: Deno.env.get("LITEWARDEN_TEST_S3_URL") !== undefined,
  fn: async (t) => {
    await using tmp = await makeTempDir();
    // Each case installs its own gate; uploads and the reference restore pass an open one.
    let gate = new DownloadGate();
    gate.release();
    const server = await startS3Server({ onRequest: (m, u) => gate.onRequest(m, u) });
    const saved = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].map((k) => [k, Deno.env.get(k)]);
    try {
      Deno.env.set("AWS_ACCESS_KEY_ID", server.credentials.accessKeyId);
      Deno.env.set("AWS_SECRET_ACCESS_KEY", server.credentials.secretAccessKey);
      await server.createBucket(BUCKET);
      const replica = await replicateRandomBlobs(tmp.path, 2);
      await upload(server, replica, "db");
      const url = `s3://${BUCKET}/db?endpoint=${server.endpoint}&force-path-style=true`;
      const reference = tmp.join("reference.db");
      assertEquals((await litewarden("restore", url, "-o", reference)).code, 0);
      const want = await sha256(reference);

      await t.step("a file created at the target mid-restore is kept: exit 9", async () => {
        const dir = tmp.join("appeared");
        await Deno.mkdir(dir);
        const target = `${dir}/db.sqlite3`;
        const held = gate = new DownloadGate();
        const restoring = litewarden("restore", url, "-o", target);
        await until("the restore to reach its downloads", () => held.held > 0);
        assertEquals((await tempFiles(dir)).length, 1, "the restore's temp file exists");
        await Deno.writeTextFile(target, "created by someone else meanwhile");
        held.release();
        const res = await restoring;
        assertEquals(res.code, 9, res.stderr);
        assertStringIncludes(res.stderr, `${target} already exists (it appeared while restoring`);
        assertEquals(await Deno.readTextFile(target), "created by someone else meanwhile");
        assertEquals(await tempFiles(dir), []);
      });

      await t.step("two restores to one target: one exits 0, the other 9", async () => {
        const dir = tmp.join("race");
        await Deno.mkdir(dir);
        const target = `${dir}/db.sqlite3`;
        const held = gate = new DownloadGate();
        const a = litewarden("restore", url, "-o", target);
        const b = litewarden("restore", url, "-o", target);
        // Both passed the up-front existence check and are downloading into their temp files.
        await until(
          "both restores to reach their downloads",
          async () => (await tempFiles(dir)).length === 2 && held.held >= 2,
        );
        held.release();
        const results = await Promise.all([a, b]);
        assertEquals(
          results.map((r) => r.code).sort(),
          [0, 9],
          results.map((r) => r.stderr).join("\n"),
        );
        const loser = results.find((r) => r.code === 9)!;
        assertStringIncludes(loser.stderr, "another restore to it");
        assertEquals(await sha256(target), want);
        assertEquals(await tempFiles(dir), []);
      });

      await t.step("--force still replaces a file that appears mid-restore", async () => {
        const dir = tmp.join("forced");
        await Deno.mkdir(dir);
        const target = `${dir}/db.sqlite3`;
        const held = gate = new DownloadGate();
        const restoring = litewarden("restore", url, "-o", target, "--force");
        await until("the restore to reach its downloads", () => held.held > 0);
        await Deno.writeTextFile(target, "replace me");
        await Deno.writeTextFile(`${target}-wal`, "stale wal");
        held.release();
        const res = await restoring;
        assertEquals(res.code, 0, res.stderr);
        assertEquals(await sha256(target), want);
        assertEquals(await Array.fromAsync(Deno.readDir(dir), (e) => e.name), ["db.sqlite3"]);
      });
    } finally {
      for (const [k, v] of saved) {
        if (v === undefined) Deno.env.delete(k!);
        else Deno.env.set(k!, v);
      }
      await server.stop();
    }
  },
});
