import {
  DamagedError,
  LitewardenError,
  PermissionError,
  StorageError,
  type StorageFailure,
  UsageError,
} from "../errors.ts";
import {
  installIfAbsent,
  installReplacing,
  parentDir,
  syncDir,
  tempPathFor,
  writeFileAtomic,
} from "../lib/atomic_write.ts";
import { removeStaleTemps } from "../lib/stale_temps.ts";
import type { ByteRange, ObjectInfo, PutSource, PutStreamOptions, Storage } from "./storage.ts";
import { vanishedObjectMessage } from "./storage.ts";

/** A replica in a local directory (Litestream's `file` replica type). */
export class FileStorage implements Storage {
  readonly location: string;
  constructor(private readonly root: string) {
    this.location = `file://${root}`;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory part of the prefix; the rest filters names.
    const slash = prefix.lastIndexOf("/");
    const dir = slash >= 0 ? prefix.slice(0, slash) : "";
    const keys: ObjectInfo[] = [];
    await this.walk(dir, keys);
    keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const info of keys) if (info.key.startsWith(prefix)) yield info;
  }

  private async walk(dir: string, out: ObjectInfo[]): Promise<void> {
    const abs = dir ? `${this.root}/${dir}` : this.root;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(abs));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        if (!dir) await this.checkRoot();
        return;
      }
      throw this.wrap(err, abs, "list");
    }
    for (const e of entries) {
      const key = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory) {
        await this.walk(key, out);
      } else if (e.isFile) {
        const st = await Deno.stat(`${this.root}/${key}`).catch(() => undefined);
        if (st?.isFile) out.push({ key, size: st.size, modified: st.mtime ?? new Date(0) });
      }
    }
  }

  /** A missing root is an empty replica (exit 3 later), but a root that is a file is a mistake. */
  private async checkRoot(): Promise<void> {
    const st = await Deno.stat(this.root).catch(() => undefined);
    if (st && !st.isDirectory) {
      throw new UsageError(
        `replica path ${this.root} is a file, not a directory; point the replica at the directory Litestream writes into`,
      );
    }
  }

  async get(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const abs = `${this.root}/${key}`;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(abs, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new DamagedError(
          vanishedObjectMessage(key, this.location),
          key,
        );
      }
      throw this.wrap(err, abs, "get");
    }
    if (range) await file.seek(range.offset, Deno.SeekMode.Start);
    // 256 KiB reads: `file.readable` reads 64 KiB at a time, and every read is an async round
    // trip that a restore otherwise waits on.
    let left = range?.length ?? Number.POSITIVE_INFINITY;
    return new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (left <= 0) {
          file.close();
          ctrl.close();
          return;
        }
        const buf = new Uint8Array(Math.min(left, 256 << 10));
        const n = await file.read(buf);
        if (n === null) {
          file.close();
          ctrl.close();
          return;
        }
        left -= n;
        ctrl.enqueue(n === buf.length ? buf : buf.subarray(0, n));
      },
      cancel() {
        file.close();
      },
    });
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const abs = `${this.root}/${key}`;
    const dir = abs.slice(0, abs.lastIndexOf("/"));
    try {
      await Deno.mkdir(dir, { recursive: true });
      await writeFileAtomic(abs, data);
    } catch (err) {
      throw this.wrap(err, abs, "put");
    }
  }

  /** Temp file beside the target, fsync, then link (ifAbsent: never replaces) or rename. */
  async putStream(key: string, src: PutSource, opts: PutStreamOptions = {}): Promise<boolean> {
    const abs = `${this.root}/${key}`;
    const dir = parentDir(abs);
    let tmp: string | undefined;
    try {
      await Deno.mkdir(dir, { recursive: true });
      if (opts.ifAbsent && await Deno.lstat(abs).then(() => true, () => false)) return false;
      removeStaleTemps(dir);
      tmp = tempPathFor(abs);
      const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      let written = 0;
      try {
        for await (const chunk of await src.open()) {
          written += chunk.length;
          if (written > src.size) break;
          let at = 0;
          while (at < chunk.length) at += await f.write(chunk.subarray(at));
        }
        await f.sync();
      } finally {
        f.close();
      }
      if (written !== src.size) {
        throw new StorageError(
          `the source of ${key} gave ${
            written > src.size ? "more" : "fewer"
          } bytes than its ${src.size}; nothing was stored`,
          { op: "put", key },
        );
      }
      if (opts.ifAbsent) {
        const installed = await installIfAbsent(tmp, abs);
        if (installed) tmp = undefined;
        return installed;
      }
      await installReplacing(tmp, abs);
      tmp = undefined;
      await syncDir(dir);
      return true;
    } catch (err) {
      throw this.wrap(err, abs, "put");
    } finally {
      if (tmp !== undefined) await Deno.remove(tmp).catch(() => {});
    }
  }

  async delete(keys: string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      try {
        await Deno.remove(`${this.root}/${key}`);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        throw this.wrap(err, `${this.root}/${key}`, "delete");
      }
      const slash = key.lastIndexOf("/");
      if (slash > 0) dirs.add(key.slice(0, slash));
    }
    // Remove directories left empty (e.g. a whole generation), deepest first, never the root.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
      let d = dir;
      while (d) {
        try {
          await Deno.remove(`${this.root}/${d}`); // fails unless empty: that is the point
        } catch {
          break;
        }
        const slash = d.lastIndexOf("/");
        d = slash > 0 ? d.slice(0, slash) : "";
      }
    }
  }

  /** Local errors of the replica directory are storage errors (exit 4), as for any backend. */
  private wrap(err: unknown, path: string, op: StorageFailure["op"]): LitewardenError {
    const denied = err instanceof PermissionError || err instanceof Deno.errors.PermissionDenied;
    if (denied) {
      return new StorageError(
        `permission denied on ${path}; run as a user that can access the replica directory`,
        { op, key: path, code: "EACCES" },
        { cause: err },
      );
    }
    if (err instanceof LitewardenError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new StorageError(`cannot access ${path}: ${msg}`, { op, key: path }, { cause: err });
  }
}
