/**
 * A fault-injecting HTTP/1.1 proxy in front of the test S3 server, on 127.0.0.1 only. Speaks raw
 * HTTP over TCP (not Deno.serve) so it can do what a bad network or a bad S3 clone does: drop a
 * connection before answering, cut a body after N bytes, stall mid-body, answer 5xx bursts, add
 * latency, make objects vanish between LIST and GET, and page listings badly (a repeated
 * continuation token, endless empty truncated pages).
 *
 * Rules are checked in order for every request; the first that matches (and has uses left)
 * applies. Requests without a matching rule are forwarded unchanged. Every request is recorded,
 * and the proxy answers 503 once `maxRequests` is reached, so a client stuck in a loop fails
 * instead of hanging the suite (tests assert on `requests.length` to prove the client stopped by
 * itself).
 */

export interface ProxyRequest {
  method: string;
  /** Path as sent, e.g. `/bucket/prefix/generations/…`. */
  path: string;
  query: URLSearchParams;
  /** The object key after the bucket (path style), "" for bucket-level requests. */
  key: string;
  /** ListObjectsV2. */
  isList: boolean;
  /** `Range` header, if any. */
  range: string | null;
}

export type Fault =
  /** Close the connection without answering (a reset mid-request). */
  | { type: "reset" }
  /** Answer this status with an S3 error document (500 InternalError, 503 SlowDown, …). */
  | { type: "status"; status: number }
  /** The real status and headers, the first `after` body bytes, then close. */
  | { type: "cut"; after: number }
  /** The real status and headers and the first `after` body bytes, then nothing: held open. */
  | { type: "stall"; after?: number }
  /** Answer normally after `ms`. */
  | { type: "latency"; ms: number }
  /** 404 NoSuchKey: the object vanished between LIST and GET. */
  | { type: "vanish" }
  /** ListObjectsV2: always the first page, marked truncated, with the same continuation token. */
  | { type: "repeatToken" }
  /** ListObjectsV2: an empty page marked truncated, with a fresh continuation token each time. */
  | { type: "emptyPages" }
  /** Flip the bits of `mask` in the body byte at `offset` (modulo the body length). */
  | { type: "flip"; offset: number; mask: number };

export interface FaultRule {
  /** Which requests; default all. */
  when?: (r: ProxyRequest) => boolean;
  fault: Fault;
  /** How many requests it applies to (default: all that match). */
  times?: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT`: use as the S3 endpoint. */
  endpoint: string;
  /** Every request seen, in order (the fault applied, if any). */
  requests: (ProxyRequest & { fault?: Fault["type"] })[];
  /** Adds a rule (after the existing ones). */
  add(rule: FaultRule): void;
  /** Removes every rule and forgets the recorded requests. */
  reset(): void;
  /** Closes the listener and every connection, stalled ones included. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Request headers never forwarded (hop-by-hop, or recomputed by fetch). */
const DROP_REQUEST = new Set([
  "host",
  "connection",
  "content-length",
  "expect",
  "transfer-encoding",
  "keep-alive",
]);
const DROP_RESPONSE = new Set([
  "connection",
  "content-length",
  "transfer-encoding",
  "content-encoding",
  "keep-alive",
]);

export function startFaultProxy(
  upstream: string,
  opts: { maxRequests?: number } = {},
): FaultProxy {
  const maxRequests = opts.maxRequests ?? 5000;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const rules: { rule: FaultRule; left: number }[] = [];
  const requests: FaultProxy["requests"] = [];
  let emptyToken = 0;
  let stopping = false;
  let releaseStalls!: () => void;
  const stopped = new Promise<void>((r) => (releaseStalls = r));
  const handlers = new Set<Promise<void>>();

  const pick = (r: ProxyRequest): Fault | undefined => {
    for (const entry of rules) {
      if (entry.left <= 0) continue;
      if (entry.rule.when && !entry.rule.when(r)) continue;
      entry.left--;
      return entry.rule.fault;
    }
    return undefined;
  };

  const serveConn = async (conn: Deno.Conn) => {
    const reader = new ConnReader(conn);
    try {
      for (;;) {
        const req = await reader.readRequest();
        if (!req) return;
        const url = new URL(req.target, "http://proxy");
        const parts = url.pathname.split("/");
        const info: ProxyRequest = {
          method: req.method,
          path: url.pathname,
          query: url.searchParams,
          key: decodeURIComponent(parts.slice(2).join("/")),
          isList: req.method === "GET" && url.searchParams.get("list-type") === "2",
          range: req.headers.get("range"),
        };
        const fault = requests.length >= maxRequests
          ? { type: "status", status: 503 } as const
          : pick(info);
        requests.push({ ...info, fault: fault?.type });
        if (fault?.type === "reset") return;
        if (fault?.type === "latency") await sleepUnless(fault.ms, stopped);
        let res: RawResponse;
        if (fault?.type === "status") res = errorResponse(fault.status);
        else if (fault?.type === "vanish") res = errorResponse(404);
        else if (fault?.type === "emptyPages" && info.isList) {
          res = listResponse(url.pathname.split("/")[1], `lw-empty-${++emptyToken}`);
        } else {
          const forwardUrl = new URL(req.target, upstream);
          if (fault?.type === "repeatToken" && info.isList) {
            forwardUrl.searchParams.delete("continuation-token");
            forwardUrl.searchParams.delete("start-after");
          }
          res = await forward(forwardUrl, req);
          if (fault?.type === "repeatToken" && info.isList) res = repeatToken(res);
          if (fault?.type === "flip" && res.body.length > 0) {
            res.body[fault.offset % res.body.length] ^= fault.mask;
          }
        }
        const head = encoder.encode(
          `HTTP/1.1 ${res.status} ${res.status < 400 ? "OK" : "Error"}\r\n` +
            [...res.headers].map(([k, v]) => `${k}: ${v}\r\n`).join("") +
            `content-length: ${res.contentLength ?? res.body.length}\r\n` +
            "connection: keep-alive\r\n\r\n",
        );
        const body = req.method === "HEAD" ? new Uint8Array() : res.body;
        if (fault?.type === "cut") {
          await writeAll(conn, concat(head, body.subarray(0, Math.min(fault.after, body.length))));
          return;
        }
        if (fault?.type === "stall") {
          await writeAll(
            conn,
            concat(head, body.subarray(0, Math.min(fault.after ?? 0, body.length))),
          );
          await stopped;
          return;
        }
        await writeAll(conn, concat(head, body));
      }
    } catch {
      // The client went away (or the proxy is stopping): nothing to answer.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      if (stopping) {
        conn.close();
        return;
      }
      conns.add(conn);
      const h = serveConn(conn);
      handlers.add(h);
      h.finally(() => handlers.delete(h));
    }
  })();

  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    requests,
    add(rule) {
      rules.push({ rule, left: rule.times ?? Infinity });
    },
    reset() {
      rules.length = 0;
      requests.length = 0;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      releaseStalls();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await accepting;
      await Promise.allSettled([...handlers]);
    },
  };
}

interface RawRequest {
  method: string;
  target: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

interface RawResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  /** For HEAD: the upstream's length (the body is empty). */
  contentLength?: number;
}

async function forward(url: URL, req: RawRequest): Promise<RawResponse> {
  const headers = new Headers();
  for (const [k, v] of req.headers) if (!DROP_REQUEST.has(k)) headers.set(k, v);
  const res = await fetch(url, {
    method: req.method,
    headers,
    body: req.body.length > 0 ? req.body : undefined,
  });
  const body = new Uint8Array(await res.arrayBuffer());
  const out: [string, string][] = [];
  for (const [k, v] of res.headers) if (!DROP_RESPONSE.has(k)) out.push([k, v]);
  const len = res.headers.get("content-length");
  return {
    status: res.status,
    headers: out,
    body,
    contentLength: req.method === "HEAD" && len ? Number(len) : undefined,
  };
}

function errorResponse(status: number): RawResponse {
  const code = status === 404
    ? "NoSuchKey"
    : status === 503
    ? "SlowDown"
    : status === 403
    ? "AccessDenied"
    : "InternalError";
  return {
    status,
    headers: [["content-type", "application/xml"]],
    body: encoder.encode(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
        `<Message>injected by the fault proxy</Message></Error>`,
    ),
  };
}

function listResponse(bucket: string, token: string): RawResponse {
  return {
    status: 200,
    headers: [["content-type", "application/xml"]],
    body: encoder.encode(
      `<?xml version="1.0" encoding="UTF-8"?>\n` +
        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Name>${bucket}</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>` +
        `<IsTruncated>true</IsTruncated><NextContinuationToken>${token}</NextContinuationToken>` +
        `</ListBucketResult>`,
    ),
  };
}

function repeatToken(res: RawResponse): RawResponse {
  const xml = decoder.decode(res.body)
    .replace(/<NextContinuationToken>[^<]*<\/NextContinuationToken>/, "")
    .replace(/<IsTruncated>false<\/IsTruncated>/, "<IsTruncated>true</IsTruncated>")
    .replace(
      "</ListBucketResult>",
      "<NextContinuationToken>lw-loop</NextContinuationToken></ListBucketResult>",
    );
  return { ...res, body: encoder.encode(xml) };
}

/** Reads HTTP/1.1 requests (Content-Length bodies) off one connection. */
class ConnReader {
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  constructor(private readonly conn: Deno.Conn) {}

  private async fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    this.buf = concat(this.buf, chunk.subarray(0, n));
    return true;
  }

  async readRequest(): Promise<RawRequest | undefined> {
    let end: number;
    while ((end = indexOfCrlfCrlf(this.buf)) < 0) {
      if (this.buf.length > 1 << 20) throw new Error("request head too large");
      if (!(await this.fill())) return undefined;
    }
    const head = decoder.decode(this.buf.subarray(0, end)).split("\r\n");
    this.buf = this.buf.subarray(end + 4);
    const [method, target] = head[0].split(" ");
    const headers = new Headers();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    if (headers.get("expect")?.toLowerCase() === "100-continue") {
      await writeAll(this.conn, encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
    }
    let body: Uint8Array<ArrayBuffer>;
    if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
      body = await this.readChunked();
    } else {
      const length = Number(headers.get("content-length") ?? 0);
      while (this.buf.length < length) {
        if (!(await this.fill())) throw new Error("body cut short");
      }
      body = this.buf.slice(0, length);
      this.buf = this.buf.subarray(length);
    }
    return { method, target, headers, body };
  }

  private async readChunked(): Promise<Uint8Array<ArrayBuffer>> {
    const parts: Uint8Array[] = [];
    for (;;) {
      let eol: number;
      while ((eol = indexOf(this.buf, 13, 10)) < 0) {
        if (!(await this.fill())) throw new Error("chunked body cut short");
      }
      const size = parseInt(decoder.decode(this.buf.subarray(0, eol)).split(";")[0], 16);
      this.buf = this.buf.subarray(eol + 2);
      while (this.buf.length < size + 2) {
        if (!(await this.fill())) throw new Error("chunked body cut short");
      }
      if (size === 0) {
        // Skip trailers up to the blank line.
        while (indexOfCrlfCrlf(concat(encoder.encode("\r\n"), this.buf)) < 0) {
          if (!(await this.fill())) break;
        }
        const t = indexOfCrlfCrlf(concat(encoder.encode("\r\n"), this.buf));
        this.buf = this.buf.subarray(Math.max(0, t + 2));
        return concat(...parts);
      }
      parts.push(this.buf.slice(0, size));
      this.buf = this.buf.subarray(size + 2);
    }
  }
}

function indexOf(b: Uint8Array, x: number, y: number): number {
  for (let i = 0; i + 1 < b.length; i++) if (b[i] === x && b[i + 1] === y) return i;
  return -1;
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

/** Waits `ms`, or less if `cancel` settles first (no timer is left behind either way). */
function sleepUnless(ms: number, cancel: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    cancel.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
