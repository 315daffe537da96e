/**
 * SftpStorage against a real OpenSSH sshd (tests/support/sshd_server.ts) on 127.0.0.1: listing
 * order, ranged reads, put/delete, host key checking (known_hosts plain and hashed, pinned keys
 * and fingerprints, mismatches), authentication failures, and downloads that survive a cut
 * connection. Skipped when sshd is not installed (`.ci/run` installs it).
 */
import { bytes } from "../support/bytes.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../support/assert.ts";
import { ExitCode, LitewardenError } from "../../src/errors.ts";
import { openStorage } from "../../src/storage/open.ts";
import { fingerprintOf } from "../../src/storage/known_hosts.ts";
import { SftpStorage, type SftpStorageOptions } from "../../src/storage/sftp.ts";
import { readAll } from "../../src/storage/storage.ts";
import type { SftpReplicaTarget } from "../../src/config/target.ts";
import {
  generateKey,
  haveSshd,
  sessionPids,
  sftpTarget,
  startSftpServer,
  type TestSftpServer,
} from "../support/sshd_server.ts";

const ignore = !haveSshd();
const FAST: SftpStorageOptions = { retryBaseDelayMs: 5, retryMaxDelayMs: 20 };

async function withServer(
  fn: (
    server: TestSftpServer,
    storage: (
      t?: Partial<SftpReplicaTarget>,
      o?: SftpStorageOptions,
    ) => SftpStorage,
  ) => Promise<void>,
): Promise<void> {
  await using server = await startSftpServer();
  const opened: SftpStorage[] = [];
  const storage = (t: Partial<SftpReplicaTarget> = {}, o: SftpStorageOptions = FAST) => {
    const s = new SftpStorage(sftpTarget(server, `${server.dataDir}/replica`, t), o);
    opened.push(s);
    return s;
  };
  try {
    await fn(server, storage);
  } finally {
    for (const s of opened) await s.close();
  }
}

async function write(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(path, typeof data === "string" ? new TextEncoder().encode(data) : data);
}

async function keys(s: SftpStorage, prefix = ""): Promise<string[]> {
  return (await Array.fromAsync(s.list(prefix))).map((o) => o.key);
}

async function expectError(p: Promise<unknown>, code: number, ...parts: string[]) {
  const err = await assertRejects(() => p, LitewardenError);
  assertEquals(err.exitCode, code, err.message);
  for (const part of parts) assert(err.message.includes(part), `${err.message} lacks ${part}`);
  return err;
}

Deno.test({
  name: "SftpStorage lists recursively in lexicographic key order, relative to the root",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      const root = `${server.dataDir}/replica`;
      for (const k of ["b/c/d", "a.b", "a/x", "a/y/z", "a0", "generations/g/wal/1", "a-"]) {
        await write(`${root}/${k}`, k);
      }
      await Deno.symlink(`${root}/a0`, `${root}/link`); // not a regular file: left out
      const s = storage();
      const all = ["a-", "a.b", "a/x", "a/y/z", "a0", "b/c/d", "generations/g/wal/1"];
      assertEquals(await keys(s), all);
      assertEquals(all, [...all].sort());
      assertEquals(await keys(s, "a/"), ["a/x", "a/y/z"]);
      assertEquals(await keys(s, "generations/"), ["generations/g/wal/1"]);
      assertEquals(await keys(s, "a"), ["a-", "a.b", "a/x", "a/y/z", "a0"]);
      assertEquals(await keys(s, "nothing/here/"), []);
      const info = (await Array.fromAsync(s.list("a/x")))[0];
      assertEquals(info.size, 3);
      // SFTP v3 carries whole seconds; the file's mtime, truncated.
      const st = await Deno.stat(`${root}/a/x`);
      assertEquals(info.modified.getTime(), Math.floor(st.mtime!.getTime() / 1000) * 1000);
      // A missing root is an empty replica.
      assertEquals(await keys(storage({ path: `${server.dataDir}/missing` })), []);
      // Relative paths (and none) are relative to the login directory, as Litestream's are.
      assertEquals(await keys(storage({ path: "replica/a" })), ["x", "y/z"]);
      assertEquals(await keys(storage({ path: "" }), "replica/b/"), ["replica/b/c/d"]);
    }),
});

Deno.test({
  name: "SftpStorage ranged gets: whole, first 100, last 16, middle, open-ended, empty, past end",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      const key = "generations/g/snapshots/00000000.snapshot.lz4";
      const data = bytes(300_000, 7); // several read requests
      await write(`${server.dataDir}/replica/${key}`, data);
      const s = storage({}, { ...FAST, readChunkBytes: 7000, readAhead: 3 });
      assertEquals(await readAll(await s.get(key)), data);
      assertEquals(await readAll(await s.get(key, { offset: 0, length: 100 })), data.slice(0, 100));
      assertEquals(
        await readAll(await s.get(key, { offset: data.length - 16, length: 16 })),
        data.slice(-16),
      );
      assertEquals(await readAll(await s.get(key, { offset: 123_456 })), data.slice(123_456));
      assertEquals(
        await readAll(await s.get(key, { offset: 1000, length: 50_000 })),
        data.slice(1000, 51_000),
      );
      assertEquals((await readAll(await s.get(key, { offset: 10, length: 0 }))).length, 0);
      await expectError(
        s.get(key, { offset: 500_000, length: 10 }),
        ExitCode.damaged,
        key,
        "truncated",
      );
      await expectError(
        s.get("generations/g/wal/00000001_00000000.wal.lz4"),
        ExitCode.damaged,
        "generations/g/wal/00000001_00000000.wal.lz4",
        "missing",
      );
      // A cancelled stream is fine and the connection stays usable.
      const reader = (await s.get(key)).getReader();
      assert(!(await reader.read()).done);
      await reader.cancel();
      assertEquals(await readAll(await s.get(key, { offset: 5, length: 5 })), data.slice(5, 10));
    }),
});

Deno.test({
  name:
    "SftpStorage put creates directories, replaces atomically; delete is idempotent and prunes empty dirs",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      const s = storage();
      const root = `${server.dataDir}/replica`;
      await s.put(".litewarden/replica-seen.json", new TextEncoder().encode("one"));
      await s.put(".litewarden/replica-seen.json", new TextEncoder().encode("two!"));
      assertEquals(
        new TextDecoder().decode(await readAll(await s.get(".litewarden/replica-seen.json"))),
        "two!",
      );
      assertEquals(await keys(s), [".litewarden/replica-seen.json"]); // no temp files left
      const ks = Array.from({ length: 12 }, (_, i) => `generations/g${i % 2}/wal/${i}.wal.lz4`);
      for (const k of ks) await write(`${root}/${k}`, k);
      await s.delete([...ks.filter((k) => k.includes("/g0/")), "generations/g0/never-existed"]);
      assertEquals(await keys(s, "generations/"), ks.filter((k) => k.includes("/g1/")).sort());
      // The emptied generation's directories are gone; the root and the other generation stay.
      assertEquals(await Deno.stat(`${root}/generations/g0`).catch(() => "gone"), "gone");
      await s.delete(ks); // again: already gone is not an error
      await s.delete([]);
      assertEquals(await keys(s, "generations/"), []);
      assert((await Deno.stat(root)).isDirectory);
    }),
});

Deno.test({
  name:
    "SFTP host keys: known_hosts (plain, hashed), pinned key or fingerprint; unknown and changed keys refused",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      await write(`${server.dataDir}/replica/k`, "x");
      // The server's known_hosts entry.
      assertEquals(await keys(storage()), ["k"]);
      // A hashed entry (ssh-keygen -H), and with a port, `[127.0.0.1]:PORT`.
      const hashed = `${server.dataDir}/known_hosts_hashed`;
      await Deno.copyFile(server.knownHostsPath, hashed);
      const h = await new Deno.Command("ssh-keygen", {
        args: ["-H", "-f", hashed],
        stdout: "null",
        stderr: "null",
      }).output();
      assert(h.success);
      assert((await Deno.readTextFile(hashed)).startsWith("|1|"));
      assertEquals(await keys(storage({ knownHosts: ["/nonexistent", hashed] })), ["k"]);
      // Pinned: the key line as ssh-keyscan prints it, or its fingerprint.
      assertEquals(await keys(storage({ knownHosts: [], hostKey: server.hostKey })), ["k"]);
      const fp = fingerprintOf(server.hostKey.split(" ")[1]);
      assertEquals(await keys(storage({ knownHosts: [], hostKey: fp })), ["k"]);
      // Unknown host: refused before logging in, with the presented fingerprint and what to do.
      const unknown = await expectError(
        keys(storage({ knownHosts: [] })),
        ExitCode.storage,
        `host key of ${server.hostPort} is not known`,
        fp,
        "host-key",
        "LITEWARDEN_SFTP_INSECURE_HOST_KEY=1",
      );
      assertMatch(unknown.message, /ssh-keyscan -p \d+ 127\.0\.0\.1/);
      // Another key for this host: a mismatch, never silently accepted.
      const otherLine = await generateKey(`${server.dataDir}/other_host_key`);
      const wrongKnown = `${server.dataDir}/known_hosts_wrong`;
      await Deno.writeTextFile(wrongKnown, `[127.0.0.1]:${server.port} ${otherLine}\n`);
      await expectError(
        keys(storage({ knownHosts: [wrongKnown] })),
        ExitCode.storage,
        "does not match",
      );
      await expectError(
        keys(storage({ knownHosts: [], hostKey: otherLine })),
        ExitCode.storage,
        "does not match",
      );
      // @revoked wins over a matching entry.
      const revoked = `${server.dataDir}/known_hosts_revoked`;
      await Deno.writeTextFile(
        revoked,
        `${await Deno.readTextFile(server.knownHostsPath)}@revoked * ${server.hostKey}\n`,
      );
      await expectError(keys(storage({ knownHosts: [revoked] })), ExitCode.storage, "@revoked");
      // Litestream v0.3.13's behaviour, on request only.
      assertEquals(await keys(storage({ knownHosts: [], insecureHostKey: true })), ["k"]);
    }),
});

Deno.test({
  name: "SFTP login failures are exit 4 and never show the password; unusable keys are exit 2",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      const password = "correct-horse-battery-staple-9";
      const err = await expectError(
        keys(storage({ keyPath: undefined, password })),
        ExitCode.storage,
        `SFTP login as ${server.user} at ${server.hostPort} failed`,
      );
      assert(!err.message.includes(password));
      // A key the server does not know.
      const stranger = `${server.dataDir}/stranger`;
      await generateKey(stranger);
      await expectError(
        keys(storage({ keyPath: stranger })),
        ExitCode.storage,
        "authentication refused",
        "key-path",
      );
      // A passphrase-protected key (Litestream cannot use one either) and a missing file.
      const locked = `${server.dataDir}/locked`;
      await generateKey(locked, "", "secret-phrase");
      await expectError(keys(storage({ keyPath: locked })), ExitCode.usage, "passphrase");
      await expectError(
        keys(storage({ keyPath: `${server.dataDir}/nope` })),
        ExitCode.usage,
        "does not exist",
      );
      await expectError(
        keys(storage({ keyPath: undefined })),
        ExitCode.usage,
        "no credentials for sftp replica",
      );
    }),
});

Deno.test({
  name: "SFTP: a download whose connection is cut resumes on a new one and yields every byte",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      const data = bytes(2_000_000, 3);
      await write(`${server.dataDir}/replica/big`, data);
      const s = storage({}, { ...FAST, readChunkBytes: 16 << 10, readAhead: 2 });
      const reader = (await s.get("big")).getReader();
      const parts: Uint8Array[] = [];
      let got = 0;
      let cut = false;
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        parts.push(r.value);
        got += r.value.length;
        if (!cut && got > 200_000) {
          cut = true;
          const pids = await sessionPids(server);
          assertEquals(pids.length, 1, "one session");
          Deno.kill(pids[0], "SIGKILL");
        }
      }
      assert(cut);
      const all = new Uint8Array(got);
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      assertEquals(all.length, data.length);
      assert(all.every((b, i) => b === data[i]), "bytes differ after the resume");
      // Listing still works (on the new connection).
      assertEquals(await keys(s), ["big"]);
    }),
});

Deno.test({
  name:
    "SFTP: a session that stops answering (SIGSTOP) is dropped after the request timeout and the download resumes",
  ignore,
  fn: () =>
    withServer(async (server, storage) => {
      const data = bytes(1_000_000, 5);
      await write(`${server.dataDir}/replica/big`, data);
      const s = storage({}, {
        ...FAST,
        readChunkBytes: 16 << 10,
        readAhead: 2,
        requestTimeoutMs: 500,
      });
      const reader = (await s.get("big")).getReader();
      const first = await reader.read();
      assert(!first.done);
      const [pid] = await sessionPids(server);
      Deno.kill(pid, "SIGSTOP");
      try {
        const parts = [first.value];
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          parts.push(r.value);
        }
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
        assertEquals(all.length, data.length);
        assert(all.every((b, i) => b === data[i]), "bytes differ after the resume");
        // The rest came over a second session.
        const again = await sessionPids(server);
        assert(again.length >= 2, `a second session: ${again}`);
      } finally {
        Deno.kill(pid, "SIGKILL");
      }
    }),
});

Deno.test({
  name: "SFTP: a server that is gone is exit 4 after bounded retries, naming host and port",
  ignore,
  fn: async () => {
    const server = await startSftpServer();
    const target = sftpTarget(server, "/x", { keyPath: undefined, password: "never-sent" });
    await server.stop();
    const s = new SftpStorage(target, { ...FAST, maxAttempts: 3 });
    try {
      await expectError(
        keys(s),
        ExitCode.storage,
        `cannot reach SFTP server ${server.hostPort}`,
        "connection refused",
        "after 3 attempts",
      );
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "openStorage gives an SftpStorage for sftp targets, located as sftp://HOST:PORT/PATH",
  ignore,
  fn: async () => {
    const t = sftpTarget(
      { host: "127.0.0.1", port: 2222, user: "vw" } as TestSftpServer,
      "/backups/db",
    );
    const s = await openStorage(t);
    assert(s instanceof SftpStorage);
    assertEquals(s.location, "sftp://127.0.0.1:2222/backups/db");
    assertEquals(
      (await openStorage({ ...t, path: "rel/db", port: 22 })).location,
      "sftp://127.0.0.1:22/~/rel/db",
    );
  },
});
