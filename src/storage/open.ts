import type { ReplicaTarget } from "../config/target.ts";
import { FileStorage } from "./file.ts";
import type { Storage } from "./storage.ts";

/** The storage backend for a replica target. S3 is loaded lazily so file-only runs stay light. */
export async function openStorage(target: ReplicaTarget): Promise<Storage> {
  if (target.type === "file") return new FileStorage(target.path);
  const { S3Storage } = await import("./s3.ts");
  return new S3Storage(target);
}
