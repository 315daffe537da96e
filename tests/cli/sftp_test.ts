/**
 * The commands on an SFTP replica that real Litestream v0.3.13 writes into a real OpenSSH sshd on
 * 127.0.0.1 (`type: sftp`): two generations of several WAL indexes; litewarden's restore equals
 * `litestream restore` byte for byte for the latest point, `-timestamp` points in both generations
 * and `-generation`/`-index` points; the URL form; `list`, `verify` and the container gate's
 * marker; an unknown host key is refused; the password in the config is never printed.
 * Skipped when sshd is not installed (`.ci/run` installs it).
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { type CliResult, runCli, runCliJson } from "../support/cli.ts";
import { withEnv } from "../support/env.ts";
import {
  fileReplicaObjects,
  litestreamRestore,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import {
  haveSshd,
  sftpReplicaConfig,
  startSftpServer,
  type TestSftpServer,
} from "../support/sshd_server.ts";
import {
  checkpoint,
  createWalDatabase,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir, type TempDir } from "../support/tmp.ts";

Deno.env.set("NO_PROGRESS", "1");

const PASSWORD = "sftp-pw-never-printed-4711";

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function rfc3339(t: Date): string {
  return t.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The replica as Litestream v0.3.13 reads it, with a password (which the server does not take). */
function sftpReplica(server: TestSftpServer, path: string, extra: Record<string, unknown> = {}) {
  return sftpReplicaConfig(server, path, { password: PASSWORD, ...extra });
}

interface Replica {
  dbPath: string;
  config: string;
  /** The replica directory on the server (a local path: sshd serves this machine). */
  dir: string;
  /** Generations, oldest first. */
  generations: string[];
}

/** Two generations, each several WAL indexes, written through sshd by real Litestream. */
async function replicate(tmp: TempDir, server: TestSftpServer): Promise<Replica> {
  const dbPath = tmp.join("app.db");
  // A relative path, as on a storage box: below the login directory (the server's dataDir).
  const dir = `${server.dataDir}/vw/replica`;
  const config = await writeLitestreamConfig(tmp.path, [{
    path: dbPath,
    minCheckpointPageCount: 50,
    replicas: [sftpReplica(server, "vw/replica")],
  }]);
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  try {
    for (let g = 0; g < 2; g++) {
      // An application checkpoint while Litestream is stopped starts a new generation.
      if (g > 0) checkpoint(db, "TRUNCATE");
      const rep = await startReplicate(config);
      try {
        for (let i = 0; i < 3; i++) {
          writeSmallTransactions(db, 8, { label: `g${g}-i${i}` });
          await rep.waitForSync();
          writeBigTransaction(db, { minPages: 60, label: `g${g}-big${i}` }); // → next index
          await rep.waitForSync();
        }
        writeSmallTransactions(db, 5, { label: `g${g}-end` });
        await rep.waitForSync();
      } finally {
        await rep.stop();
      }
    }
  } finally {
    db.close();
  }
  // Whole-second object times 10 s apart in write order (SFTP carries seconds), generation by
  // generation, so every point in time names exactly one state.
  const objects = await fileReplicaObjects(dir);
  const firstSeen = new Map<string, number>();
  for (const o of objects) {
    firstSeen.set(o.generation, Math.min(firstSeen.get(o.generation) ?? Infinity, +o.mtime));
  }
  const generations = [...firstSeen.keys()].sort((a, b) => firstSeen.get(a)! - firstSeen.get(b)!);
  assertEquals(generations.length, 2, "two generations");
  const ordered = objects.sort((a, b) =>
    generations.indexOf(a.generation) - generations.indexOf(b.generation) ||
    (a.kind === b.kind ? 0 : a.kind === "snapshot" ? -1 : 1) || a.index - b.index ||
    (a.offset ?? 0) - (b.offset ?? 0)
  );
  const base = Date.UTC(2026, 5, 1, 12);
  for (const [i, o] of ordered.entries()) {
    o.mtime = new Date(base + i * 10_000);
    await Deno.utime(`${dir}/${o.key}`, o.mtime, o.mtime);
  }
  for (const g of generations) {
    const indexes = new Set(ordered.filter((o) => o.generation === g).map((o) => o.index));
    assert(indexes.size >= 3, `generation ${g} has WAL indexes ${[...indexes]}`);
  }
  return { dbPath, config, dir, generations };
}

Deno.test({
  name:
    "sftp: real Litestream v0.3.13 through sshd; restore equals litestream restore; list, verify, gate",
  ignore: !haveSshd(),
  async fn(t) {
    await using tmp = await makeTempDir();
    await using server = await startSftpServer();
    const rep = await replicate(tmp, server);
    const outputs: CliResult[] = [];
    const lw = async (...args: string[]) => {
      const r = await runCli(args);
      outputs.push(r);
      return r;
    };
    let n = 0;
    /** Restores with both tools (same point flags) and returns litewarden's file's hash. */
    const both = async (flags: string[], what: string): Promise<string> => {
      const out = tmp.join(`restore-${n++}`);
      await Deno.mkdir(out);
      const mine = await lw(
        "restore",
        rep.dbPath,
        "--config",
        rep.config,
        "-o",
        `${out}/lw.db`,
        ...flags.map((f) => f.startsWith("-") ? `-${f}` : f),
      );
      assertEquals(mine.code, 0, `${what}: ${mine.stderr}`);
      const theirs = await litestreamRestore([
        "-config",
        rep.config,
        "-o",
        `${out}/ls.db`,
        ...flags,
        rep.dbPath,
      ]);
      assertEquals(theirs.code, 0, `litestream ${what}: ${theirs.stderr}`);
      const hash = await sha256(`${out}/lw.db`);
      assertEquals(await sha256(`${out}/ls.db`), hash, `litewarden ≠ litestream: ${what}`);
      return hash;
    };
    const objects = await fileReplicaObjects(rep.dir);
    const [oldGen, newGen] = rep.generations;
    const inGen = (g: string) => objects.filter((o) => o.generation === g);

    await t.step(
      "list --json: both generations, the sftp location without the password",
      async () => {
        const r = await runCliJson<
          { replicas: { location: string; generations: { id: string; current: boolean }[] }[] }
        >(["list", rep.dbPath, "--config", rep.config, "--json"]);
        outputs.push(r);
        assertEquals(r.code, 0, r.stderr);
        const replica = r.json.replicas[0];
        assertEquals(replica.location, `sftp://${server.hostPort}/~/vw/replica`);
        assertEquals(replica.generations.map((g) => g.id).sort(), [...rep.generations].sort());
        assertEquals(replica.generations.find((g) => g.current)?.id, newGen);
      },
    );

    const hashes = new Set<string>();
    await t.step("latest point", async () => {
      hashes.add(await both([], "latest"));
    });

    await t.step("-timestamp points in the newest and the older generation", async () => {
      for (const g of [newGen, oldGen]) {
        const wal = inGen(g).filter((o) => o.kind === "wal");
        const mid = wal[Math.floor(wal.length / 2)];
        hashes.add(await both(["-timestamp", rfc3339(mid.mtime)], `timestamp in ${g}`));
      }
    });

    await t.step("-generation/-index points", async () => {
      for (const g of [oldGen, newGen]) {
        const last = Math.max(...inGen(g).map((o) => o.index));
        for (const index of [0, last]) {
          hashes.add(
            await both(
              ["-generation", g, "-index", index.toString(16)],
              `generation ${g} index ${index}`,
            ),
          );
        }
      }
      // Real points in time: the restores differ.
      assert(hashes.size >= 5, `only ${hashes.size} distinct restores`);
    });

    await t.step("the URL form, with the key and known_hosts from the environment", async () => {
      const out = tmp.join("url-form.db");
      const env = {
        LITEWARDEN_SFTP_KEY_PATH: server.keyPath,
        LITEWARDEN_SFTP_KNOWN_HOSTS: server.knownHostsPath,
      };
      await withEnv(env, async () => {
        const url = `sftp://${server.user}@${server.hostPort}${rep.dir}`;
        const r = await lw("restore", url, "-o", out);
        assertEquals(r.code, 0, r.stderr);
        const latest = tmp.join("latest-ls.db");
        const ls = await litestreamRestore(["-config", rep.config, "-o", latest, rep.dbPath]);
        assertEquals(ls.code, 0, ls.stderr);
        assertEquals(await sha256(out), await sha256(latest));
      });
    });

    await t.step("verify passes every layer on the sftp replica", async () => {
      const r = await runCliJson<
        { ok: boolean; location: string; checks: { id: string; status: string }[] }
      >(["verify", rep.dbPath, "--config", rep.config, "--json"]);
      outputs.push(r);
      assertEquals(r.code, 0, r.stdout);
      assert(r.json.ok);
      assertEquals(r.json.location, `sftp://${server.hostPort}/~/vw/replica`);
      assertEquals(r.json.checks.filter((c) => c.status === "fail"), []);
      assert(r.json.checks.some((c) => c.id === "restore.apply" && c.status === "pass"));
    });

    await t.step(
      "the container gate writes its marker over SFTP; Litestream still restores",
      async () => {
        const out = tmp.join("gate.db");
        const r = await lw(
          "restore",
          rep.dbPath,
          "--config",
          rep.config,
          "-o",
          out,
          "--if-replica-exists",
          "--if-db-not-exists",
        );
        assertEquals(r.code, 0, r.stderr);
        const marker = JSON.parse(
          await Deno.readTextFile(`${rep.dir}/.litewarden/replica-seen.json`),
        );
        assert(marker.lastSeen, JSON.stringify(marker));
        hashes.add(await both([], "latest, after the marker"));
      },
    );

    await t.step("an unknown host key is refused (exit 4) before any login", async () => {
      const config = await writeLitestreamConfig(tmp.path, [{
        path: rep.dbPath,
        replicas: [sftpReplica(server, rep.dir, { "host-key": undefined })],
      }], { fileName: "no-host-key.yml" });
      const env = { LITEWARDEN_SFTP_KNOWN_HOSTS: tmp.join("empty_known_hosts") };
      await withEnv(env, async () => {
        const r = await lw("list", rep.dbPath, "--config", config);
        assertEquals(r.code, 4, r.stderr);
        assertStringIncludes(r.stderr, `host key of ${server.hostPort} is not known`);
        assertEquals(r.stderr.trim().split("\n").length, 1);
      });
    });

    await t.step("a wrong password alone is exit 4 and never printed", async () => {
      const config = await writeLitestreamConfig(tmp.path, [{
        path: rep.dbPath,
        replicas: [sftpReplica(server, rep.dir, { "key-path": undefined })],
      }], { fileName: "password-only.yml" });
      const r = await lw("list", rep.dbPath, "--config", config, "--json");
      assertEquals(r.code, 4, r.stderr);
      assertStringIncludes(r.stdout + r.stderr, "authentication refused");
    });

    // Nothing any command printed carries the password.
    for (const r of outputs) {
      assert(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), "password printed");
    }
  },
});

Deno.test({
  name: "sftp: v0.5 LTX levels (ltx/<level>/) — list, restore and --txid equal the file replica's",
  ignore: !haveSshd(),
  async fn() {
    await using tmp = await makeTempDir();
    await using server = await startSftpServer();
    const fixture =
      new URL("../fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url).pathname;
    const dir = `${server.dataDir}/v05`;
    const cp = await new Deno.Command("cp", { args: ["-a", fixture, dir] }).output();
    assert(cp.success);
    const env = {
      LITEWARDEN_SFTP_KEY_PATH: server.keyPath,
      LITEWARDEN_SFTP_HOST_KEY: server.hostKey,
    };
    await withEnv(env, async () => {
      const url = `sftp://${server.user}@${server.hostPort}${dir}`;
      const file = `file://${fixture}`;
      const list = await runCliJson<{ newest: { txid: string } }>(["list", url, "--json"]);
      assertEquals(list.code, 0, list.stderr);
      assertEquals(list.json.newest.txid, "0000000000000004");
      for (const point of [[], ["--txid", "0000000000000002"]]) {
        const a = tmp.join(`sftp-${point.length}.db`);
        const b = tmp.join(`file-${point.length}.db`);
        const ra = await runCli(["restore", url, "-o", a, ...point]);
        assertEquals(ra.code, 0, ra.stderr);
        const rb = await runCli(["restore", file, "-o", b, ...point]);
        assertEquals(rb.code, 0, rb.stderr);
        assertEquals(await sha256(a), await sha256(b), `restore ${point.join(" ") || "latest"}`);
      }
    });
  },
});
