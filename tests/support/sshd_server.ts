/**
 * A real SFTP server for tests: OpenSSH's `sshd` (Debian `openssh-server`, installed by `.ci/run`)
 * started as a separate process on 127.0.0.1 with a free high port, a private config, a host key
 * and a client key generated with `ssh-keygen` for this run. Only key authentication is enabled:
 * password logins would need a system account with a password, which the suite does not create.
 *
 * The login user is the one running the tests (root in CI: `PermitRootLogin prohibit-password`
 * allows key logins). Running as root, sshd needs its privilege-separation directory `/run/sshd`,
 * which is created here when missing. SFTP is served by `internal-sftp`, so no login shell runs;
 * absolute paths are paths on this machine, relative ones are relative to `dataDir` (the
 * session's start directory).
 */
import { join } from "node:path";
import type { SftpReplicaTarget } from "../../src/config/target.ts";
import type { ReplicaConfig } from "./litestream.ts";
import { makeTempDir, type TempDir } from "./tmp.ts";

export const SSHD_PATH = "/usr/sbin/sshd";

export interface TestSftpServer extends AsyncDisposable {
  host: string;
  port: number;
  /** `127.0.0.1:PORT`, as Litestream's `host` setting takes it. */
  hostPort: string;
  /** The login user (the one running the tests). */
  user: string;
  /** The client's private key (OpenSSH format, ed25519, no passphrase). */
  keyPath: string;
  /** The server's public host key as one authorized_keys line (`ssh-ed25519 AAAA…`). */
  hostKey: string;
  /** A known_hosts file with the host key for `[127.0.0.1]:PORT`. */
  knownHostsPath: string;
  /** A directory to put replicas in, and the SFTP login directory (removed on stop). */
  dataDir: string;
  /** The listening sshd's process id. */
  pid: number;
  /** Stops sshd and removes its files. */
  stop(): Promise<void>;
}

/** Whether sshd is installed (`.ci/run` installs it; a developer machine may lack it). */
export function haveSshd(): boolean {
  try {
    return Deno.statSync(SSHD_PATH).isFile;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

async function currentUser(): Promise<string> {
  return (await run("id", ["-un"])).trim();
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, child: Deno.ChildProcess, log: () => string) {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`sshd exited during start-up:\n${log()}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s:\n${log()}`);
}

/** Writes an ed25519 key pair (`path`, `path.pub`) with `ssh-keygen`; no passphrase by default. */
export async function generateKey(path: string, comment = "", passphrase = ""): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", path]);
  return (await Deno.readTextFile(`${path}.pub`)).trim().split(/\s+/).slice(0, 2).join(" ");
}

/** Starts sshd; call `stop()` (or `await using`) when done. */
export async function startSftpServer(): Promise<TestSftpServer> {
  const dir: TempDir = await makeTempDir("litewarden-sshd-");
  // sshd refuses keys and configs in group/world-writable places even with StrictModes off
  // for some checks; the temp dir is 0700 already.
  const hostKeyPath = dir.join("ssh_host_ed25519_key");
  const keyPath = dir.join("id_ed25519");
  const hostKey = await generateKey(hostKeyPath, "litewarden-test-host");
  await generateKey(keyPath, "litewarden-test");
  const authorizedKeys = dir.join("authorized_keys");
  await Deno.copyFile(`${keyPath}.pub`, authorizedKeys);
  const user = await currentUser();
  if (Deno.uid() === 0) await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });

  const port = freePort();
  const knownHostsPath = dir.join("known_hosts");
  await Deno.writeTextFile(knownHostsPath, `[127.0.0.1]:${port} ${hostKey}\n`);
  const dataDir = dir.join("data");
  await Deno.mkdir(dataDir);
  const config = [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${hostKeyPath}`,
    `PidFile none`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    `StrictModes no`,
    `UsePAM no`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `PubkeyAuthentication yes`,
    `PermitRootLogin prohibit-password`,
    `AllowUsers ${user}`,
    // The login directory of SFTP sessions, so relative replica paths land in dataDir.
    `Subsystem sftp internal-sftp -d ${dataDir}`,
    `LogLevel ERROR`,
    `MaxStartups 100:30:200`,
    `MaxSessions 64`,
  ].join("\n") + "\n";
  const configPath = dir.join("sshd_config");
  await Deno.writeTextFile(configPath, config);

  const child = new Deno.Command(SSHD_PATH, {
    args: ["-f", configPath, "-D", "-e"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const dec = new TextDecoder();
  const drain = (async () => {
    for await (const chunk of child.stderr) stderr += dec.decode(chunk, { stream: true });
  })();
  try {
    await waitForPort(port, child, () => stderr);
  } catch (err) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await dir.cleanup();
    throw err;
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The listener's exit leaves running sessions alone; end them too.
    for (const pid of await sessionPids({ pid: child.pid })) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch { /* gone meanwhile */ }
    }
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    await child.status;
    await drain.catch(() => {});
    await dir.cleanup();
  };
  return {
    host: "127.0.0.1",
    port,
    hostPort: `127.0.0.1:${port}`,
    user,
    keyPath,
    hostKey,
    knownHostsPath,
    dataDir: join(dir.path, "data"),
    pid: child.pid,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A target for `path` on the server, with the test key and the server's known_hosts. */
export function sftpTarget(
  server: TestSftpServer,
  path: string,
  extra: Partial<SftpReplicaTarget> = {},
): SftpReplicaTarget {
  return {
    type: "sftp",
    name: "sftp",
    host: server.host,
    port: server.port,
    user: server.user,
    path,
    keyPath: server.keyPath,
    knownHosts: [server.knownHostsPath],
    insecureHostKey: false,
    ...extra,
  };
}

/** The per-connection sshd processes (children of the listener), e.g. to cut a session. */
export async function sessionPids(server: Pick<TestSftpServer, "pid">): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${e.name}/stat`).catch(() => "");
    // Fields after the parenthesised command name: state, ppid, …
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === server.pid) pids.push(Number(e.name));
  }
  return pids;
}

/**
 * The `type: sftp` replica for litestream.yml (tests/support/litestream.ts) that Litestream
 * v0.3.13 reads: host with port, user, key-path, path. `host-key` is v0.5's key; v0.3.13
 * ignores it and litewarden checks it.
 */
export function sftpReplicaConfig(
  server: TestSftpServer,
  path: string,
  extra: Record<string, unknown> = {},
): ReplicaConfig {
  return {
    type: "sftp",
    extra: {
      host: server.hostPort,
      user: server.user,
      "key-path": server.keyPath,
      path,
      "host-key": server.hostKey,
      ...extra,
    },
  };
}
