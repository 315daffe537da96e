/**
 * The Azure Blob Storage backend, on the Blob service REST API over `fetch` with Shared Key
 * signing: List Blobs (paged with markers), Get Blob (with `x-ms-range`), Put Blob, Delete Blob.
 * No SDK: `@azure/storage-blob` works under Deno 2.9.6 but costs ~150–200 ms to import and a
 * large dependency tree for four requests (README: providers).
 *
 * Rules shared with the S3 backend: retries with exponential backoff and full jitter on 5xx,
 * throttling (429, `ServerBusy`), timeouts and dropped connections, a bounded number of attempts;
 * a GET body that breaks off is resumed with a ranged GET from where it stopped
 * (`resumableDownload`). Messages are built from the status, the service's error code, the
 * account, container and endpoint only; the account key is never in a URL or a message (and is
 * scrubbed from every message as a last line of defence).
 *
 * Object times are the blobs' `Creation-Time`, which is what Litestream v0.3.13 reads as a
 * snapshot's or WAL segment's time (`Last-Modified` only when a server omits it).
 */
import { createHmac } from "node:crypto";
import type { AbsReplicaTarget } from "../config/target.ts";
import {
  DamagedError,
  type LitewardenError,
  MissingObjectError,
  StorageError,
  type StorageFailure,
  UsageError,
} from "../errors.ts";
import { PagingGuard } from "./paging.ts";
import {
  type Download,
  emptyStream,
  READ_IDLE_TIMEOUT_MS,
  resumableDownload,
} from "./resumable.ts";
import type { ByteRange, ObjectInfo, PutSource, PutStreamOptions, Storage } from "./storage.ts";
import { vanishedObjectMessage } from "./storage.ts";

/** Tuning knobs; the defaults suit real use, tests shrink them to stay fast. */
export interface AbsStorageOptions {
  /** Attempts per request, including the first (default 5). */
  maxAttempts?: number;
  /** Backoff base: attempt n waits a random time in [0, min(max, base·2^(n-1))) (default 200 ms). */
  retryBaseDelayMs?: number;
  /** Backoff cap (default 10 s). */
  retryMaxDelayMs?: number;
  /** Time from sending a request to its response headers (default 60 s). */
  requestTimeoutMs?: number;
  /** A GET body that sends nothing for this long is dropped and resumed (default 20 s). */
  readIdleTimeoutMs?: number;
  /** List Blobs page size, 1…5000 (default 5000). */
  pageSize?: number;
  /** Parallel Delete Blob requests (default 8). */
  deleteConcurrency?: number;
}

const DEFAULTS: Required<AbsStorageOptions> = {
  maxAttempts: 5,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 10_000,
  requestTimeoutMs: 60_000,
  readIdleTimeoutMs: READ_IDLE_TIMEOUT_MS,
  pageSize: 5000,
  deleteConcurrency: 8,
};

/** The REST API version we speak (supported by Azure and by azurite 3.x). */
const API_VERSION = "2021-12-02";

type Op = "list" | "get" | "put" | "delete";

interface RequestSpec {
  method: "GET" | "PUT" | "DELETE";
  /** Blob name (full, inside the container), or undefined for a container-level request. */
  blob?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

interface Context {
  op: Op;
  /** Key relative to the replica root. */
  key?: string;
  range?: string;
}

/** What went wrong with one request. */
interface Failure {
  status?: number;
  /** `x-ms-error-code`, or a network error name. */
  code: string;
  network: boolean;
  retryable: boolean;
  /** Safe text for network failures. */
  reason: string;
}

class RequestFailed extends Error {
  constructor(readonly failure: Failure) {
    super(failure.code);
  }
}

export class AbsStorage implements Storage {
  readonly location: string;
  private readonly opts: Required<AbsStorageOptions>;
  private readonly account: string;
  private readonly key: Uint8Array;
  private readonly secret: string;
  /** `https://ACCOUNT.blob.core.windows.net` or the configured endpoint, no trailing `/`. */
  private readonly service: string;
  private readonly container: string;
  /** Blob name prefix of the replica root: "" or "path/". */
  private readonly root: string;

  constructor(target: AbsReplicaTarget, options: AbsStorageOptions = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.opts.pageSize = Math.min(5000, Math.max(1, Math.floor(this.opts.pageSize)));
    this.opts.maxAttempts = Math.max(1, Math.floor(this.opts.maxAttempts));
    this.opts.deleteConcurrency = Math.max(1, Math.floor(this.opts.deleteConcurrency));
    this.account = target.accountName;
    this.secret = target.accountKey;
    this.key = Uint8Array.from(atob(target.accountKey), (c) => c.charCodeAt(0));
    this.service = (target.endpoint ?? `https://${target.accountName}.blob.core.windows.net`)
      .replace(/\/+$/, "");
    this.container = target.container;
    this.root = target.path ? `${target.path.replace(/\/+$/, "")}/` : "";
    this.location = `abs://${target.accountName}@${target.container}${
      target.path ? `/${target.path}` : ""
    }`;
  }

  // ---- list ----

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const full = this.root + prefix;
    let marker = "";
    const guard = new PagingGuard();
    for (;;) {
      const query: Record<string, string> = {
        restype: "container",
        comp: "list",
        prefix: full,
        maxresults: String(this.opts.pageSize),
      };
      if (marker) query.marker = marker;
      const xml = await this.request({ method: "GET", query }, { op: "list" }, (r) => r.text());
      const page = parseBlobList(xml);
      for (const blob of page.blobs) {
        if (!blob.name.startsWith(full)) continue;
        yield { key: blob.name.slice(this.root.length), size: blob.size, modified: blob.time };
      }
      if (!page.nextMarker) return;
      const looping = guard.check({ keys: page.blobs.length, nextToken: page.nextMarker });
      if (looping) {
        throw this.mapped(
          `Azure Blob listing of ${this.location} at ${this.service} is looping: the server sent ${looping}; stopped listing (check the service or its proxy)`,
          { op: "list" },
        );
      }
      marker = page.nextMarker;
    }
  }

  // ---- get ----

  async get(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (range?.length === 0) return emptyStream();
    const first = await this.getOnce(key, range);
    return resumableDownload(key, range, first, (rest) => this.getOnce(key, rest), {
      maxAttempts: this.opts.maxAttempts,
      retryBaseDelayMs: this.opts.retryBaseDelayMs,
      retryMaxDelayMs: this.opts.retryMaxDelayMs,
      location: this.location,
      readIdleTimeoutMs: this.opts.readIdleTimeoutMs,
    });
  }

  /** One Get Blob (with request retries). */
  private getOnce(key: string, range?: ByteRange): Promise<Download> {
    let header: string | undefined;
    if (range && (range.offset > 0 || range.length !== undefined)) {
      header = range.length === undefined
        ? `bytes=${range.offset}-`
        : `bytes=${range.offset}-${range.offset + range.length - 1}`;
    }
    const headers: Record<string, string> = header ? { "x-ms-range": header } : {};
    return this.request(
      { method: "GET", blob: this.root + key, headers },
      { op: "get", key, range: header },
      (res) => {
        const length = Number(res.headers.get("content-length") ?? NaN);
        return Promise.resolve({
          body: res.body ?? emptyStream(),
          length: Number.isFinite(length) ? length : undefined,
        });
      },
      { keepBody: true },
    );
  }

  // ---- put ----

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.request(
      {
        method: "PUT",
        blob: this.root + key,
        headers: { "x-ms-blob-type": "BlockBlob", "content-type": "application/octet-stream" },
        body: data,
      },
      { op: "put", key },
      () => Promise.resolve(),
    );
  }

  /** Not yet: a streamed Put Blob needs block uploads here. A typed error names the way out. */
  putStream(key: string, _src: PutSource, _opts?: PutStreamOptions): Promise<boolean> {
    return Promise.reject(
      new UsageError(
        `storing vault files (${key}) on Azure Blob Storage is not supported yet; name a file or S3 location for them with LITEWARDEN_FILES_URL (--files-url)`,
      ),
    );
  }

  // ---- delete ----

  /**
   * One Delete Blob per key, several in parallel. (Blob Batch would save round trips, but it is a
   * multipart protocol with a signature per sub-request; prune deletes at most a few thousand
   * objects, which parallel single deletes handle in seconds.)
   */
  async delete(keys: string[]): Promise<void> {
    const unique = [...new Set(keys)];
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const key = unique[next++];
        await this.request(
          { method: "DELETE", blob: this.root + key },
          { op: "delete", key },
          () => Promise.resolve(),
        );
      }
    };
    const n = Math.min(this.opts.deleteConcurrency, unique.length);
    await Promise.all(Array.from({ length: n }, worker));
  }

  // ---- requests, signing, retries, errors ----

  /**
   * Sends one request with retries and maps its final failure to a `LitewardenError`.
   * `read` consumes a successful response; unless `keepBody`, its body is read within the
   * request timeout. A missing blob on delete counts as deleted.
   */
  private async request<T>(
    spec: RequestSpec,
    ctx: Context,
    read: (res: Response) => Promise<T>,
    opt: { keepBody?: boolean } = {},
  ): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(new TimeoutFailure()), this.opts.requestTimeoutMs);
      try {
        const res = await this.send(spec, ctrl.signal);
        if (res.ok) {
          // A kept body is read later, under the resumable download's read-idle timeout.
          if (opt.keepBody) clearTimeout(timer);
          return await read(res);
        }
        await res.body?.cancel().catch(() => {});
        const code = res.headers.get("x-ms-error-code") ?? `HTTP ${res.status}`;
        if (ctx.op === "delete" && res.status === 404 && code === "BlobNotFound") {
          return undefined as T;
        }
        throw new RequestFailed(httpFailure(res.status, code));
      } catch (err) {
        const f = err instanceof RequestFailed ? err.failure : networkFailure(err);
        if (!f.retryable || attempt >= this.opts.maxAttempts) throw this.toError(f, ctx, attempt);
        const cap = Math.min(
          this.opts.retryMaxDelayMs,
          this.opts.retryBaseDelayMs * 2 ** (attempt - 1),
        );
        await sleep(Math.random() * cap);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Builds, signs (Shared Key) and sends one request. */
  private send(spec: RequestSpec, signal: AbortSignal): Promise<Response> {
    let path = `${this.service}/${encodeURIComponent(this.container)}`;
    if (spec.blob !== undefined) {
      path += `/${spec.blob.split("/").map(encodeURIComponent).join("/")}`;
    }
    const query = Object.entries(spec.query ?? {});
    const qs = query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
    const url = new URL(qs ? `${path}?${qs}` : path);
    const headers: Record<string, string> = {
      "x-ms-date": new Date().toUTCString(),
      "x-ms-version": API_VERSION,
      ...spec.headers,
    };
    const length = spec.body ? String(spec.body.length) : "";
    headers.authorization = `SharedKey ${this.account}:${
      sharedKeySignature(this.key, this.account, spec.method, url, headers, length)
    }`;
    return fetch(url, {
      method: spec.method,
      headers,
      body: spec.body as BodyInit | undefined,
      signal,
    });
  }

  private toError(f: Failure, ctx: Context, attempts: number): LitewardenError {
    const after = attempts > 1 ? ` after ${attempts} attempts` : "";
    const detail: StorageFailure = {
      op: ctx.op,
      key: ctx.key,
      code: f.code,
      status: f.status,
      attempts,
    };
    const endpoint = this.service;
    if (f.network) {
      return this.mapped(
        `cannot reach Azure Blob endpoint ${endpoint}: ${f.reason}${after}`,
        detail,
      );
    }
    if (f.code === "ContainerNotFound") {
      return this.mapped(
        `container ${this.container} does not exist in storage account ${this.account} at ${endpoint}; check \`bucket\`/the URL`,
        detail,
      );
    }
    if (ctx.op === "get" && (f.code === "BlobNotFound" || f.status === 404)) {
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
    if (AUTH_CODES.has(f.code)) {
      return this.mapped(
        `Azure rejected the request to ${this.location} (${f.code}); check account-name and the account key (account-key or $LITESTREAM_AZURE_ACCOUNT_KEY), and the account's network rules`,
        detail,
      );
    }
    if (f.status === 403) {
      const what = ctx.op === "delete" ? `cannot delete ${ctx.key} from` : "access denied to";
      return this.mapped(
        `permission denied: ${what} ${this.location} (${f.code}); check the key's permissions on the container`,
        detail,
      );
    }
    const what = f.status && !f.code.startsWith("HTTP ") ? `${f.code} (HTTP ${f.status})` : f.code;
    if (f.retryable) {
      return this.mapped(
        `Azure Blob endpoint ${endpoint} kept failing for ${this.location}: ${what}${after}`,
        detail,
      );
    }
    return this.mapped(
      `Azure Blob request to ${this.location} at ${endpoint} failed: ${what}`,
      detail,
    );
  }

  /** A storage error whose message is scrubbed of the account key. */
  private mapped(message: string, failure: StorageFailure): StorageError {
    return new StorageError(this.scrub(message), failure);
  }

  private scrub(message: string): string {
    return message.split(this.secret).join("***");
  }
}

class TimeoutFailure extends Error {
  override name = "TimeoutError";
}

/**
 * The Shared Key signature of a request (Azure Storage "Authorize with Shared Key", version
 * 2015-02-21 and later: an empty Content-Length for bodiless requests). `headers` must already
 * hold every header that is sent, `x-ms-date` included; names are lower-case.
 * @internal exported for the test server helper
 */
export function sharedKeySignature(
  key: Uint8Array,
  account: string,
  method: string,
  url: URL,
  headers: Record<string, string>,
  contentLength: string,
): string {
  const h = (name: string) => headers[name] ?? "";
  const msHeaders = Object.keys(headers)
    .filter((k) => k.startsWith("x-ms-"))
    .sort()
    .map((k) => `${k}:${headers[k].trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const params = new Map<string, string[]>();
  for (const [k, v] of url.searchParams) {
    const name = k.toLowerCase();
    params.set(name, [...(params.get(name) ?? []), v]);
  }
  const resource = `/${account}${url.pathname}` +
    [...params.keys()].sort().map((k) => `\n${k}:${params.get(k)!.sort().join(",")}`).join("");
  const toSign = [
    method,
    h("content-encoding"),
    h("content-language"),
    contentLength === "0" ? "" : contentLength,
    h("content-md5"),
    h("content-type"),
    "", // Date: x-ms-date is used instead
    h("if-modified-since"),
    h("if-match"),
    h("if-none-match"),
    h("if-unmodified-since"),
    h("range"),
  ].join("\n") + "\n" + msHeaders + resource;
  return createHmac("sha256", key).update(toSign, "utf8").digest("base64");
}

/** Rejections of the signature or the account (azurite answers a bad key with AuthorizationFailure). */
const AUTH_CODES = new Set([
  "AuthenticationFailed",
  "AuthorizationFailure",
  "InvalidAuthenticationInfo",
  "AccountIsDisabled",
]);

/** Service error codes worth retrying whatever their status (throttling, transient faults). */
const TRANSIENT_CODES = new Set(["ServerBusy", "OperationTimedOut", "InternalError"]);

function httpFailure(status: number, code: string): Failure {
  const retryable = TRANSIENT_CODES.has(code) || status === 408 || status === 429 ||
    (status >= 500 && status !== 501 && status !== 505);
  return { status, code, network: false, retryable, reason: code };
}

/**
 * A fetch that failed without a response: Deno's messages name the cause ("Connection refused",
 * "dns error", certificate problems); the URL they include holds no credentials (Shared Key
 * signs headers), but only a fixed reason is passed on.
 */
function networkFailure(err: unknown): Failure {
  const e = err instanceof Error ? err : new Error(String(err));
  const text = `${e.name} ${e.message} ${e.cause instanceof Error ? e.cause.message : ""}`;
  const net = (code: string, reason: string, retryable = true): Failure => ({
    code,
    network: true,
    retryable,
    reason,
  });
  if (e instanceof TimeoutFailure || e.name === "TimeoutError") {
    return net("TimeoutError", "no response in time (timeout)");
  }
  if (/connection refused/i.test(text)) return net("ECONNREFUSED", "connection refused");
  if (/dns error|failed to lookup|name or service not known/i.test(text)) {
    return net("ENOTFOUND", "host not found (DNS)", false);
  }
  if (/certificate|tls|ssl/i.test(text)) {
    return net("TLSError", "TLS certificate not accepted; fix the endpoint's certificate", false);
  }
  if (/reset|closed|broken pipe|incomplete|connection|sending request|unexpected eof/i.test(text)) {
    return net("ECONNRESET", "connection dropped");
  }
  return net(e.name || "Error", "network error");
}

// ---- List Blobs XML ----

interface BlobEntry {
  name: string;
  size: number;
  time: Date;
}

/**
 * The blobs and next marker of one List Blobs page. The response is flat, machine-written XML
 * (EnumerationResults/Blobs/Blob/{Name,Properties/…}), so element text is picked out directly;
 * names marked `Encoded="true"` (characters XML cannot carry) are percent-decoded.
 * @internal exported for tests
 */
export function parseBlobList(xml: string): { blobs: BlobEntry[]; nextMarker: string } {
  const blobs: BlobEntry[] = [];
  for (const m of xml.matchAll(/<Blob>([\s\S]*?)<\/Blob>/g)) {
    const inner = m[1];
    const nameM = /<Name( Encoded="true")?>([\s\S]*?)<\/Name>/.exec(inner);
    if (!nameM) continue;
    let name = xmlText(nameM[2]);
    if (nameM[1]) name = decodeURIComponent(name);
    const size = Number(element(inner, "Content-Length") ?? "0");
    const when = element(inner, "Creation-Time") ?? element(inner, "Last-Modified");
    const time = when ? new Date(when) : new Date(0);
    blobs.push({ name, size, time: Number.isNaN(time.getTime()) ? new Date(0) : time });
  }
  const nextMarker = element(xml, "NextMarker") ?? "";
  return { blobs, nextMarker };
}

function element(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? xmlText(m[1]) : undefined;
}

function xmlText(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (whole, ref: string) => {
    switch (ref) {
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
    }
    const code = ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
