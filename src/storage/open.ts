import type { ReplicaTarget } from "../config/target.ts";
import { FileStorage } from "./file.ts";
import { S3Storage } from "./s3.ts";
import type { Storage } from "./storage.ts";

/**
 * The storage backend for a replica target. S3 is imported statically: a dynamic import of a
 * local module may not survive `deno bundle`.
 */
export function openStorage(target: ReplicaTarget): Promise<Storage> {
  if (target.type === "file") return Promise.resolve(new FileStorage(target.path));
  return Promise.resolve(new S3Storage(target));
}
