/**
 * Azure Blob Storage replicas (`type: abs`), as Litestream v0.3.13 reads them:
 * `abs://ACCOUNT@CONTAINER/PATH`, or config keys `account-name`, `account-key`, `bucket` (the
 * container), `path` and `endpoint` (emulators, sovereign clouds); the key falls back to
 * `$LITESTREAM_AZURE_ACCOUNT_KEY`. Config keys win over the URL's parts, as in Litestream.
 *
 * Two deliberate differences: a URL may carry `?endpoint=` (Litestream's URL form cannot reach an
 * emulator at all), and a URL with a password (`abs://ACCOUNT:KEY@…`) is refused instead of the
 * password being ignored, so a key pasted into a URL is not silently passed around.
 */
import { UsageError } from "../errors.ts";
import { cleanPath, type Env } from "./expand.ts";
import type { AbsReplicaTarget } from "./target.ts";

/** The abs keys of a replica in litestream.yml. */
export interface AbsSettings {
  bucket?: string;
  path?: string;
  endpoint?: string;
  accountName?: string;
  accountKey?: string;
}

export interface AbsInput {
  /** Replica name (configured `name`, else "abs"). */
  name: string;
  url?: string;
  replica?: AbsSettings;
  /** Says where the settings came from, for messages. */
  where: string;
}

const nonEmpty = (s: string | undefined): string | undefined => (s ? s : undefined);

/** An abs URL for messages: no userinfo password, no query. */
function shownUrl(url: string): string {
  return url.replace(/^(abs:\/\/)([^@/?#]*:[^@/?#]*@)/i, (_m, s: string, info: string) => {
    return `${s}${info.slice(0, info.indexOf(":"))}@`;
  }).replace(/[?#].*$/s, "");
}

/** Litestream's `strings.TrimPrefix(path.Clean(p), "/")`, with "." (no path) as "". */
function blobPrefix(p: string): string {
  const c = cleanPath(p).replace(/^\/+/, "");
  return c === "." ? "" : c;
}

interface AbsUrlParts {
  accountName?: string;
  container: string;
  path: string;
  endpoint?: string;
}

function parseAbsUrl(url: string, where: string): AbsUrlParts {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(
      `invalid replica URL ${shownUrl(url)}; use abs://ACCOUNT@CONTAINER/PATH ${where}`,
    );
  }
  if (u.password) {
    throw new UsageError(
      `replica URL ${shownUrl(url)} carries a password; the account key belongs in account-key ` +
        `or $LITESTREAM_AZURE_ACCOUNT_KEY, never in the URL ${where}`,
    );
  }
  let path: string;
  let accountName: string | undefined;
  try {
    path = decodeURIComponent(u.pathname);
    accountName = u.username ? decodeURIComponent(u.username) : undefined;
  } catch {
    throw new UsageError(`invalid percent-encoding in replica URL ${shownUrl(url)} ${where}`);
  }
  const parts: AbsUrlParts = { accountName, container: u.hostname, path: blobPrefix(path) };
  const endpoint = u.searchParams.get("endpoint");
  if (endpoint) parts.endpoint = endpoint;
  return parts;
}

/** A service endpoint must be an http(s) URL without credentials (Go's url.Parse needs a scheme). */
function checkEndpoint(endpoint: string, where: string): string {
  let u: URL | undefined;
  try {
    u = new URL(endpoint);
  } catch {
    u = undefined;
  }
  if (!u || !/^https?:$/.test(u.protocol) || !u.hostname) {
    throw new UsageError(
      `invalid endpoint ${endpoint.replace(/[?#].*$/s, "")} ${where}; use a full URL such as ` +
        "http://127.0.0.1:10000/devstoreaccount1",
    );
  }
  if (u.username || u.password || u.search) {
    throw new UsageError(
      `endpoint ${u.origin}${u.pathname} ${where} must not contain credentials or a query; ` +
        "set account-key or $LITESTREAM_AZURE_ACCOUNT_KEY",
    );
  }
  return endpoint.replace(/\/+$/, "");
}

/**
 * Builds an abs target from a URL and/or config keys. Throws a usage error (exit 2) for what
 * Litestream rejects (`url` with `path` or `bucket`, no container) and for what cannot work
 * (no account name, no account key: Litestream v0.3.13 signs every request with the shared key).
 */
export function buildAbsTarget(input: AbsInput, env: Env): AbsReplicaTarget {
  const rep = input.replica ?? {};
  const { url, where } = input;
  let u: AbsUrlParts | undefined;
  if (url !== undefined) {
    if (nonEmpty(rep.path) !== undefined) {
      throw new UsageError(`cannot specify url and path for an abs replica ${where}`);
    }
    if (nonEmpty(rep.bucket) !== undefined) {
      throw new UsageError(`cannot specify url and bucket for an abs replica ${where}`);
    }
    u = parseAbsUrl(url, where);
  }
  const container = nonEmpty(rep.bucket) ?? nonEmpty(u?.container);
  if (!container) {
    throw new UsageError(
      `no container for an abs replica ${where}; set bucket or use abs://ACCOUNT@CONTAINER/PATH`,
    );
  }
  const accountName = nonEmpty(rep.accountName) ?? u?.accountName;
  if (!accountName) {
    throw new UsageError(
      `no storage account for an abs replica ${where}; set account-name or use abs://ACCOUNT@CONTAINER/PATH`,
    );
  }
  const accountKey = nonEmpty(rep.accountKey) ?? nonEmpty(env.LITESTREAM_AZURE_ACCOUNT_KEY);
  if (!accountKey) {
    throw new UsageError(
      `no account key for abs replica ${input.name} ${where}; set account-key or $LITESTREAM_AZURE_ACCOUNT_KEY`,
    );
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey) || accountKey.length % 4 !== 0) {
    throw new UsageError(
      `the account key for abs replica ${input.name} is not base64 ${where}; copy key1 or key2 from the storage account's access keys`,
    );
  }
  const target: AbsReplicaTarget = {
    type: "abs",
    name: input.name,
    accountName,
    container,
    path: u ? u.path : blobPrefix(rep.path ?? ""),
    accountKey,
  };
  const endpoint = nonEmpty(rep.endpoint) ?? u?.endpoint;
  if (endpoint !== undefined) target.endpoint = checkEndpoint(endpoint, where);
  return target;
}
