/**
 * The one module behind npm `ssh2` (pure JavaScript under Deno: its optional native crypto addon
 * is never built, because Deno runs no install scripts; node:crypto does the ciphers). It opens an
 * SSH connection with an SFTP channel and exposes the few SFTP v3 requests the backend needs as
 * promises. Loaded lazily by the SFTP backend only.
 *
 * Errors are `SshError`s with a `kind` and a short, safe `reason` (the library's messages are not
 * passed on: they can echo request details).
 */
import { Buffer } from "node:buffer";

/** What went wrong, as far as the caller needs to decide (retry, exit code, message). */
export type SshErrorKind =
  | "missing" // SFTP NO_SUCH_FILE
  | "permission" // SFTP PERMISSION_DENIED
  | "failure" // another SFTP status (FAILURE, BAD_MESSAGE, OP_UNSUPPORTED, …)
  | "auth" // the server refused every credential offered
  | "hostkey" // our host key check refused the server
  | "network" // connect failed, connection dropped, timed out: worth a retry
  | "key"; // the private key could not be used

export class SshError extends Error {
  constructor(readonly kind: SshErrorKind, readonly reason: string) {
    super(reason);
    this.name = "SshError";
  }
}

export interface SftpAttrs {
  size: number;
  /** Seconds since the epoch (SFTP v3 carries whole seconds). */
  mtime: number;
  isFile: boolean;
  isDirectory: boolean;
}

export interface SftpEntry {
  name: string;
  attrs: SftpAttrs;
}

/** An open remote file. */
export type SftpHandle = Uint8Array;

export interface SftpSession {
  readdir(path: string): Promise<SftpEntry[]>;
  stat(path: string): Promise<SftpAttrs>;
  fstat(handle: SftpHandle): Promise<SftpAttrs>;
  open(path: string, mode: "r" | "w"): Promise<SftpHandle>;
  /** Up to `length` bytes at `position`; an empty array at end of file. */
  read(handle: SftpHandle, length: number, position: number): Promise<Uint8Array>;
  write(handle: SftpHandle, data: Uint8Array, position: number): Promise<void>;
  close(handle: SftpHandle): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Replaces `to` atomically where the server has posix-rename@openssh.com, else plain RENAME. */
  rename(from: string, to: string): Promise<void>;
  /** True once the connection is gone (the backend then opens a new one). */
  readonly closed: boolean;
  /** Ends the connection and waits until its socket is closed. */
  end(): Promise<void>;
}

export interface SshConnectOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** Private key text (OpenSSH or PEM). */
  privateKey?: string;
  /**
   * Decides on the server's host key (the SSH wire-format public key blob): returns undefined to
   * accept it, or the error to fail the connection with.
   */
  checkHostKey: (blob: Uint8Array) => SshError | undefined;
  /** Host key algorithms to prefer (the ones we hold keys for), best first. */
  hostKeyAlgorithms?: string[];
  /** Handshake timeout (Litestream's dial timeout is 30 s). */
  readyTimeoutMs: number;
  /** Keep-alive interval; a dead peer is noticed after 3 unanswered ones. */
  keepaliveMs: number;
}

// ---- the subset of ssh2's API used here (the package ships no types) ----

interface Ssh2Stats {
  size?: number;
  mtime?: number;
  isFile(): boolean;
  isDirectory(): boolean;
}
type Cb<T = void> = (err: Ssh2Error | undefined | null, value: T) => void;
interface Ssh2Error extends Error {
  code?: number | string;
  level?: string;
}
interface Ssh2Sftp {
  readdir(path: string, cb: Cb<{ filename: string; attrs: Ssh2Stats }[]>): void;
  stat(path: string, cb: Cb<Ssh2Stats>): void;
  fstat(handle: Buffer, cb: Cb<Ssh2Stats>): void;
  open(path: string, flags: string, cb: Cb<Buffer>): void;
  read(
    handle: Buffer,
    buf: Buffer,
    off: number,
    len: number,
    pos: number,
    cb: (err: Ssh2Error | undefined, n: number, data: Buffer) => void,
  ): void;
  write(handle: Buffer, buf: Buffer, off: number, len: number, pos: number, cb: Cb): void;
  close(handle: Buffer, cb: Cb): void;
  mkdir(path: string, cb: Cb): void;
  rmdir(path: string, cb: Cb): void;
  unlink(path: string, cb: Cb): void;
  rename(from: string, to: string, cb: Cb): void;
  ext_openssh_rename(from: string, to: string, cb: Cb): void;
  on(event: "error", cb: (err: Error) => void): void;
}
interface Ssh2Client {
  on(event: "connect" | "ready" | "close" | "end", cb: () => void): Ssh2Client;
  on(event: "error", cb: (err: Ssh2Error) => void): Ssh2Client;
  connect(config: Record<string, unknown>): void;
  sftp(cb: Cb<Ssh2Sftp>): void;
  setNoDelay(noDelay: boolean): void;
  end(): void;
  destroy(): void;
}
interface Ssh2Module {
  Client: new () => Ssh2Client;
  utils: { parseKey(data: string | Buffer, passphrase?: string): unknown };
}

let loaded: Promise<Ssh2Module> | undefined;

function loadSsh2(): Promise<Ssh2Module> {
  // In `deno bundle`'s output an Emscripten helper inside ssh2 (poly1305) reads `__dirname` when
  // it thinks it runs under Node; ES modules have none. It only builds a base path from it.
  const g = globalThis as { __dirname?: string };
  g.__dirname ??= "/";
  loaded ??= import("ssh2").then((m) => (m.default ?? m) as unknown as Ssh2Module);
  return loaded;
}

const SFTP_STATUS: Record<number, SshErrorKind> = { 2: "missing", 3: "permission" };
const SFTP_REASON: Record<number, string> = {
  2: "no such file",
  3: "permission denied",
  4: "failure",
  5: "bad message",
  8: "operation unsupported",
};

/** An SFTP status or connection error from ssh2, as an SshError. */
function mapError(err: Ssh2Error): SshError {
  if (err instanceof SshError) return err;
  if (typeof err.code === "number") {
    if (err.code === 6 || err.code === 7) return new SshError("network", "connection lost");
    return new SshError(SFTP_STATUS[err.code] ?? "failure", SFTP_REASON[err.code] ?? "failure");
  }
  return connectionError(err);
}

function connectionError(err: Ssh2Error): SshError {
  if (err instanceof SshError) return err;
  const code = typeof err.code === "string" ? err.code : undefined;
  if (err.level === "client-authentication") {
    return new SshError("auth", "authentication failed");
  }
  if (err.level === "client-timeout") return new SshError("network", "timed out");
  if (code === "ECONNREFUSED") return new SshError("network", "connection refused (ECONNREFUSED)");
  if (code === "ENOTFOUND" || code === "EAI_NONAME") {
    return new SshError("network", `host not found (${code})`);
  }
  if (code) return new SshError("network", `network error (${code})`);
  if (/No response from server|Not connected|closed/i.test(err.message)) {
    return new SshError("network", "connection lost");
  }
  if (err.level === "protocol" || err.level === "handshake") {
    return new SshError("network", "SSH handshake failed (no common algorithm?)");
  }
  return new SshError("network", "connection failed");
}

/** Checks a private key without using it: unreadable formats and passphrases fail early. */
export async function checkPrivateKey(text: string): Promise<SshError | undefined> {
  const ssh2 = await loadSsh2();
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    return /encrypted/i.test(parsed.message)
      ? new SshError("key", "it is protected by a passphrase")
      : new SshError("key", "it is not a private key ssh can use");
  }
  return undefined;
}

function attrsOf(s: Ssh2Stats): SftpAttrs {
  return {
    size: s.size ?? 0,
    mtime: s.mtime ?? 0,
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
  };
}

/** Connects, authenticates and opens the SFTP channel. */
export async function openSftpSession(opts: SshConnectOptions): Promise<SftpSession> {
  const ssh2 = await loadSsh2();
  const client = new ssh2.Client();
  let hostKeyError: SshError | undefined;
  let closed = false;
  let closedResolve: () => void = () => {};
  const closedPromise = new Promise<void>((r) => (closedResolve = r));
  client.on("close", () => {
    closed = true;
    closedResolve();
  });

  const sftp = await new Promise<Ssh2Sftp>((resolve, reject) => {
    let settled = false;
    client.on("error", (err) => {
      closed = true;
      if (settled) return; // later errors surface through the pending request callbacks
      settled = true;
      reject(hostKeyError ?? connectionError(err));
    });
    // Deno's node:net leaves Nagle on; with SSH's small packets that costs a delayed-ACK wait
    // (~40 ms) per round trip: four in the login, one per SFTP read. Off as soon as TCP is up.
    client.on("connect", () => client.setNoDelay(true));
    client.on("ready", () => {
      client.sftp((err, channel) => {
        settled = true;
        if (err) {
          client.end();
          reject(new SshError("failure", "the server refused the SFTP subsystem"));
        } else {
          // Channel errors also reach every pending request's callback.
          channel.on("error", () => {});
          resolve(channel);
        }
      });
    });
    const config: Record<string, unknown> = {
      host: opts.host,
      port: opts.port,
      username: opts.user,
      readyTimeout: opts.readyTimeoutMs,
      keepaliveInterval: opts.keepaliveMs,
      keepaliveCountMax: 3,
      tryKeyboard: false,
      hostVerifier: (blob: Buffer) => {
        hostKeyError = opts.checkHostKey(new Uint8Array(blob));
        return hostKeyError === undefined;
      },
    };
    if (opts.password !== undefined) config.password = opts.password;
    if (opts.privateKey !== undefined) config.privateKey = opts.privateKey;
    config.algorithms = {
      // Measured under Deno 2.9.6 on loopback: ssh2's own ChaCha20-Poly1305 reads ~1.4x faster
      // than AES-GCM through node:crypto (per-packet cipher set-up); the rest as ssh2 orders them.
      cipher: [
        "chacha20-poly1305@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
      ],
      ...(opts.hostKeyAlgorithms?.length ? { serverHostKey: opts.hostKeyAlgorithms } : {}),
    };
    client.connect(config);
  });

  const call = <T>(fn: (cb: Cb<T>) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (closed) return reject(new SshError("network", "connection lost"));
      try {
        fn((err, value) => (err ? reject(mapError(err)) : resolve(value)));
      } catch {
        // ssh2 throws synchronously when the channel is gone.
        reject(new SshError("network", "connection lost"));
      }
    });

  return {
    get closed() {
      return closed;
    },
    readdir: async (path) =>
      (await call<{ filename: string; attrs: Ssh2Stats }[]>((cb) => sftp.readdir(path, cb)))
        .map((e) => ({ name: e.filename, attrs: attrsOf(e.attrs) })),
    stat: async (path) => attrsOf(await call<Ssh2Stats>((cb) => sftp.stat(path, cb))),
    fstat: async (h) => attrsOf(await call<Ssh2Stats>((cb) => sftp.fstat(Buffer.from(h), cb))),
    open: async (path, mode) =>
      new Uint8Array(await call<Buffer>((cb) => sftp.open(path, mode, cb))),
    read: (h, length, position) =>
      new Promise<Uint8Array>((resolve, reject) => {
        if (closed) return reject(new SshError("network", "connection lost"));
        const buf = Buffer.allocUnsafe(length);
        try {
          sftp.read(Buffer.from(h), buf, 0, length, position, (err, n) => {
            if (err) return reject(mapError(err));
            resolve(new Uint8Array(buf.buffer, buf.byteOffset, n));
          });
        } catch {
          reject(new SshError("network", "connection lost"));
        }
      }),
    write: (h, data, position) =>
      call<void>((cb) =>
        sftp.write(
          Buffer.from(h),
          Buffer.from(data.buffer, data.byteOffset, data.length),
          0,
          data.length,
          position,
          cb,
        )
      ),
    close: (h) => call<void>((cb) => sftp.close(Buffer.from(h), cb)),
    mkdir: (path) => call<void>((cb) => sftp.mkdir(path, cb)),
    rmdir: (path) => call<void>((cb) => sftp.rmdir(path, cb)),
    unlink: (path) => call<void>((cb) => sftp.unlink(path, cb)),
    rename: async (from, to) => {
      if (closed) throw new SshError("network", "connection lost");
      const atomic = await new Promise<boolean>((resolve, reject) => {
        try {
          sftp.ext_openssh_rename(from, to, (err) => (err ? reject(mapError(err)) : resolve(true)));
        } catch {
          // ssh2 throws synchronously when the server lacks posix-rename@openssh.com.
          resolve(false);
        }
      });
      if (atomic) return;
      await call<void>((cb) => sftp.unlink(to, cb)).catch((err: SshError) => {
        if (err.kind !== "missing") throw err;
      });
      await call<void>((cb) => sftp.rename(from, to, cb));
    },
    end: async () => {
      if (closed) return;
      client.end();
      // A peer that stopped answering never completes the goodbye: destroy the socket, and do
      // not wait for a close event longer than that either.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          client.destroy();
          closed = true;
          resolve();
        }, 2000);
      });
      await Promise.race([closedPromise, late]);
      clearTimeout(timer);
    },
  };
}
