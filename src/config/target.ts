/** A replica location, resolved from litestream.yml or a replica URL. */
export type ReplicaTarget =
  | FileReplicaTarget
  | S3ReplicaTarget
  | SftpReplicaTarget
  | AbsReplicaTarget;

interface ReplicaTargetBase {
  /** Replica name as Litestream shows it: the configured `name`, else the type. */
  name: string;
  /** The database path this replica belongs to (config form); restore's default output. */
  dbPath?: string;
  /** v0.3 age encryption (`age:` in the config, `--age-identity`); absent = none configured. */
  age?: AgeSettings;
}

/**
 * A replica's age keys, as configured (LITESTREAM-FORMATS §2.9). Each entry is identity-file or
 * recipients-file text (Litestream parses every entry that way). Identities are never printed.
 */
export interface AgeSettings {
  /** Identity texts (`AGE-SECRET-KEY-1…` lines), each with where it came from (for messages). */
  identities: { text: string; source: string }[];
  /** Recipient texts (`age1…` lines) Litestream encrypts for. */
  recipients: { text: string; source: string }[];
  /** Keys under `age:` that Litestream ignores, e.g. a misspelt `recipient:` (Litestream #603). */
  unknownKeys: string[];
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
  /**
   * The prefix exactly as configured, when it differs from `path` (e.g. `path: /backups/db/`).
   * Litestream builds keys from the raw value: v0.3 `path.Join(raw, "generations")` keeps a
   * leading `/`; v0.5 S3 `raw + "/" + "0000/…"` keeps both. Key builders that must find such
   * replicas use this; `path` stays the normalized form for display.
   */
  rawPath?: string;
  /**
   * True when no region was configured or implied and `region` is the us-east-1 default.
   * Litestream asks S3 (GetBucketLocation) in that case; the storage layer may follow redirects.
   */
  regionGuessed?: boolean;
}

/** An SFTP replica (`type: sftp`, `sftp://USER[:PASSWORD]@HOST[:PORT]/PATH`). */
export interface SftpReplicaTarget extends ReplicaTargetBase {
  type: "sftp";
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  port: number;
  user: string;
  /**
   * The replica directory as Litestream joins keys onto it: cleaned, "" for the login directory;
   * a relative path is relative to the login directory (the server resolves it).
   */
  path: string;
  /** Never printed. */
  password?: string;
  /** Private key file (OpenSSH or PEM format). */
  keyPath?: string;
  /**
   * Pinned host key: an authorized_keys-style line (`ssh-ed25519 AAAA…`) or a `SHA256:…`
   * fingerprint. When unset the host must be in one of `knownHosts`.
   */
  hostKey?: string;
  /** known_hosts files searched when no `hostKey` is pinned (missing files are skipped). */
  knownHosts: string[];
  /** Accept any host key, as Litestream v0.3.13 does (`LITEWARDEN_SFTP_INSECURE_HOST_KEY`). */
  insecureHostKey: boolean;
}

/** `host:port` for messages and known_hosts: IPv6 in brackets. */
export function sftpHostPort(t: Pick<SftpReplicaTarget, "host" | "port">): string {
  return `${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`;
}

/**
 * An SFTP target's location: `sftp://HOST:PORT/PATH` (`/~/PATH` for a relative path). Without the
 * user: output redacts the userinfo of every URL, and messages name the user where it matters.
 */
export function sftpLocation(t: SftpReplicaTarget): string {
  const path = t.path.startsWith("/") ? t.path : t.path ? `/~/${t.path}` : "/~";
  return `sftp://${sftpHostPort(t)}${path}`;
}

/** Azure Blob Storage (Litestream's `type: abs`). */
export interface AbsReplicaTarget extends ReplicaTargetBase {
  type: "abs";
  /** Storage account name (`account-name`, or the user part of `abs://ACCOUNT@CONTAINER/PATH`). */
  accountName: string;
  /** Container (Litestream's `bucket`). */
  container: string;
  /** Blob name prefix inside the container, without leading or trailing `/` ("" for the root). */
  path: string;
  /**
   * Service URL the container is appended to, e.g. `http://127.0.0.1:10000/devstoreaccount1` for
   * an emulator; undefined = `https://ACCOUNT.blob.core.windows.net`.
   */
  endpoint?: string;
  /** Base64 shared key (`account-key` or `$LITESTREAM_AZURE_ACCOUNT_KEY`). Never printed. */
  accountKey: string;
}

/**
 * A configured replica litewarden cannot open: a backend it does not support (gcs, abs, …) or
 * settings Litestream itself would reject (url + path, no bucket, …). Kept apart from
 * `ReplicaTarget` so a config still works for the replicas and databases that are usable; the
 * message is reported only when this replica is the one asked for.
 */
export interface UnusableReplica {
  kind: "unsupported" | "invalid";
  /** The configured `name`, else the type. */
  name: string;
  /** The replica type as configured or implied by its URL (`gcs`, `abs`, `s3`, …). */
  type: string;
  dbPath?: string;
  /** One line, ready for `litewarden: <message>` (exit 2); never contains credentials. */
  message: string;
}

/** The replica's location for messages and JSON: never contains credentials. */
export function describeTarget(t: ReplicaTarget): string {
  if (t.type === "file") return `file://${t.path}`;
  if (t.type === "sftp") return sftpLocation(t);
  if (t.type === "abs") {
    const where = `abs://${t.accountName}@${t.container}${t.path ? `/${t.path}` : ""}`;
    return t.endpoint ? `${where} (endpoint ${t.endpoint})` : where;
  }
  const where = t.path ? `s3://${t.bucket}/${t.path}` : `s3://${t.bucket}`;
  return t.endpoint ? `${where} (endpoint ${t.endpoint})` : where;
}
