/**
 * A real S3-compatible HTTP server for tests: fauxqs (an in-memory S3/SQS/SNS emulator built on
 * fastify) listening on 127.0.0.1 with an ephemeral port, inside the test process.
 *
 * Set `LITEWARDEN_TEST_S3_URL` (e.g. `http://minioadmin:minioadmin@127.0.0.1:9000`) to run the same
 * tests against a real server such as MinIO instead; the credentials come from the URL userinfo.
 *
 * Three fauxqs traps are handled here (see the notes in each place):
 *  (a) its `startFauxqs()` binds 0.0.0.0 — we build the app with `buildApp()` and listen on 127.0.0.1;
 *  (b) Go's XML encoder (Litestream) writes ETag quotes as `&#34;`, which fauxqs does not decode, so
 *      CompleteMultipartUpload fails — numeric character references are decoded before fauxqs
 *      parses XML request bodies;
 *  (c) its fastify body limit is 11 MiB — the catch-all body parser is re-registered with a larger
 *      limit so single PUTs of bigger snapshots work.
 * fauxqs checks no signatures: any credentials are accepted.
 */
import { buildApp } from "fauxqs";
import type { S3ReplicaTarget } from "../../src/config/target.ts";
import type { Storage } from "../../src/storage/storage.ts";

export interface TestS3Server {
  /** `http://127.0.0.1:PORT` (no credentials). */
  endpoint: string;
  /** Credentials to use with this server (fauxqs accepts anything). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Creates a bucket; creating one that exists is not an error. */
  createBucket(name: string): Promise<void>;
  /** Closes the server and every connection to it. A no-op for an external server. */
  stop(): Promise<void>;
}

/** The largest request body the embedded server accepts (fauxqs's own limit is 11 MiB). */
const BODY_LIMIT = 256 * 1024 * 1024;

export interface S3ServerOptions {
  /**
   * Awaited before the server handles each request (method, URL path and query): a test can hold
   * requests to stop a client at a known moment. Only the embedded server has it.
   */
  onRequest?: (method: string, url: string) => Promise<void> | void;
  /** Like `onRequest`, but once the request body has been read (a failure a client sees late). */
  afterBody?: (method: string, url: string) => Promise<void> | void;
}

/** Starts the embedded server, or returns the external one named by `LITEWARDEN_TEST_S3_URL`. */
export async function startS3Server(opts: S3ServerOptions = {}): Promise<TestS3Server> {
  const external = Deno.env.get("LITEWARDEN_TEST_S3_URL");
  if (external && (opts.onRequest || opts.afterBody)) {
    throw new Error("onRequest needs the embedded S3 server; unset LITEWARDEN_TEST_S3_URL");
  }
  if (external) return externalServer(external);

  // Trap (a): buildApp() instead of startFauxqs(), so we choose the listen address.
  const app = buildApp({ logger: false });
  const onRequest = opts.onRequest;
  if (onRequest) app.addHook("onRequest", async (req) => await onRequest(req.method, req.url));
  const afterBody = opts.afterBody;
  if (afterBody) app.addHook("preHandler", async (req) => await afterBody(req.method, req.url));

  // Trap (b) and (c): replace fauxqs's catch-all buffer parser (S3 bodies: objects, parts and
  // the XML of CompleteMultipartUpload / DeleteObjects) with one that has a bigger body limit and
  // decodes numeric character references in XML bodies. The SQS/SNS parsers stay as they are.
  app.removeContentTypeParser("*");
  app.addContentTypeParser(
    "*",
    { parseAs: "buffer", bodyLimit: BODY_LIMIT },
    (req, body, done) => {
      const buf = body as Uint8Array;
      done(null, isXmlRequest(req.method, req.url) ? decodeNumericEntities(buf) : buf);
    },
  );

  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") {
    await app.close();
    throw new Error("fauxqs did not report a TCP address");
  }
  const endpoint = `http://127.0.0.1:${addr.port}`;
  let stopped = false;
  return {
    endpoint,
    credentials: { accessKeyId: "test-access-key", secretAccessKey: "test-secret-key" },
    async createBucket(name: string) {
      // Through the server's own S3 API (fauxqs's package exports no store to reach into).
      const res = await fetch(`${endpoint}/${encodeURIComponent(name)}`, { method: "PUT" });
      const text = await res.text();
      if (!res.ok && !text.includes("BucketAlreadyOwnedByYou")) {
        throw new Error(`creating bucket ${name} failed: HTTP ${res.status} ${text}`);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // fauxqs builds fastify with forceCloseConnections, so keep-alive sockets close too.
      await app.close();
    },
  };
}

/**
 * XML request bodies fauxqs parses with regular expressions: CompleteMultipartUpload
 * (`POST /bucket/key?uploadId=…`) and DeleteObjects (`POST /bucket?delete`).
 */
function isXmlRequest(method: string, url: string): boolean {
  if (method !== "POST") return false;
  const q = url.indexOf("?");
  if (q < 0) return false;
  const params = new URLSearchParams(url.slice(q + 1));
  return params.has("uploadId") || params.has("delete");
}

/** The five characters fauxqs unescapes by name; others become the character itself. */
const NAMED: Record<number, string> = {
  0x22: "&quot;",
  0x26: "&amp;",
  0x27: "&apos;",
  0x3c: "&lt;",
  0x3e: "&gt;",
};

/**
 * Rewrites `&#34;` / `&#x22;` style references (as Go's encoding/xml writes them) into what
 * fauxqs's parser understands: named entities for the XML-special characters (so `&#38;amp;`
 * still means the literal text `&amp;`), the plain character for everything else.
 */
export function decodeNumericEntities(body: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(body);
  if (!text.includes("&#")) return body;
  const out = text.replace(/&#(x[0-9a-fA-F]+|[0-9]+);/g, (whole, ref: string) => {
    const code = ref[0] === "x" ? parseInt(ref.slice(1), 16) : parseInt(ref, 10);
    if (!Number.isFinite(code) || code > 0x10ffff) return whole;
    return NAMED[code] ?? String.fromCodePoint(code);
  });
  // fauxqs calls Buffer.isBuffer() on the body, so hand back a Buffer-compatible value.
  return toBuffer(new TextEncoder().encode(out));
}

function toBuffer(bytes: Uint8Array): Uint8Array {
  // Buffer is a Node global under Deno's npm compatibility; a Buffer view shares the memory.
  const B = (globalThis as unknown as {
    Buffer: { from(ab: ArrayBufferLike, off: number, len: number): Uint8Array };
  }).Buffer;
  return B.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function externalServer(raw: string): TestS3Server {
  const url = new URL(raw);
  const credentials = {
    accessKeyId: decodeURIComponent(url.username),
    secretAccessKey: decodeURIComponent(url.password),
  };
  url.username = "";
  url.password = "";
  const endpoint = url.origin;
  return {
    endpoint,
    credentials,
    async createBucket(name: string) {
      // A real server checks signatures, so go through the SDK.
      const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
      const client = new S3Client({
        endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials,
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } catch (err) {
        const code = err instanceof Error ? err.name : "";
        if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw err;
      } finally {
        client.destroy();
      }
    },
    stop() {
      return Promise.resolve();
    },
  };
}

/** An S3 replica target pointing at the test server. */
export function s3TargetFor(
  server: TestS3Server,
  bucket: string,
  prefix: string,
): S3ReplicaTarget {
  return {
    type: "s3",
    name: "s3",
    bucket,
    path: prefix,
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    skipVerify: false,
    credentials: { ...server.credentials },
  };
}

/** Copies every file under `dir` into `storage` (keys relative to `dir`); returns the keys, sorted. */
export async function uploadTree(storage: Storage, dir: string): Promise<string[]> {
  const keys: string[] = [];
  const walk = async (at: string, rel: string): Promise<void> => {
    for await (const e of Deno.readDir(at)) {
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(`${at}/${e.name}`, key);
      else {
        await storage.put(key, await Deno.readFile(`${at}/${e.name}`));
        keys.push(key);
      }
    }
  };
  await walk(dir, "");
  return keys.sort();
}
