/**
 * Replica URLs (`file:///dir`, `s3://bucket/prefix?…`) and the S3 settings shared with
 * litestream.yml (LITESTREAM-FORMATS §5.2–5.3). Pure: the environment and cwd are passed in.
 *
 * Credentials in a URL's userinfo (`s3://KEY:SECRET@bucket/…`) are accepted but never echoed:
 * every message that shows a URL shows `safeUrl(url)`.
 */
import { UsageError } from "../errors.ts";
import { buildAbsTarget } from "./abs.ts";
import { cleanPath, type Env, expandPath } from "./expand.ts";
import type {
  FileReplicaTarget,
  ReplicaTarget,
  S3ReplicaTarget,
  SftpReplicaTarget,
} from "./target.ts";

/** Backends Litestream has and litewarden does not (v0.3 `gcs`, v0.5 `gs`, …). */
export const UNSUPPORTED_TYPES: readonly string[] = [
  "gcs",
  "gs",
  "webdav",
  "webdavs",
  "nats",
  "oss",
];

export function unsupportedTypeMessage(
  type: string,
  gcs?: { bucket?: string; path?: string },
): string {
  if (type === "gcs" || type === "gs") return gcsAdvice(type, gcs?.bucket, gcs?.path);
  return `replica type ${type} is not supported by litewarden yet (supported: file, s3, sftp, abs)`;
}

/**
 * GCS has no native backend yet, but Litestream's GCS objects have the same names as its S3
 * ones and GCS serves them over its S3-compatible XML API with HMAC keys: say how.
 */
function gcsAdvice(type: string, bucket = "BUCKET", path = "PATH"): string {
  const where = path ? `${bucket}/${path}` : bucket;
  return `replica type ${type} has no native backend in litewarden; read it through GCS's ` +
    `S3-compatible XML API: s3://${where}?endpoint=https://storage.googleapis.com with an HMAC ` +
    "key in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (in litestream.yml: type: s3, " +
    "endpoint: https://storage.googleapis.com, access-key-id and secret-access-key = the HMAC key)";
}

/** Litestream's `IsURL`: a scheme followed by `://`. */
export function isUrl(s: string): boolean {
  return /^\w+:\/\//.test(s);
}

/**
 * Where the userinfo of `rest` (a URL after `scheme://`, query and fragment removed) ends: the
 * index of its `@`, or -1 when it has none. Go's rule (the last `@` before the first `/`), plus
 * the case Go rejects but users write: a secret with an unencoded `/` (AWS secret keys often have
 * one), `KEY:abc/def@bucket/path`. Then the userinfo runs to the first `@` after the first `/`
 * (extended over any further `@` before the next `/`); an `@` later in the path stays path.
 */
export function userinfoEnd(rest: string): number {
  const slash = rest.indexOf("/");
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const at = authority.lastIndexOf("@");
  if (at >= 0) return at;
  // No `:` (no password), or `HOST:PORT` (an `@` later in the path is path): no userinfo. A
  // secret that starts with digits and a `/` is then misread as a port, and the redaction of
  // URL-shaped text (report/redact.ts) still hides it in every output.
  if (slash < 0 || !authority.includes(":") || /:\d{1,5}$/.test(authority)) return -1;
  const end = rest.indexOf("@", slash);
  if (end < 0) return -1;
  const next = rest.indexOf("/", end);
  const host = next >= 0 ? rest.slice(end + 1, next) : rest.slice(end + 1);
  const more = host.lastIndexOf("@");
  return more >= 0 ? end + 1 + more : end;
}

/** A URL for messages: no userinfo, no query string, no fragment. */
export function safeUrl(s: string): string {
  const m = /^([A-Za-z][\w+.-]*:\/\/)(.*)$/s.exec(s);
  if (!m) return s.replace(/[?#].*$/s, "");
  const rest = m[2].replace(/[?#].*$/s, "");
  return m[1] + rest.slice(userinfoEnd(rest) + 1);
}

interface SplitUrl {
  scheme: string;
  /** Decoded userinfo, if the URL had any. */
  user?: string;
  password?: string;
  host: string;
  /** Decoded path, as written (with its leading `/`). */
  path: string;
  query: URLSearchParams;
}

function decode(s: string, url: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new UsageError(`invalid percent-encoding in replica URL ${safeUrl(url)}`);
  }
}

/** Splits like Go's `url.Parse` for `scheme://[user[:pass]@]host/path?query#frag`. */
function splitUrl(s: string): SplitUrl {
  const m = /^([A-Za-z][\w+.-]*):\/\/(.*)$/s.exec(s);
  if (!m) throw new UsageError(`not a replica URL: ${safeUrl(s)} (expected s3://… or file://…)`);
  let rest = m[2];
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  let rawQuery = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    rawQuery = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let user: string | undefined;
  let password: string | undefined;
  const at = userinfoEnd(rest);
  if (at >= 0) {
    const info = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = info.indexOf(":");
    user = decode(colon >= 0 ? info.slice(0, colon) : info, s);
    if (colon >= 0) password = decode(info.slice(colon + 1), s);
  }
  const slash = rest.indexOf("/");
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash) : "";
  return {
    scheme: m[1].toLowerCase(),
    user,
    password,
    host: decode(authority, s),
    path: decode(path, s),
    query: new URLSearchParams(rawQuery),
  };
}

/** Bucket and path of a `gcs://BUCKET/PATH` URL, for the advice (never its userinfo). */
export function gcsBucketPath(url: string): { bucket?: string; path?: string } {
  try {
    const u = splitUrl(url);
    return { bucket: u.host || undefined, path: cleanKeyPath(u.path) };
  } catch {
    return {};
  }
}

/** The replica type a URL names (`webdavs` counts as `webdav`), or undefined for a non-URL. */
export function replicaTypeFromUrl(url: string): string | undefined {
  const m = /^(\w+):\/\//.exec(url);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  return scheme === "webdavs" ? "webdav" : scheme;
}

/** Litestream's `CleanReplicaURLPath`: cleaned, no leading `/`, "" for the root. */
function cleanKeyPath(p: string): string {
  if (p === "") return "";
  const c = cleanPath("/" + p).slice(1);
  return c === "." ? "" : c;
}

// ---------------------------------------------------------------------------------------------
// S3 host forms, endpoints, booleans

/** What a URL's host says: bucket, and for provider host forms the endpoint and region. */
export interface S3HostInfo {
  bucket: string;
  region?: string;
  endpoint?: string;
}

const AWS_HOST = /^(.+)\.s3(?:\.([^.]+))?\.amazonaws\.com$/;
const LOCALHOST = /^(?:(.+)\.)?localhost$/;
const PROVIDERS: { re: RegExp; endpoint: (region: string) => string }[] = [
  { re: /^(?:(.+)\.)?s3\.([^.]+)\.backblazeb2\.com$/, endpoint: (r) => `s3.${r}.backblazeb2.com` },
  { re: /^(?:(.+)\.)?s3\.filebase\.com$/, endpoint: () => "s3.filebase.com" },
  {
    re: /^(?:(.+)\.)?([^.]+)\.digitaloceanspaces\.com$/,
    endpoint: (r) => `${r}.digitaloceanspaces.com`,
  },
  { re: /^(?:(.+)\.)?s3\.([^.]+)\.scw\.cloud$/, endpoint: (r) => `s3.${r}.scw.cloud` },
  { re: /^(?:(.+)\.)?([^.]+)\.linodeobjects\.com$/, endpoint: (r) => `${r}.linodeobjects.com` },
];

function splitHostPort(hostport: string): [string, string | undefined] {
  const v6 = /^\[([^\]]*)\](?::(\d*))?$/.exec(hostport);
  if (v6) return [v6[1], v6[2] || undefined];
  const m = /^([^:]*):(\d*)$/.exec(hostport);
  return m ? [m[1], m[2] || undefined] : [hostport, undefined];
}

/**
 * Litestream's `s3.ParseHost`, v0.3 and v0.5 forms together:
 * `BUCKET.localhost[:PORT]` → http://localhost[:PORT] (us-east-1);
 * `BUCKET.s3[.REGION].amazonaws.com` → AWS (no endpoint);
 * `BUCKET.s3.REGION.backblazeb2.com`, `BUCKET.s3.filebase.com`, `BUCKET.REGION.digitaloceanspaces.com`,
 * `BUCKET.s3.REGION.scw.cloud`, `BUCKET.REGION.linodeobjects.com` → https://<provider endpoint>;
 * `BUCKET.HOST:PORT` (v0.5, MinIO style) → http://HOST:PORT;
 * anything else is the bucket name itself (`s3://my.bucket.com/db` → bucket `my.bucket.com`).
 */
export function parseS3Host(hostport: string): S3HostInfo {
  const [host, port] = splitHostPort(hostport);
  const withPort = (h: string) => (port ? `${h}:${port}` : h);
  let m = LOCALHOST.exec(host);
  if (m) {
    return { bucket: m[1] ?? "", region: "us-east-1", endpoint: `http://${withPort("localhost")}` };
  }
  m = AWS_HOST.exec(host);
  if (m) return { bucket: m[1], region: m[2] };
  for (const p of PROVIDERS) {
    m = p.re.exec(host);
    if (m) {
      const region = m.length > 2 ? m[2] : undefined;
      return {
        bucket: m[1] ?? "",
        region,
        endpoint: `https://${withPort(p.endpoint(region ?? ""))}`,
      };
    }
  }
  if (port !== undefined && !host.includes(".com")) {
    const dot = host.indexOf(".");
    if (dot < 0) return { bucket: "", endpoint: `http://${withPort(host)}` };
    return {
      bucket: host.slice(0, dot),
      region: "us-east-1",
      endpoint: `http://${withPort(host.slice(dot + 1))}`,
    };
  }
  return { bucket: host };
}

function endpointHost(endpoint: string): string {
  let rest = endpoint.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
  rest = rest.replace(/[?#].*$/s, "");
  rest = rest.slice(userinfoEnd(rest) + 1);
  return splitHostPort(rest.replace(/\/.*$/s, ""))[0];
}

/**
 * Hosts Litestream reaches over plain http when an endpoint has no scheme: localhost,
 * `*.localhost`, `*.local`, loopback and private IPv4 ranges; plus `::1`.
 */
export function isLocalHost(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local")) return true;
  if (host === "::1") return true;
  const ip = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(host);
  if (!ip) return false;
  const [a, b] = [Number(ip[1]), Number(ip[2])];
  return a === 127 || a === 10 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b <= 31);
}

/** Adds `https://` (or `http://` for local hosts) to an endpoint without a scheme. */
export function ensureEndpointScheme(endpoint: string): string {
  if (/^https?:\/\//i.test(endpoint)) return endpoint;
  return (isLocalHost(endpointHost(endpoint)) ? "http://" : "https://") + endpoint;
}

/** Validates a full endpoint URL; never echoes userinfo. */
function checkEndpoint(endpoint: string, where: string): string {
  const rest = endpoint.replace(/^[A-Za-z][\w+.-]*:\/\//, "").replace(/[?#].*$/s, "");
  let u: URL | undefined;
  try {
    u = new URL(endpoint);
  } catch {
    // Userinfo with a `/` in it makes the URL invalid; say what is really wrong below.
  }
  if (userinfoEnd(rest) >= 0 || u?.username || u?.password) {
    throw new UsageError(
      `endpoint ${safeUrl(endpoint)} ${where} must not contain credentials; ` +
        "use access-key-id/secret-access-key or the environment",
    );
  }
  if (!u) throw new UsageError(`invalid endpoint ${safeUrl(endpoint)} ${where}`);
  if (!u.hostname) throw new UsageError(`invalid endpoint ${safeUrl(endpoint)} ${where}: no host`);
  return endpoint;
}

export function isR2Endpoint(endpoint: string): boolean {
  return endpointHost(endpoint).endsWith(".r2.cloudflarestorage.com");
}

/** Litestream's `BoolQueryValue`: true/1/t/yes, false/0/f/no; other text counts as false. */
function queryBool(query: URLSearchParams, ...keys: string[]): boolean | undefined {
  for (const key of keys) {
    const raw = query.get(key);
    if (raw) return ["true", "1", "t", "yes"].includes(raw.toLowerCase());
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// S3 targets

/** S3 settings from litestream.yml: the replica's own keys, and top-level defaults. */
export interface S3Settings {
  bucket?: string;
  path?: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  skipVerify?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
}

export interface S3Input {
  /** Replica name for the target (configured `name`, else "s3"). */
  name: string;
  url?: string;
  /** The replica's own settings (config form). */
  replica?: S3Settings;
  /** Top-level defaults (config form): used only for what neither the replica nor its URL set. */
  defaults?: S3Settings;
  /** URL form (CLI argument): v0.5 then also honours `$LITESTREAM_S3_ENDPOINT`. */
  urlForm?: boolean;
  /** Says where the settings came from, for messages ("for replica s3 of /db in /etc/x.yml"). */
  where: string;
}

const nonEmpty = (s: string | undefined): string | undefined => (s ? s : undefined);

/** Splits an S3 access point URL (`s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME/PATH`). */
function splitAccessPoint(url: string): { bucket: string; region?: string; path: string } {
  let rest = url.slice("s3://".length).replace(/#.*$/s, "");
  rest = rest.replace(/\?.*$/s, "");
  const marker = rest.toLowerCase().indexOf(":accesspoint/");
  if (marker < 0) throw new UsageError(`invalid S3 access point URL ${safeUrl(url)}`);
  const nameStart = marker + ":accesspoint/".length;
  const slash = rest.indexOf("/", nameStart);
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (bucket.length <= nameStart) {
    throw new UsageError(`invalid S3 access point URL ${safeUrl(url)}`);
  }
  const region = nonEmpty(bucket.split(":")[3]);
  return { bucket, region, path: slash < 0 ? "" : rest.slice(slash + 1) };
}

/** What an `s3://` URL says: host form, path, v0.5 query parameters, userinfo. */
interface S3UrlParts {
  bucket: string;
  path: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  skipVerify?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

function parseS3Url(url: string, where: string): S3UrlParts {
  let parts: S3UrlParts;
  let query: URLSearchParams;
  if (url.toLowerCase().startsWith("s3://arn:")) {
    const ap = splitAccessPoint(url);
    parts = { bucket: ap.bucket, region: ap.region, path: cleanKeyPath(ap.path) };
    const q = url.indexOf("?");
    query = new URLSearchParams(q >= 0 ? url.slice(q + 1).replace(/#.*$/s, "") : "");
  } else {
    const u = splitUrl(url);
    parts = { ...parseS3Host(u.host), path: cleanKeyPath(u.path) };
    query = u.query;
    if (u.user !== undefined || u.password !== undefined) {
      if (!u.user || !u.password) {
        throw new UsageError(
          `credentials in a replica URL need both parts (ACCESS_KEY_ID:SECRET@bucket) ${where}`,
        );
      }
      parts.credentials = { accessKeyId: u.user, secretAccessKey: u.password };
    }
  }
  parts.forcePathStyle = queryBool(query, "forcePathStyle", "force-path-style");
  const endpoint = query.get("endpoint");
  if (endpoint) {
    parts.endpoint = ensureEndpointScheme(endpoint);
    parts.forcePathStyle ??= true; // a custom endpoint implies path style unless set to false
  }
  const region = query.get("region");
  if (region) parts.region = region;
  parts.skipVerify = queryBool(query, "skipVerify", "skip-verify");
  return parts;
}

/**
 * Builds an S3 target from a URL and/or config settings. Precedence per field: the replica's own
 * keys, then its URL (query parameters over the host form), then top-level defaults, then the
 * environment, then built-in defaults. Throws `LitewardenError` (2) for settings Litestream
 * rejects: `url` with `path` or `bucket`, no bucket, a bad endpoint, half a key pair.
 */
export function buildS3Target(input: S3Input, env: Env): S3ReplicaTarget {
  const rep = input.replica ?? {};
  const def = input.defaults ?? {};
  const { url, where } = input;

  let u: S3UrlParts | undefined;
  if (url !== undefined) {
    if (nonEmpty(rep.path) !== undefined) {
      throw new UsageError(`cannot specify url and path for an s3 replica ${where}`);
    }
    if (nonEmpty(rep.bucket) !== undefined) {
      throw new UsageError(`cannot specify url and bucket for an s3 replica ${where}`);
    }
    u = parseS3Url(url, where);
    if (!u.bucket) {
      const suffix = input.urlForm ? "" : ` ${where}`;
      throw new UsageError(
        `no bucket in replica URL ${safeUrl(url)}; use s3://BUCKET/PREFIX${suffix}`,
      );
    }
  }

  const bucket = u ? u.bucket : nonEmpty(rep.bucket) ?? nonEmpty(def.bucket);
  if (!bucket) throw new UsageError(`bucket required for an s3 replica ${where}`);

  const rawPath = u ? u.path : rep.path ?? "";
  const path = u ? u.path : cleanKeyPath(rawPath);

  let endpoint = nonEmpty(rep.endpoint) ?? u?.endpoint ?? nonEmpty(def.endpoint);
  if (endpoint === undefined && input.urlForm) endpoint = nonEmpty(env.LITESTREAM_S3_ENDPOINT);
  if (endpoint !== undefined) endpoint = checkEndpoint(ensureEndpointScheme(endpoint), where);

  const explicitPathStyle = rep.forcePathStyle ?? u?.forcePathStyle ?? def.forcePathStyle;
  const forcePathStyle = explicitPathStyle ?? endpoint !== undefined;
  const skipVerify = u?.skipVerify ?? rep.skipVerify ?? def.skipVerify ?? false;

  let region = nonEmpty(rep.region) ?? u?.region ?? nonEmpty(def.region);
  let regionGuessed = false;
  if (region === undefined && endpoint !== undefined && isR2Endpoint(endpoint)) region = "auto";
  region ??= nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION);
  if (region === undefined) {
    region = "us-east-1";
    regionGuessed = endpoint === undefined;
  }

  const credentials = resolveCredentials(rep, def, u?.credentials, env, where);

  const target: S3ReplicaTarget = {
    type: "s3",
    name: input.name,
    bucket,
    path,
    region,
    forcePathStyle,
    skipVerify,
  };
  if (endpoint !== undefined) target.endpoint = endpoint;
  if (credentials) target.credentials = credentials;
  if (rawPath !== path) target.rawPath = rawPath;
  if (regionGuessed) target.regionGuessed = true;
  return target;
}

/**
 * Credentials, first that applies: config keys (the replica's, each falling back to the top-level
 * one, as Litestream merges them), then URL userinfo (a litewarden extension), then the
 * environment as Litestream reads it: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, each one
 * falling back on its own to `LITESTREAM_ACCESS_KEY_ID` / `LITESTREAM_SECRET_ACCESS_KEY`
 * (Litestream copies a LITESTREAM_* variable into AWS_* only when that AWS_* one is unset; an
 * empty value counts as unset, as in v0.5's URL form), else undefined (the SDK's default chain:
 * profiles, instance roles). `AWS_SESSION_TOKEN` belongs to the AWS_* key pair: it is attached
 * only when both halves come from AWS_*.
 */
function resolveCredentials(
  rep: S3Settings,
  def: S3Settings,
  fromUrl: { accessKeyId: string; secretAccessKey: string } | undefined,
  env: Env,
  where: string,
): S3ReplicaTarget["credentials"] {
  const keyId = nonEmpty(rep.accessKeyId) ?? nonEmpty(def.accessKeyId);
  const secret = nonEmpty(rep.secretAccessKey) ?? nonEmpty(def.secretAccessKey);
  if (keyId !== undefined && secret !== undefined) {
    return { accessKeyId: keyId, secretAccessKey: secret };
  }
  if (keyId !== undefined || secret !== undefined) {
    const [has, lacks] = keyId !== undefined
      ? ["access-key-id", "secret-access-key"]
      : ["secret-access-key", "access-key-id"];
    throw new UsageError(`${has} is set but ${lacks} is empty ${where}`);
  }
  if (fromUrl) return fromUrl;
  const awsId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const awsSecret = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  const id = awsId ?? nonEmpty(env.LITESTREAM_ACCESS_KEY_ID);
  const sec = awsSecret ?? nonEmpty(env.LITESTREAM_SECRET_ACCESS_KEY);
  if (id === undefined || sec === undefined) return undefined;
  const creds: NonNullable<S3ReplicaTarget["credentials"]> = {
    accessKeyId: id,
    secretAccessKey: sec,
  };
  const token = nonEmpty(env.AWS_SESSION_TOKEN);
  if (token !== undefined && awsId !== undefined && awsSecret !== undefined) {
    creds.sessionToken = token;
  }
  return creds;
}

// ---------------------------------------------------------------------------------------------
// File targets and the URL entry point

/**
 * The directory of a `file://` URL: `file:///abs/dir`; also (for demos) `file://./rel`,
 * `file://rel/dir` relative to `cwd`, `file://~/dir` under $HOME, `file://localhost/abs`.
 * Query strings are ignored, as in v0.5.
 */
export function fileUrlPath(url: string, cwd: string, env: Env): string {
  let rest = url.replace(/^file:\/\//i, "").replace(/[?#].*$/s, "");
  rest = decode(rest, url);
  if (rest.startsWith("localhost/")) rest = rest.slice("localhost".length);
  if (rest === "" || rest === "localhost") {
    throw new UsageError(`no directory in replica URL ${safeUrl(url)}; use file:///abs/dir`);
  }
  return expandPath(rest, cwd, env, "replica URL");
}

export interface UrlOptions {
  /** Base for relative `file://` URLs; default `Deno.cwd()`. */
  cwd?: string;
  /** Target name; default the type. */
  name?: string;
}

/**
 * A replica URL given on the command line (or as a config `url:`) → target. Unsupported
 * backends (`gcs://`, `gs://`, `abs://`, …) throw the "not supported yet" error (2).
 */
export function parseReplicaUrl(url: string, env: Env, opts: UrlOptions = {}): ReplicaTarget {
  const type = replicaTypeFromUrl(url);
  if (type === undefined) {
    throw new UsageError(
      `not a replica URL: ${safeUrl(url)} (expected s3://BUCKET/PREFIX or file:///DIR)`,
    );
  }
  if (type === "file") {
    const target: FileReplicaTarget = {
      type: "file",
      name: opts.name ?? "file",
      path: fileUrlPath(url, opts.cwd ?? Deno.cwd(), env),
    };
    return target;
  }
  if (type === "s3") {
    return buildS3Target(
      { name: opts.name ?? "s3", url, urlForm: true, where: `in ${safeUrl(url)}` },
      env,
    );
  }
  if (type === "sftp") {
    return buildSftpTarget(
      { name: opts.name ?? "sftp", url, where: `in ${safeUrl(url)}`, cwd: opts.cwd ?? Deno.cwd() },
      env,
    );
  }
  if (type === "abs") {
    return buildAbsTarget({ name: opts.name ?? "abs", url, where: `in ${safeUrl(url)}` }, env);
  }
  if (UNSUPPORTED_TYPES.includes(type)) {
    throw new UsageError(unsupportedTypeMessage(type, gcsBucketPath(url)));
  }
  throw new UsageError(
    `unknown replica URL scheme ${type}:// in ${
      safeUrl(url)
    } (supported: file://, s3://, sftp://, abs://)`,
  );
}

// ---------------------------------------------------------------------------------------------
// SFTP targets

/** SFTP keys of a replica in litestream.yml (v0.3.13; `host-key` is v0.5's). */
export interface SftpSettings {
  host?: string;
  user?: string;
  password?: string;
  keyPath?: string;
  path?: string;
  hostKey?: string;
}

export interface SftpInput {
  name: string;
  url?: string;
  replica?: SftpSettings;
  where: string;
  /** Base for a relative `key-path`. */
  cwd: string;
}

/** A host key as an authorized_keys line (`[options] TYPE BASE64 [comment]`) or `SHA256:…`. */
const HOST_KEY_LINE =
  /(?:^|\s)((?:ssh|ecdsa-sha2|sk-ssh|sk-ecdsa-sha2)-[\w@.-]+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/;
const HOST_KEY_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

/** The pinned host key in its canonical form (`TYPE BASE64` or `SHA256:…`), or an error. */
export function parseHostKey(value: string, where: string): string {
  const v = value.trim();
  if (HOST_KEY_FINGERPRINT.test(v)) return v.replace(/=$/, "");
  const m = HOST_KEY_LINE.exec(v);
  if (!m) {
    throw new UsageError(
      `host-key ${where} is not a public key (expected "ssh-ed25519 AAAA…" as ssh-keyscan prints it, or a SHA256:… fingerprint)`,
    );
  }
  return `${m[1]} ${m[2]}`;
}

const ON = ["1", "true", "yes"];

/**
 * Builds an SFTP target the way Litestream v0.3.13 does: config keys first, each filled from the
 * URL when empty (host with port, user and password from the userinfo, path); `url` together with
 * `path` or `host` is an error; host and user are required; the port defaults to 22.
 * litewarden additions, all optional: `host-key` (v0.5's key; also `LITEWARDEN_SFTP_HOST_KEY`),
 * `LITEWARDEN_SFTP_KEY_PATH` (a key for the URL form), `LITEWARDEN_SFTP_KNOWN_HOSTS`
 * (`:`-separated files; default `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`) and
 * `LITEWARDEN_SFTP_INSECURE_HOST_KEY=1` (accept any host key, as Litestream v0.3.13 does).
 */
export function buildSftpTarget(input: SftpInput, env: Env): SftpReplicaTarget {
  const rep = input.replica ?? {};
  const { url, where } = input;
  let host = nonEmpty(rep.host);
  let user = nonEmpty(rep.user);
  let password = nonEmpty(rep.password);
  let path = nonEmpty(rep.path);
  if (url !== undefined) {
    if (path !== undefined) {
      throw new UsageError(`cannot specify url and path for an sftp replica ${where}`);
    }
    if (host !== undefined) {
      throw new UsageError(`cannot specify url and host for an sftp replica ${where}`);
    }
    const u = splitUrl(url);
    host = nonEmpty(u.host);
    user ??= nonEmpty(u.user);
    password ??= nonEmpty(u.password);
    path = nonEmpty(u.path);
  }
  if (host === undefined) throw new UsageError(`host required for an sftp replica ${where}`);
  if (user === undefined) {
    throw new UsageError(
      `user required for an sftp replica ${where} (sftp://USER@HOST/PATH or user:)`,
    );
  }
  const [hostname, portText] = splitHostPort(host);
  const port = portText === undefined ? 22 : Number(portText);
  const badName = !hostname || (hostname.includes(":") && !/^[0-9a-f:.]+$/i.test(hostname));
  if (badName || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(
      `invalid sftp host ${JSON.stringify(host)} ${where}; use HOST or HOST:PORT`,
    );
  }
  const cleaned = path === undefined ? "" : cleanPath(path);
  const keyPath = nonEmpty(rep.keyPath) ?? nonEmpty(env.LITEWARDEN_SFTP_KEY_PATH);
  const hostKey = nonEmpty(rep.hostKey) ?? nonEmpty(env.LITEWARDEN_SFTP_HOST_KEY);
  const home = nonEmpty(env.HOME);
  const knownHosts = nonEmpty(env.LITEWARDEN_SFTP_KNOWN_HOSTS)?.split(":").filter((p) => p) ??
    [...(home ? [`${home}/.ssh/known_hosts`] : []), "/etc/ssh/ssh_known_hosts"];
  const target: SftpReplicaTarget = {
    type: "sftp",
    name: input.name,
    host: hostname,
    port,
    user,
    path: cleaned === "." ? "" : cleaned,
    knownHosts: knownHosts.map((p) => expandPath(p, input.cwd, env, "known_hosts path")),
    insecureHostKey: ON.includes((env.LITEWARDEN_SFTP_INSECURE_HOST_KEY ?? "").toLowerCase()),
  };
  if (password !== undefined) target.password = password;
  if (keyPath !== undefined) target.keyPath = expandPath(keyPath, input.cwd, env, "key-path");
  if (hostKey !== undefined) target.hostKey = parseHostKey(hostKey, where);
  return target;
}
