/**
 * The SFTP backend (Litestream's `sftp` replica type): one SSH connection per storage with one
 * SFTP channel, requests pipelined on it, opened on first use and reopened after a drop.
 *
 * - Keys are joined onto the replica path as Litestream does (`path.Join(path, key)`): an
 *   absolute path is absolute on the server, a relative one (or none) is relative to the login
 *   directory. Object times are file mtimes, which SFTP carries in whole seconds — Litestream's
 *   own SFTP client sees the same times.
 * - The host key is checked before any credential is sent (see known_hosts.ts), unlike
 *   Litestream v0.3.13, which accepts any host key; `insecureHostKey` restores that behaviour.
 * - Retries: connecting and each request are retried with exponential backoff and full jitter
 *   when the connection fails or drops (never on auth, host key, permission or missing files);
 *   a download that breaks off mid-way resumes from the byte where it stopped.
 * - Messages carry host, port, user and path only; the password and key never reach them.
 */
import { sftpHostPort, sftpLocation, type SftpReplicaTarget } from "../config/target.ts";
import {
  DamagedError,
  MissingObjectError,
  StorageError,
  type StorageFailure,
  UsageError,
} from "../errors.ts";
import { type Download, emptyStream, resumableDownload } from "./resumable.ts";
import {
  algorithmsFor,
  fingerprintOf,
  judgeHostKey,
  keyOfBlob,
  knownKeysFor,
} from "./known_hosts.ts";
import {
  checkPrivateKey,
  type SftpAttrs,
  type SftpHandle,
  type SftpSession,
  SshError,
} from "./ssh_client.ts";
import { openSftpSession } from "./ssh_client.ts";
import type { ByteRange, ObjectInfo, PutSource, PutStreamOptions, Storage } from "./storage.ts";
import { vanishedObjectMessage } from "./storage.ts";

/** Tuning knobs; the defaults suit real use, tests shrink them to stay fast. */
export interface SftpStorageOptions {
  /** Attempts per request (and per connection), including the first (default 5). */
  maxAttempts?: number;
  /** Backoff base: attempt n waits a random time in [0, min(max, base·2^(n-1))) (default 200 ms). */
  retryBaseDelayMs?: number;
  /** Backoff cap (default 10 s). */
  retryMaxDelayMs?: number;
  /** SSH handshake timeout (default 30 s, Litestream's dial timeout). */
  connectTimeoutMs?: number;
  /** Keep-alive interval (default 15 s; a peer silent for 3 intervals is dropped). */
  keepaliveMs?: number;
  /** Bytes per SFTP read request (default 64 KiB). */
  readChunkBytes?: number;
  /** Read requests kept in flight per download (default 4). */
  readAhead?: number;
  /**
   * An SFTP request (a read included) unanswered this long drops the connection, which is then
   * reopened and the request retried or the download resumed (default 60 s). Keep-alives only
   * catch a dead peer, not a server that answers them but stalls a request.
   */
  requestTimeoutMs?: number;
}

const DEFAULTS: Required<SftpStorageOptions> = {
  maxAttempts: 5,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 10_000,
  connectTimeoutMs: 30_000,
  keepaliveMs: 15_000,
  readChunkBytes: 64 << 10,
  readAhead: 4,
  requestTimeoutMs: 60_000,
};

/** Parallel unlinks per delete call (pipelined on the one channel). */
const DELETE_CONCURRENCY = 8;

/** The host key algorithms ssh2 offers by default, to follow the ones we hold keys for. */
const DEFAULT_HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

export class SftpStorage implements Storage {
  readonly location: string;
  private readonly opts: Required<SftpStorageOptions>;
  /** "" (login directory), "/" or a cleaned path without trailing slash. */
  private readonly root: string;
  private readonly hostPort: string;
  /** The connection being opened or open; `current` once it is open. */
  private session?: Promise<SftpSession>;
  private current?: SftpSession;
  private closed = false;

  constructor(private readonly target: SftpReplicaTarget, options: SftpStorageOptions = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.opts.maxAttempts = Math.max(1, Math.floor(this.opts.maxAttempts));
    this.root = target.path;
    this.location = sftpLocation(target);
    this.hostPort = sftpHostPort(target);
  }

  /** Ends the SSH connection (waits for its socket to close). */
  async close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    this.current = undefined;
    if (s) await s.then((x) => x.end(), () => {});
  }

  // ---- paths ----

  private remote(key: string): string {
    if (this.root === "") return key === "" ? "." : key;
    if (key === "") return this.root;
    return this.root === "/" ? `/${key}` : `${this.root}/${key}`;
  }

  // ---- list ----

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory part of the prefix; the rest filters names.
    const slash = prefix.lastIndexOf("/");
    const dir = slash >= 0 ? prefix.slice(0, slash) : "";
    const rest = slash >= 0 ? prefix.slice(slash + 1) : prefix;
    yield* this.walk(dir, rest);
  }

  /**
   * Depth-first over `dir`, siblings sorted by name (directories as `name/`), which yields keys
   * in lexicographic order: every key below a directory starts with `name/`.
   */
  private async *walk(dir: string, namePrefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await this.request(
        { op: "list", key: dir, what: `list ${dir || "the root"}` },
        (s) => s.readdir(this.remote(dir)),
      );
    } catch (err) {
      if (err instanceof SftpMissing) return;
      throw err;
    }
    const sorted = entries
      .filter((e) => e.name.startsWith(namePrefix) && (e.attrs.isFile || e.attrs.isDirectory))
      .map((e) => ({ e, sortKey: e.attrs.isDirectory ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const { e } of sorted) {
      const key = dir ? `${dir}/${e.name}` : e.name;
      if (e.attrs.isDirectory) yield* this.walk(key, "");
      else yield { key, size: e.attrs.size, modified: new Date(e.attrs.mtime * 1000) };
    }
  }

  // ---- get ----

  async get(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (range?.length === 0) return emptyStream();
    const first = await this.download(key, range);
    return resumableDownload(key, range, first, (rest) => this.download(key, rest), {
      maxAttempts: this.opts.maxAttempts,
      retryBaseDelayMs: this.opts.retryBaseDelayMs,
      retryMaxDelayMs: this.opts.retryMaxDelayMs,
      location: this.location,
    });
  }

  /**
   * Opens `key` (with request retries) and streams `range` of it with `readAhead` read requests
   * in flight. The body errors when the connection drops (the resumable wrapper then asks for the
   * rest) and ends early if the file ends early (the wrapper notices the missing bytes).
   */
  private async download(key: string, range?: ByteRange): Promise<Download> {
    const start = range?.offset ?? 0;
    const open = await this.openForRead(key);
    if (start > open.size || (range?.length !== undefined && start >= open.size)) {
      closeQuietly(open);
      const asked = range?.length === undefined
        ? `${start}-`
        : `${start}-${start + range.length - 1}`;
      throw new DamagedError(
        `replica object ${key} in ${this.location} is shorter than expected (asked for bytes ${asked}, it has ${open.size}); the object is truncated`,
        key,
      );
    }
    const end = range?.length === undefined ? open.size : Math.min(open.size, start + range.length);
    let pos = start;
    /** Reads in flight, in offset order. */
    let inflight: { at: number; len: number; p: Promise<Uint8Array> }[] = [];
    const fill = () => {
      const last = inflight[inflight.length - 1];
      let next = last ? last.at + last.len : pos;
      while (inflight.length < this.opts.readAhead && next < end) {
        const len = Math.min(this.opts.readChunkBytes, end - next);
        const p = open.session.read(open.handle, len, next);
        p.catch(() => {}); // awaited in order below; must not count as unhandled meanwhile
        inflight.push({ at: next, len, p });
        next += len;
      }
    };
    // Requests already sent are abandoned, not awaited: on a stalled connection they never
    // settle, and their late answers (or errors) go nowhere (each has a catch attached).
    const drop = () => {
      inflight = [];
    };
    const finish = () => {
      drop();
      closeQuietly(open);
    };
    const body = new ReadableStream<Uint8Array>({
      pull: async (ctrl) => {
        if (pos >= end) {
          finish();
          ctrl.close();
          return;
        }
        fill();
        const head = inflight[0];
        let data: Uint8Array;
        try {
          data = await this.answered(open.session, head.p);
        } catch (err) {
          finish();
          if (err instanceof SshError && err.kind === "network") this.forget(open.session);
          throw this.mapped(err, { op: "get", key, what: `read ${key}` });
        }
        inflight.shift();
        if (data.length === 0) {
          // The file ended before the size fstat gave; the wrapper sees the missing bytes.
          finish();
          ctrl.close();
          return;
        }
        // After a short read, the requests already sent start at the wrong offsets.
        if (data.length < head.len) drop();
        pos += data.length;
        ctrl.enqueue(data);
      },
      cancel: () => finish(),
    });
    return { body, length: end - start };
  }

  private async openForRead(key: string): Promise<OpenFile> {
    try {
      return await this.request({ op: "get", key, what: `read ${key}` }, async (s) => {
        const handle = await s.open(this.remote(key), "r");
        let attrs: SftpAttrs;
        try {
          attrs = await s.fstat(handle);
        } catch (err) {
          await s.close(handle).catch(() => {});
          throw err;
        }
        return { session: s, handle, size: attrs.size, closed: false };
      });
    } catch (err) {
      if (err instanceof SftpMissing) {
        throw new MissingObjectError(
          vanishedObjectMessage(key, this.location),
          key,
        );
      }
      throw err;
    }
  }

  // ---- put ----

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.remote(key);
    const slash = key.lastIndexOf("/");
    if (slash > 0) await this.mkdirs(key.slice(0, slash));
    const tmp = `${path}.tmp-${crypto.randomUUID()}`;
    await this.request({ op: "put", key, what: `write ${key}` }, async (s) => {
      const h = await s.open(tmp, "w");
      try {
        for (let at = 0; at < data.length; at += 32 << 10) {
          await s.write(h, data.subarray(at, Math.min(data.length, at + (32 << 10))), at);
        }
      } finally {
        await s.close(h).catch(() => {});
      }
      await s.rename(tmp, path);
    });
  }

  /** Not yet (one SFTP request may not outlast its 60 s timeout). A typed error names the way out. */
  putStream(key: string, _src: PutSource, _opts?: PutStreamOptions): Promise<boolean> {
    return Promise.reject(
      new UsageError(
        `storing vault files (${key}) on SFTP is not supported yet; name a file or S3 location for them with LITEWARDEN_FILES_URL (--files-url)`,
      ),
    );
  }

  /** `mkdir -p` of a key's directory, the root included (as Litestream's MkdirAll). */
  private async mkdirs(dir: string): Promise<void> {
    await this.request(
      { op: "put", key: dir, what: `create directory ${dir}` },
      (s) => mkdirp(s, this.remote(dir)),
    );
  }

  // ---- delete ----

  async delete(keys: string[]): Promise<void> {
    const dirs = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++];
        try {
          await this.request(
            { op: "delete", key, what: `delete ${key}` },
            (s) => s.unlink(this.remote(key)),
          );
        } catch (err) {
          if (!(err instanceof SftpMissing)) throw err;
        }
        const slash = key.lastIndexOf("/");
        if (slash > 0) dirs.add(key.slice(0, slash));
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
    // Remove directories left empty (e.g. a whole generation), deepest first, never the root.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
      let d = dir;
      while (d) {
        try {
          await this.request(
            { op: "delete", key: d, what: `remove directory ${d}` },
            (s) => s.rmdir(this.remote(d)),
          );
        } catch {
          break; // not empty (or gone): that is the point
        }
        const slash = d.lastIndexOf("/");
        d = slash > 0 ? d.slice(0, slash) : "";
      }
    }
  }

  // ---- connection, retries, errors ----

  /** The open session, connecting (with retries) when there is none. */
  private connect(): Promise<SftpSession> {
    if (this.closed) throw new Error("SftpStorage used after close()");
    if (this.current?.closed) this.forget(this.current);
    if (this.session) return this.session;
    const s = this.dial();
    this.session = s;
    s.then((x) => {
      if (this.session === s) this.current = x;
    }, () => {
      if (this.session === s) this.session = undefined;
    });
    return s;
  }

  /** Drops a session that failed, so the next request opens a new one. */
  private forget(s: SftpSession): void {
    if (this.current === s) {
      this.current = undefined;
      this.session = undefined;
    }
    s.end().catch(() => {});
  }

  private async dial(): Promise<SftpSession> {
    const t = this.target;
    if (t.password === undefined && t.keyPath === undefined) {
      throw new UsageError(
        `no credentials for sftp replica ${t.name} (${this.location}): set key-path or password for the replica (URL form: LITEWARDEN_SFTP_KEY_PATH, or sftp://USER:PASSWORD@HOST/PATH)`,
      );
    }
    const privateKey = t.keyPath === undefined ? undefined : await this.readKey(t.keyPath);
    const knownText = t.hostKey === undefined && !t.insecureHostKey
      ? await this.readKnownHosts()
      : "";
    const known = knownKeysFor(knownText, t.host, t.port);
    const preferred = t.hostKey && !t.hostKey.startsWith("SHA256:")
      ? algorithmsFor(t.hostKey.split(" ")[0])
      : known.keys.flatMap((k) => algorithmsFor(k.type));
    const algorithms = [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])];
    for (let attempt = 1;; attempt++) {
      try {
        return await openSftpSession({
          host: t.host,
          port: t.port,
          user: t.user,
          password: t.password,
          privateKey,
          hostKeyAlgorithms: algorithms,
          readyTimeoutMs: this.opts.connectTimeoutMs,
          keepaliveMs: this.opts.keepaliveMs,
          checkHostKey: (blob) => {
            if (t.insecureHostKey) return undefined;
            const presented = keyOfBlob(blob);
            const verdict = judgeHostKey(presented, t.hostKey, known);
            return verdict.ok ? undefined : new SshError(
              "hostkey",
              this.hostKeyMessage(verdict.why, presented.type, presented.base64),
            );
          },
        });
      } catch (err) {
        if (!(err instanceof SshError)) throw err;
        if (err.kind !== "network" || attempt >= this.opts.maxAttempts) {
          throw this.connectError(err, attempt);
        }
        await this.backoff(attempt);
      }
    }
  }

  private async readKey(path: string): Promise<string> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound
        ? "it does not exist"
        : err instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : "it cannot be read";
      throw new UsageError(
        `cannot read key-path ${path} of sftp replica ${this.target.name}: ${why}`,
      );
    }
    const bad = await checkPrivateKey(text);
    if (bad) {
      throw new UsageError(
        `key-path ${path} of sftp replica ${this.target.name} cannot be used: ${bad.reason} (Litestream cannot use such a key either); point key-path at an unencrypted OpenSSH or PEM private key`,
      );
    }
    return text;
  }

  private async readKnownHosts(): Promise<string> {
    const parts: string[] = [];
    for (const file of this.target.knownHosts) {
      try {
        parts.push(await Deno.readTextFile(file));
      } catch {
        // A missing or unreadable known_hosts file holds no keys.
      }
    }
    return parts.join("\n");
  }

  private hostKeyMessage(
    why: "unknown" | "mismatch" | "revoked",
    type: string,
    base64: string,
  ): string {
    const t = this.target;
    const presented = `${type} ${fingerprintOf(base64)}`;
    const keyscan = `ssh-keyscan${t.port === 22 ? "" : ` -p ${t.port}`} ${t.host}`;
    if (why === "unknown") {
      return `host key of ${this.hostPort} is not known (the server presented ${presented}; no host-key is set for replica ${t.name} and the host is in none of ${
        t.knownHosts.join(", ")
      }); check the key, then set host-key: "${type} AAAA…" on the replica (\`${keyscan}\` prints it) or add it to known_hosts — or set LITEWARDEN_SFTP_INSECURE_HOST_KEY=1 to skip the check, as Litestream v0.3.13 does`;
    }
    if (why === "revoked") {
      return `host key of ${this.hostPort} (${presented}) is marked @revoked in known_hosts; refusing to connect`;
    }
    return `host key of ${this.hostPort} does not match the expected one (the server presented ${presented}): the server's key changed or someone is intercepting the connection; check it, then update host-key or known_hosts`;
  }

  private connectError(err: SshError, attempts: number): StorageError {
    const t = this.target;
    const failure: StorageFailure = { op: "open", code: err.kind, attempts };
    const after = attempts > 1 ? ` after ${attempts} attempts` : "";
    if (err.kind === "hostkey") return new StorageError(err.reason, failure);
    if (err.kind === "auth") {
      const check = t.keyPath !== undefined
        ? "key-path (is its public key in the server's authorized_keys?)"
        : "password";
      return new StorageError(
        `SFTP login as ${t.user} at ${this.hostPort} failed: authentication refused; check user and ${check}`,
        failure,
      );
    }
    return new StorageError(
      `cannot reach SFTP server ${this.hostPort}: ${err.reason}${after}`,
      failure,
    );
  }

  /**
   * Runs one operation on the session with retries: a dropped connection is reopened and the
   * operation tried again (backoff, bounded attempts). SFTP status errors become `StorageError`s,
   * except NO_SUCH_FILE, which is `SftpMissing` for the caller to decide.
   */
  private async request<T>(ctx: RequestContext, op: (s: SftpSession) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const s = await this.connect();
      try {
        return await this.answered(s, op(s));
      } catch (err) {
        if (err instanceof SshError && err.kind === "network" && attempt < this.opts.maxAttempts) {
          this.forget(s);
          await this.backoff(attempt);
          continue;
        }
        if (err instanceof SshError && err.kind === "missing") throw new SftpMissing();
        throw this.mapped(err, ctx, attempt);
      }
    }
  }

  /** An SshError from a request as a StorageError; anything else as it is. */
  private mapped(err: unknown, ctx: RequestContext, attempts = 1): unknown {
    if (!(err instanceof SshError)) return err;
    const failure: StorageFailure = { op: ctx.op, key: ctx.key, code: err.kind, attempts };
    const after = attempts > 1 ? ` after ${attempts} attempts` : "";
    if (err.kind === "network") {
      return new StorageError(
        `SFTP server ${this.hostPort} dropped the connection (${ctx.what} in ${this.location}): ${err.reason}${after}`,
        failure,
      );
    }
    if (err.kind === "permission") {
      const may = ctx.op === "delete" ? "delete files" : ctx.op === "put" ? "write" : "read";
      return new StorageError(
        `permission denied: cannot ${ctx.what} in ${this.location}; check that ${this.target.user} may ${may} there`,
        failure,
      );
    }
    return new StorageError(
      `SFTP request failed (${ctx.what} in ${this.location}): ${err.reason}`,
      failure,
    );
  }

  /** `p`, or a network error (and the session dropped) when it takes too long. */
  private answered<T>(s: SftpSession, p: Promise<T>): Promise<T> {
    const ms = this.opts.requestTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.forget(s);
        reject(new SshError("network", `no answer within ${ms / 1000} s`));
      }, ms);
    });
    return Promise.race([p, stalled]).finally(() => clearTimeout(timer));
  }

  private backoff(attempt: number): Promise<void> {
    const cap = Math.min(
      this.opts.retryMaxDelayMs,
      this.opts.retryBaseDelayMs * 2 ** (attempt - 1),
    );
    return new Promise((r) => setTimeout(r, Math.random() * cap));
  }
}

/** Creates `path` and its missing parents; an existing directory is fine. */
async function mkdirp(s: SftpSession, path: string): Promise<void> {
  try {
    await s.mkdir(path);
  } catch (err) {
    // OpenSSH reports an existing path as a plain FAILURE and a missing parent as NO_SUCH_FILE.
    const st = await s.stat(path).catch(() => undefined);
    if (st?.isDirectory) return;
    const slash = path.lastIndexOf("/");
    if (!(err instanceof SshError) || err.kind !== "missing" || slash <= 0) throw err;
    await mkdirp(s, path.slice(0, slash));
    await s.mkdir(path);
  }
}

interface RequestContext {
  op: StorageFailure["op"];
  key?: string;
  /** What was being done, for messages: `read KEY`, `delete KEY`, … */
  what: string;
}

/** An open remote file; `closed` once its handle was closed. */
interface OpenFile {
  session: SftpSession;
  handle: SftpHandle;
  size: number;
  closed: boolean;
}

/** Closes the handle once, without waiting: a stalled connection would never answer. */
function closeQuietly(open: OpenFile): void {
  if (open.closed) return;
  open.closed = true;
  if (!open.session.closed) open.session.close(open.handle).catch(() => {});
}

/** NO_SUCH_FILE from a request; callers turn it into "empty", "ignore" or "damaged". */
class SftpMissing extends Error {}
