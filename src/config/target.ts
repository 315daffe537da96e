/** A replica location, resolved from litestream.yml or a replica URL. */
export type ReplicaTarget = FileReplicaTarget | S3ReplicaTarget;

interface ReplicaTargetBase {
  /** Replica name as Litestream shows it: the configured `name`, else the type. */
  name: string;
  /** The database path this replica belongs to (config form); restore's default output. */
  dbPath?: string;
}

export interface FileReplicaTarget extends ReplicaTargetBase {
  type: "file";
  /** Absolute directory of the replica. */
  path: string;
}

export interface S3ReplicaTarget extends ReplicaTargetBase {
  type: "s3";
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/` ("" for the bucket root). */
  path: string;
  /** Full endpoint URL with scheme (`https://…`), or undefined for AWS. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  skipVerify: boolean;
  /** Undefined = the AWS SDK's default chain. Never printed. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** The replica's location for messages and JSON: never contains credentials. */
export function describeTarget(t: ReplicaTarget): string {
  if (t.type === "file") return `file://${t.path}`;
  const where = t.path ? `s3://${t.bucket}/${t.path}` : `s3://${t.bucket}`;
  return t.endpoint ? `${where} (endpoint ${t.endpoint})` : where;
}
