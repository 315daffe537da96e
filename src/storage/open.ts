import { AsyncLocalStorage } from "node:async_hooks";
import type { ReplicaTarget } from "../config/target.ts";
import { openKeyring, withAgeDecryption } from "./decrypting.ts";
import { FileStorage } from "./file.ts";
import type { Storage } from "./storage.ts";

/**
 * The storage for a replica target: its backend behind the age decryption layer (which passes
 * plaintext objects through). The S3 backend (and the AWS SDK behind it) is imported only when
 * an S3 target is opened: loading the SDK costs ~100 ms of start-up that file replicas, `--help`
 * and `verify --file` should not pay. `deno bundle` inlines the import. The SFTP backend (and
 * ssh2) is loaded the same way.
 */
export async function openStorage(target: ReplicaTarget): Promise<Storage> {
  const keyring = await openKeyring(target.age);
  const storage = withAgeDecryption(await openBackend(target), keyring);
  storageScope.getStore()?.add(storage);
  return storage;
}

async function openBackend(target: ReplicaTarget): Promise<Storage> {
  if (target.type === "file") return new FileStorage(target.path);
  if (target.type === "sftp") {
    const { SftpStorage } = await import("./sftp.ts");
    return new SftpStorage(target);
  }
  if (target.type === "abs") {
    const { AbsStorage } = await import("./abs.ts");
    return new AbsStorage(target);
  }
  const { S3Storage } = await import("./s3.ts");
  return new S3Storage(target);
}

const storageScope = new AsyncLocalStorage<Set<Storage>>();

/**
 * Runs `fn` and then closes every storage opened inside it. An SFTP storage holds an SSH
 * connection open, which would keep an in-process caller (tests, a long `mark --wait`) from
 * finishing cleanly; commands open storages at several places, so they are closed here, once.
 */
export async function withStorageScope<T>(fn: () => Promise<T>): Promise<T> {
  const opened = new Set<Storage>();
  try {
    return await storageScope.run(opened, fn);
  } finally {
    await Promise.allSettled([...opened].map((s) => s.close?.()));
  }
}
