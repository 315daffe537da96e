import type { ReplicaTarget } from "../config/target.ts";
import { FileStorage } from "./file.ts";
import type { Storage } from "./storage.ts";

/**
 * The storage backend for a replica target. The S3 backend (and the AWS SDK behind it) is
 * imported only when an S3 target is opened: loading the SDK costs ~100 ms of start-up that
 * file replicas, `--help` and `verify --file` should not pay. `deno bundle` inlines the import.
 */
export async function openStorage(target: ReplicaTarget): Promise<Storage> {
  if (target.type === "file") return new FileStorage(target.path);
  const { S3Storage } = await import("./s3.ts");
  return new S3Storage(target);
}
