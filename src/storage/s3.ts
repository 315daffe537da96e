/**
 * The S3 backend (AWS S3 and compatibles: Cloudflare R2, Backblaze B2, MinIO, …) on
 * `@aws-sdk/client-s3` with the Node HTTP handler.
 *
 * Compatibility choices:
 * - `requestChecksumCalculation`/`responseChecksumValidation` = WHEN_REQUIRED: newer SDKs send
 *   CRC32 checksums (and aws-chunked trailers) that B2, R2 and older MinIO reject.
 * - DeleteObjects carries `Content-MD5` instead of the SDK's CRC32 headers (the integrity header
 *   every provider understands); if a provider still rejects batch deletes, we fall back to one
 *   DeleteObject per key for the rest of this storage's life.
 * - Retries are ours (the SDK's are off): exponential backoff with full jitter on 5xx, throttling,
 *   timeouts and dropped connections, a bounded number of attempts.
 *
 * A GET returns once the response headers arrive; if the body drops mid-way (an error, or fewer
 * bytes than Content-Length) the rest is re-requested with a ranged GET from where it stopped,
 * with the same backoff and attempt limit.
 *
 * Error messages are built from the error code, HTTP status, bucket and endpoint only: the SDK's
 * own messages and error objects are never passed on (they can echo request details), and every
 * message is additionally scrubbed of the configured credentials.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  type DeleteObjectsCommandOutput,
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import type { S3ReplicaTarget } from "../config/target.ts";
import {
  DamagedError,
  type LitewardenError,
  MissingObjectError,
  StorageError,
  type StorageFailure,
} from "../errors.ts";
import { emptyStream, READ_IDLE_TIMEOUT_MS, resumableDownload } from "./resumable.ts";
import { PagingGuard } from "./paging.ts";
import type { ByteRange, ObjectInfo, PutSource, PutStreamOptions, Storage } from "./storage.ts";
import { exactSize, vanishedObjectMessage } from "./storage.ts";

/** Tuning knobs; the defaults suit real use, tests shrink them to stay fast. */
export interface S3StorageOptions {
  /** Attempts per request, including the first (default 5). */
  maxAttempts?: number;
  /** Backoff base: attempt n waits a random time in [0, min(max, base·2^(n-1))) (default 200 ms). */
  retryBaseDelayMs?: number;
  /** Backoff cap (default 10 s). */
  retryMaxDelayMs?: number;
  /** TCP/TLS connect timeout (default 10 s). */
  connectionTimeoutMs?: number;
  /** Time from sending a request to its response headers (default 60 s). */
  requestTimeoutMs?: number;
  /** A socket idle this long (also while streaming a body) is dropped (default 120 s). */
  socketTimeoutMs?: number;
  /**
   * A GET body that sends nothing for this long is dropped and resumed from where it stopped
   * (default 20 s; restarts with every chunk, so a slow but moving download is fine).
   */
  readIdleTimeoutMs?: number;
  /** ListObjectsV2 page size, 1…1000 (default 1000). */
  pageSize?: number;
  /** Keys per DeleteObjects call, 1…1000 (default 1000). */
  deleteBatchSize?: number;
}

const DEFAULTS: Required<S3StorageOptions> = {
  maxAttempts: 5,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 10_000,
  connectionTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  socketTimeoutMs: 120_000,
  readIdleTimeoutMs: READ_IDLE_TIMEOUT_MS,
  pageSize: 1000,
  deleteBatchSize: 1000,
};

/** Parallel single DeleteObject calls when a provider rejects batch deletes. */
const SINGLE_DELETE_CONCURRENCY = 8;

/** Region to sign with: the configured one, or "auto" for R2 and "us-east-1" otherwise. */
export function resolveRegion(target: Pick<S3ReplicaTarget, "region" | "endpoint">): string {
  const r2 = isR2Endpoint(target.endpoint);
  if (!target.region) return r2 ? "auto" : "us-east-1";
  // R2 accepts only "auto" (and "us-east-1" as an alias); a config default of us-east-1 means auto.
  if (r2 && target.region === "us-east-1") return "auto";
  return target.region;
}

function isR2Endpoint(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    return new URL(endpoint).hostname.toLowerCase().endsWith(".r2.cloudflarestorage.com");
  } catch {
    return false;
  }
}

/** The endpoint as shown in messages: no userinfo, no trailing slash. */
function displayEndpoint(target: S3ReplicaTarget, region: string): string {
  if (!target.endpoint) return `AWS S3 (region ${region})`;
  try {
    const u = new URL(target.endpoint);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return target.endpoint.replace(/^([a-z]+:\/\/)[^@/]*@/i, "$1");
  }
}

export class S3Storage implements Storage {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  /** Key prefix of the replica root inside the bucket: "" or "path/". */
  private readonly root: string;
  private readonly endpoint: string;
  private readonly opts: Required<S3StorageOptions>;
  private readonly secrets: string[];
  /** Set once a provider rejected DeleteObjects: use DeleteObject per key from then on. */
  private singleDeletes = false;
  /**
   * Litestream v0.5 joins `root + "/" + key`, so with an empty root its keys start with "/"
   * (LITESTREAM-FORMATS §3.1, §7.1). With an empty `path` such objects are listed without the
   * slash; this remembers which relative keys really live under "/".
   */
  private readonly slashKeys = new Set<string>();
  private slashRoot?: Promise<boolean>;

  constructor(target: S3ReplicaTarget, options: S3StorageOptions = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.opts.pageSize = clamp(this.opts.pageSize, 1, 1000);
    this.opts.deleteBatchSize = clamp(this.opts.deleteBatchSize, 1, 1000);
    this.opts.maxAttempts = Math.max(1, Math.floor(this.opts.maxAttempts));
    this.bucket = target.bucket;
    this.root = target.path ? `${target.path.replace(/\/+$/, "")}/` : "";
    this.location = target.path ? `s3://${target.bucket}/${target.path}` : `s3://${target.bucket}`;
    const region = resolveRegion(target);
    this.endpoint = displayEndpoint(target, region);
    const creds = target.credentials;
    // Scrubbed from every message as a last line of defence (messages never include them anyway).
    // Access key IDs are not secret and short ones (MinIO's "minioadmin") could mangle bucket
    // names, so only long ones are scrubbed; secrets and tokens always are.
    this.secrets = creds
      ? [
        creds.secretAccessKey,
        creds.sessionToken ?? "",
        creds.accessKeyId.length >= 16 ? creds.accessKeyId : "",
      ].filter((s) => s.length >= 4)
      : [];

    const config: S3ClientConfig = {
      region,
      forcePathStyle: target.forcePathStyle,
      // Our own retry loop (see request()); the SDK would otherwise multiply attempts.
      maxAttempts: 1,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // On AWS, follow a wrong-region redirect instead of failing; custom endpoints don't redirect.
      followRegionRedirects: !target.endpoint,
      // The SDK's warnings (e.g. a failed streaming PUT) would go to the console otherwise.
      logger: SILENT_LOGGER,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: this.opts.connectionTimeoutMs,
        requestTimeout: this.opts.requestTimeoutMs,
        // Without this the handler only logs a warning (to the console) on request timeouts.
        throwOnRequestTimeout: true,
        socketTimeout: this.opts.socketTimeoutMs,
        httpAgent: { keepAlive: true, maxSockets: 32 },
        httpsAgent: { keepAlive: true, maxSockets: 32, rejectUnauthorized: !target.skipVerify },
        // The handler's socket-capacity warnings would go to the console otherwise.
        logger: SILENT_LOGGER,
      }),
    };
    if (target.endpoint) config.endpoint = target.endpoint;
    if (creds) {
      config.credentials = {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
      };
    }
    this.client = new S3Client(config);
  }

  /** Closes pooled connections. Idle keep-alive sockets would otherwise linger (tests, long runs). */
  close(): void {
    this.client.destroy();
  }

  // ---- list ----

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (this.root !== "") {
      yield* this.listRaw(this.root + prefix, this.root.length);
      return;
    }
    if (prefix.startsWith("/")) {
      yield* this.listRaw(prefix, 0);
      return;
    }
    // Empty root: plain keys, plus v0.5's "/"-prefixed keys if the bucket has any.
    const plain = filterSlash(this.listRaw(prefix, 0));
    if (!(await this.hasSlashRoot())) {
      yield* plain;
      return;
    }
    const slashed = this.listRaw(`/${prefix}`, 1);
    for await (const [info, fromSlash] of mergeSorted(plain, slashed)) {
      if (fromSlash) this.slashKeys.add(info.key);
      yield info;
    }
  }

  /** Pages through ListObjectsV2 for `fullPrefix`, stripping `strip` characters from each key. */
  private async *listRaw(fullPrefix: string, strip: number): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    let startAfter: string | undefined;
    const guard = new PagingGuard();
    for (;;) {
      const page: ListObjectsV2CommandOutput = await this.request(
        (c) =>
          c.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: fullPrefix,
              MaxKeys: this.opts.pageSize,
              ContinuationToken: token,
              StartAfter: token ? undefined : startAfter,
            }),
          ),
        { op: "list" },
      );
      let last: string | undefined;
      const contents = page.Contents ?? [];
      for (const obj of contents) {
        if (obj.Key === undefined) continue;
        last = obj.Key;
        if (!obj.Key.startsWith(fullPrefix)) continue;
        yield {
          key: obj.Key.slice(strip),
          size: obj.Size ?? 0,
          modified: obj.LastModified ?? new Date(0),
        };
      }
      if (!page.IsTruncated) return;
      const looping = guard.check({
        keys: contents.length,
        nextToken: page.NextContinuationToken || undefined,
        startAfter: last,
      });
      if (looping) {
        throw this.mapped(
          `S3 listing of ${this.location} at ${this.endpoint} is looping: the server sent ${looping}; stopped listing (check the S3 service or its proxy)`,
          { op: "list" },
        );
      }
      if (page.NextContinuationToken) {
        token = page.NextContinuationToken;
      } else if (last !== undefined) {
        // Some S3 clones page without a continuation token: carry on after the last key.
        token = undefined;
        startAfter = last;
      } else {
        throw this.mapped(
          `S3 listing of ${this.location} at ${this.endpoint} is truncated but gives no way to continue; the server is not S3-compatible enough`,
          { op: "list" },
        );
      }
    }
  }

  /** Whether any key starts with "/" (checked once per storage, only for an empty root). */
  private hasSlashRoot(): Promise<boolean> {
    this.slashRoot ??= this.request(
      (c) => c.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: "/", MaxKeys: 1 })),
      { op: "list" },
    ).then((page) => (page.Contents?.length ?? 0) > 0);
    return this.slashRoot;
  }

  /** The bucket key for a key relative to the root. */
  private fullKey(key: string): string {
    return this.slashKeys.has(key) ? `/${key}` : this.root + key;
  }

  // ---- get ----

  async get(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (range?.length === 0) return emptyStream();
    const first = await this.getOnce(key, range);
    return resumableDownload(key, range, first, (rest) => this.getOnce(key, rest), {
      ...this.opts,
      location: this.location,
    });
  }

  /** One GET (with request retries); the body stream as the SDK gives it. */
  private async getOnce(
    key: string,
    range?: ByteRange,
  ): Promise<{ body: ReadableStream<Uint8Array>; length: number | undefined }> {
    let header: string | undefined;
    if (range && (range.offset > 0 || range.length !== undefined)) {
      header = range.length === undefined
        ? `bytes=${range.offset}-`
        : `bytes=${range.offset}-${range.offset + range.length - 1}`;
    }
    const fetchOne = (full: string) =>
      this.request(
        (c) => c.send(new GetObjectCommand({ Bucket: this.bucket, Key: full, Range: header })),
        { op: "get", key, range: header },
      );
    let res: GetObjectCommandOutput;
    try {
      res = await fetchOne(this.fullKey(key));
    } catch (err) {
      // Not listed first? With an empty root the object may be v0.5's "/"-prefixed twin.
      if (
        !isMissingKey(err) || this.root !== "" || this.slashKeys.has(key) ||
        !(await this.hasSlashRoot())
      ) throw err;
      res = await fetchOne(`/${key}`);
      this.slashKeys.add(key);
    }
    if (!res.Body) return { body: emptyStream(), length: 0 };
    // Under Deno the body is a Node IncomingMessage with the SDK's stream mixin.
    const body = res.Body.transformToWebStream() as ReadableStream<Uint8Array>;
    return { body, length: res.ContentLength };
  }

  // ---- put ----

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.request(
      (c) =>
        c.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.fullKey(key),
            Body: data,
            ContentLength: data.length,
          }),
        ),
      { op: "put", key },
    );
  }

  /**
   * One streamed PutObject with its Content-Length (S3 stores a PUT whole or not at all; the SDK
   * sends a stream body unsigned, so nothing is buffered), reopened per retry. `ifAbsent`: a
   * look, then a conditional PUT (If-None-Match: *); a 412 means an object is there. Objects over 5 GiB
   * (S3's single-PUT limit) are refused: Vaultwarden's uploads are far smaller.
   */
  async putStream(key: string, src: PutSource, opts: PutStreamOptions = {}): Promise<boolean> {
    if (src.size > MAX_SINGLE_PUT) {
      throw new StorageError(
        `${key} is ${src.size} bytes, over S3's 5 GiB single-upload limit; such a file cannot be kept in ${this.location}`,
        { op: "put", key },
      );
    }
    // A look first as well: not every S3-compatible server honours If-None-Match on PUT.
    if (opts.ifAbsent && await this.exists(key)) return false;
    let wrongSize: Error | undefined;
    try {
      await this.request(
        async (c) => {
          const body = exactSize(await src.open(), src.size, (got) => {
            wrongSize = new StorageError(
              `the source of ${key} gave ${got} bytes instead of ${src.size}; nothing was stored`,
              { op: "put", key },
            );
            return wrongSize;
          });
          // A Node stream: the HTTP handler pipes it (a web stream would be buffered). A pipe
          // does not pass a source error on, so a failing source aborts the request itself.
          const node = Readable.fromWeb(body as NodeReadableStream<Uint8Array>);
          const abort = new AbortController();
          node.on("error", () => abort.abort());
          try {
            return await c.send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key: this.fullKey(key),
                Body: node,
                ContentLength: src.size,
                ...(opts.ifAbsent ? { IfNoneMatch: "*" } : {}),
              }),
              { abortSignal: abort.signal },
            );
          } catch (err) {
            node.destroy();
            throw wrongSize ?? err; // a wrong size is not retried
          }
        },
        { op: "put", key },
      );
      return true;
    } catch (err) {
      if (wrongSize) throw wrongSize;
      if (opts.ifAbsent && err instanceof StorageError && err.status === 412) return false;
      throw err;
    }
  }

  private async exists(key: string): Promise<boolean> {
    for await (const obj of this.list(key)) if (obj.key === key) return true;
    return false;
  }

  // ---- delete ----

  async delete(keys: string[]): Promise<void> {
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += this.opts.deleteBatchSize) {
      const batch = unique.slice(i, i + this.opts.deleteBatchSize);
      if (!this.singleDeletes && await this.deleteBatch(batch)) continue;
      await this.deleteEach(batch);
    }
    for (const k of unique) this.slashKeys.delete(k);
  }

  /** One DeleteObjects call; false if the provider does not support it (fall back). */
  private async deleteBatch(keys: string[]): Promise<boolean> {
    const byFull = new Map(keys.map((k) => [this.fullKey(k), k]));
    const cmd = new DeleteObjectsCommand({
      Bucket: this.bucket,
      Delete: { Objects: [...byFull.keys()].map((Key) => ({ Key })), Quiet: true },
    });
    useContentMd5(cmd);
    let res: DeleteObjectsCommandOutput;
    try {
      res = await this.request((c) => c.send(cmd), {
        op: "delete",
        key: keys[0],
        batch: true,
        count: keys.length,
      });
    } catch (err) {
      if (err instanceof BatchUnsupported) {
        this.singleDeletes = true;
        return false;
      }
      throw err;
    }
    const failures = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
    if (failures.length === 0) return true;
    const first = failures[0];
    const key = byFull.get(first.Key ?? "") ?? first.Key ?? "?";
    const code = first.Code ?? "UnknownError";
    if (code === "AccessDenied" || code === "AllAccessDisabled") {
      throw this.mapped(
        `permission denied: cannot delete ${key} from ${this.location} (${failures.length} of ${keys.length} keys refused); check that the key has s3:DeleteObject`,
        { op: "delete", key, code },
      );
    }
    throw this.mapped(
      `cannot delete ${failures.length} of ${keys.length} objects from ${this.location} at ${this.endpoint}: ${code} on ${key}`,
      { op: "delete", key, code },
    );
  }

  private async deleteEach(keys: string[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++];
        await this.request(
          (c) => c.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) })),
          { op: "delete", key },
        );
      }
    };
    const n = Math.min(SINGLE_DELETE_CONCURRENCY, keys.length);
    await Promise.all(Array.from({ length: n }, worker));
  }

  // ---- requests, retries, errors ----

  /**
   * Runs one S3 call with retries (exponential backoff, full jitter) and maps its final failure
   * to a `LitewardenError`. A missing key on delete resolves as undefined (deletes are idempotent).
   */
  private async request<T>(call: (c: S3Client) => Promise<T>, ctx: RequestContext): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await call(this.client);
      } catch (err) {
        const f = classifyS3Error(err);
        if (ctx.op === "delete" && !ctx.batch && (f.code === "NoSuchKey" || f.status === 404)) {
          if (f.code !== "NoSuchBucket") return undefined as T;
        }
        if (ctx.batch && isBatchUnsupported(f)) throw new BatchUnsupported();
        if (!f.retryable || attempt >= this.opts.maxAttempts) throw this.toError(f, ctx, attempt);
        const cap = Math.min(
          this.opts.retryMaxDelayMs,
          this.opts.retryBaseDelayMs * 2 ** (attempt - 1),
        );
        await sleep(Math.random() * cap);
      }
    }
  }

  private toError(f: Failure, ctx: RequestContext, attempts: number): LitewardenError {
    const after = attempts > 1 ? ` after ${attempts} attempts` : "";
    const detail: StorageFailure = {
      op: ctx.op,
      key: ctx.key,
      code: f.code,
      status: f.status,
      attempts,
    };
    if (f.network) {
      return this.mapped(
        `cannot reach S3 endpoint ${this.endpoint}: ${f.reason}${after}`,
        detail,
      );
    }
    if (f.code === "CredentialsProviderError") {
      return this.mapped(
        `no S3 credentials for ${this.location}: set access-key-id and secret-access-key for the replica, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY)`,
        detail,
      );
    }
    if (f.code === "NoSuchBucket") {
      return this.mapped(
        `bucket ${this.bucket} does not exist at ${this.endpoint}; check \`bucket\`/the URL`,
        detail,
      );
    }
    if (ctx.op === "get" && (f.code === "NoSuchKey" || f.status === 404)) {
      return new MissingObjectError(
        this.scrub(
          vanishedObjectMessage(ctx.key, this.location),
        ),
        ctx.key ?? "",
      );
    }
    if (ctx.op === "get" && (f.code === "InvalidRange" || f.status === 416)) {
      return new DamagedError(
        this.scrub(
          `replica object ${ctx.key} in ${this.location} is shorter than expected (asked for ${
            ctx.range?.replace("bytes=", "bytes ")
          }); the object is truncated`,
        ),
        ctx.key,
      );
    }
    if (ctx.op === "delete" && f.code === "AccessDenied") {
      const what = ctx.count && ctx.count > 1 ? `${ctx.count} objects (first ${ctx.key})` : ctx.key;
      return this.mapped(
        `permission denied: cannot delete ${what} from ${this.location}; check that the key has s3:DeleteObject`,
        detail,
      );
    }
    if (ACCESS_CODES.has(f.code) || f.status === 403) {
      return this.mapped(
        `access denied to ${this.location}: check the access key, secret and region (${f.code})`,
        detail,
      );
    }
    if (
      f.code === "PermanentRedirect" || f.code === "AuthorizationHeaderMalformed" ||
      f.status === 301
    ) {
      return this.mapped(
        `bucket ${this.bucket} is in another region than the one configured; set \`region\` to the bucket's region (${f.code})`,
        detail,
      );
    }
    const what = f.status ? `${f.code} (HTTP ${f.status})` : f.code;
    if (f.retryable) {
      return this.mapped(
        `S3 endpoint ${this.endpoint} kept failing for ${this.location}: ${what}${after}`,
        detail,
      );
    }
    return this.mapped(
      `S3 request to ${this.location} at ${this.endpoint} failed: ${what}`,
      detail,
    );
  }

  /** A storage error whose message is scrubbed of credentials. */
  private mapped(message: string, failure: StorageFailure): StorageError {
    return new StorageError(this.scrub(message), failure);
  }

  private scrub(message: string): string {
    let msg = message;
    for (const s of this.secrets) msg = msg.split(s).join("***");
    return msg;
  }
}

interface RequestContext {
  op: "list" | "get" | "put" | "delete";
  key?: string;
  range?: string;
  batch?: boolean;
  /** Keys in a batch delete. */
  count?: number;
}

class BatchUnsupported extends Error {}

const MAX_SINGLE_PUT = 5 * 1024 ** 3;

/** A get failed because the key does not exist (not a range or access problem). */
function isMissingKey(err: unknown): boolean {
  return err instanceof MissingObjectError;
}

const SILENT_LOGGER = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
};

const ACCESS_CODES = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "InvalidToken",
  "ExpiredToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "AccountProblem",
  "InvalidSecurity",
  "Forbidden",
  "Unauthorized",
]);

const THROTTLE_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "ProvisionedThroughputExceededException",
  "BandwidthLimitExceeded",
]);

const TRANSIENT_CODES = new Set([
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeTooSkewed", // the SDK corrects its clock offset from the failed response
  "OperationAborted",
]);

/** Network error codes (Node's `err.code`) and what to tell the user. */
const NETWORK_REASONS: Record<string, [reason: string, retry: boolean]> = {
  ECONNREFUSED: ["connection refused", true],
  ECONNRESET: ["connection reset by peer", true],
  EPIPE: ["connection closed while sending", true],
  ECONNABORTED: ["connection aborted", true],
  ETIMEDOUT: ["timed out", true],
  ESOCKETTIMEDOUT: ["timed out", true],
  EHOSTUNREACH: ["host unreachable", true],
  ENETUNREACH: ["network unreachable", true],
  ENETDOWN: ["network down", true],
  EAI_AGAIN: ["DNS lookup failed temporarily", true],
  ENOTFOUND: ["host not found (DNS)", false],
  EAI_NONAME: ["host not found (DNS)", false],
  ERR_INVALID_URL: ["invalid endpoint URL", false],
  // The TLS client got an HTTP response where a TLS record belongs: nothing to do with certificates.
  ERR_SSL_WRONG_VERSION_NUMBER: [
    "the endpoint speaks plain HTTP, not TLS; use an http:// endpoint",
    false,
  ],
};

/** @internal */
export interface Failure {
  /** S3 error code, network error code, or error name. */
  code: string;
  status?: number;
  requestId?: string;
  /** The endpoint could not be reached (connect, DNS, TLS, timeouts, dropped connections). */
  network: boolean;
  retryable: boolean;
  /** Safe text for network failures (never the SDK's message). */
  reason: string;
}

/**
 * Reads what we need from an SDK or network error without trusting its message for output.
 * @internal exported for tests
 */
export function classifyS3Error(err: unknown): Failure {
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const name = typeof e.name === "string" ? e.name : "Error";
  if (typeof status === "number" && status > 0 && (e.$fault !== undefined || e.$response)) {
    const generic = name === "Unknown" || name === "UnknownError" || name === "Error" ||
      /^\d+$/.test(name);
    const code = typeof e.Code === "string" && e.Code ? e.Code : generic ? `HTTP ${status}` : name;
    const retryable = THROTTLE_CODES.has(code) || TRANSIENT_CODES.has(code) || status === 429 ||
      (status >= 500 && status !== 501);
    return {
      code,
      status,
      requestId: e.$metadata?.requestId,
      network: false,
      retryable,
      reason: code,
    };
  }
  const netCode = networkCode(e);
  const message = typeof e.message === "string" ? e.message : "";
  if (name === "TimeoutError") {
    return { code: "TimeoutError", network: true, retryable: true, reason: timeoutReason(message) };
  }
  if (netCode && NETWORK_REASONS[netCode]) {
    const [reason, retryable] = NETWORK_REASONS[netCode];
    return { code: netCode, network: true, retryable, reason: `${reason} (${netCode})` };
  }
  if (netCode && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL/.test(netCode)) {
    return {
      code: netCode,
      network: true,
      retryable: false,
      reason:
        `TLS certificate not accepted (${netCode}); fix the certificate, or set skip-verify for a self-signed one`,
    };
  }
  if (/certificate|UnknownIssuer|NotValidForName|tls handshake/i.test(message)) {
    return {
      code: "TLSError",
      network: true,
      retryable: false,
      reason:
        "TLS certificate not accepted; fix the certificate, or set skip-verify for a self-signed one",
    };
  }
  if (/socket hang up|other side closed|connection (was )?(reset|closed)/i.test(message)) {
    return {
      code: "ECONNRESET",
      network: true,
      retryable: true,
      reason: "connection dropped (socket hang up)",
    };
  }
  if (name === "CredentialsProviderError") {
    return { code: name, network: false, retryable: false, reason: name };
  }
  if (netCode) {
    return { code: netCode, network: true, retryable: false, reason: `network error (${netCode})` };
  }
  return { code: name, network: false, retryable: false, reason: name };
}

interface ErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  Code?: unknown;
  $fault?: unknown;
  $response?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  errors?: unknown;
  cause?: unknown;
}

/** `err.code`, or the first code of an AggregateError (happy-eyeballs connects), or the cause's. */
function networkCode(e: ErrorShape): string | undefined {
  if (typeof e.code === "string" && e.code) return e.code;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const c = (inner as ErrorShape | null)?.code;
      if (typeof c === "string" && c) return c;
    }
  }
  const cause = e.cause as ErrorShape | undefined;
  if (cause && typeof cause === "object" && typeof cause.code === "string") return cause.code;
  return undefined;
}

function timeoutReason(message: string): string {
  const ms = /(\d+)\s*ms/.exec(message)?.[1];
  const t = ms ? ` ${ms} ms` : "";
  if (/establish a connection/.test(message)) return `no connection within${t} (timeout)`;
  if (/inactivity/.test(message)) return `connection idle for${t} (timeout)`;
  if (/requestTimeout/.test(message)) return `no response within${t} (timeout)`;
  return "timed out";
}

/** Providers that reject DeleteObjects (R2 in some modes, B2, old MinIO, gateways). */
function isBatchUnsupported(f: Failure): boolean {
  if (f.network) return false;
  return f.status === 501 || [
    "NotImplemented",
    "MissingContentMD5",
    "MissingContentMd5",
    "InvalidDigest",
    "BadDigest",
    "MalformedXML",
    "InvalidRequest",
    "InvalidArgument",
    "XAmzContentChecksumMismatch",
  ].includes(f.code);
}

/**
 * Replaces the SDK's CRC32 integrity headers on DeleteObjects with `Content-MD5`, which AWS,
 * R2, B2 and MinIO all accept (B2 and older MinIO reject the CRC32 ones).
 */
function useContentMd5(cmd: DeleteObjectsCommand): void {
  cmd.middlewareStack.add(
    (next) => (args) => {
      const req = args.request as { headers?: Record<string, string>; body?: unknown };
      if (req?.headers && typeof req.body === "string") {
        for (const h of Object.keys(req.headers)) {
          const l = h.toLowerCase();
          if (l.startsWith("x-amz-checksum-") || l === "x-amz-sdk-checksum-algorithm") {
            delete req.headers[h];
          }
        }
        req.headers["content-md5"] = createHash("md5").update(req.body).digest("base64");
      }
      return next(args);
    },
    // "low" priority runs after the SDK's flexibleChecksumsMiddleware (also in "build"), and
    // the whole build step runs before signing (finalizeRequest).
    { step: "build", priority: "low", name: "litewardenContentMd5" },
  );
}

async function* filterSlash(src: AsyncIterable<ObjectInfo>): AsyncGenerator<ObjectInfo> {
  for await (const info of src) if (!info.key.startsWith("/")) yield info;
}

/**
 * Merges two key-sorted listings; a key present in both is yielded once, from `a`.
 * Yields `[info, fromB]`.
 */
async function* mergeSorted(
  a: AsyncIterable<ObjectInfo>,
  b: AsyncIterable<ObjectInfo>,
): AsyncGenerator<[ObjectInfo, boolean]> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let na = await ia.next();
  let nb = await ib.next();
  try {
    while (!na.done || !nb.done) {
      if (nb.done || (!na.done && na.value.key <= nb.value.key)) {
        const va = na.value as ObjectInfo;
        if (!nb.done && nb.value.key === va.key) nb = await ib.next();
        yield [va, false];
        na = await ia.next();
      } else {
        yield [nb.value, true];
        nb = await ib.next();
      }
    }
  } finally {
    await ia.return?.();
    await ib.return?.();
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

/** A short reason for a broken download, without request details (which may carry secrets). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
