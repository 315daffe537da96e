/**
 * The vault's files in storage, beside the replica (under `.litewarden/files/`, which Litestream
 * and every replica listing ignore) or at the root of a separate location the operator names.
 *
 *   attachments/<cipher_uuid>/<id>, sends/<send_uuid>/<file_id>
 *       immutable: Vaultwarden never rewrites such a path (a new upload gets a new id), so the
 *       object has the file's bytes under the same relative path and is never overwritten.
 *   versions/<name>/<stamp>-<digest>[.age]   (name: rsa_key.pem, config.json)
 *       one object per content the file had; `stamp` is the version's UTC time
 *       (`YYYYMMDDTHHMMSS.sssZ`, so key order is time order), `digest` the first 16 hex digits of
 *       the plaintext's SHA-256 (an unchanged file is not stored again, without decrypting
 *       anything), `.age` when encrypted with the replica's age recipients.
 */
import type { ObjectInfo, Storage } from "../storage/storage.ts";

export const FILES_BASE = ".litewarden/files/";
export const VERSIONS_DIR = "versions/";

/** The two files no row names, which are versioned instead of immutable. */
export type SecretName = "rsa_key.pem" | "config.json";
export const SECRET_NAMES: readonly SecretName[] = ["rsa_key.pem", "config.json"];

/** An attachment or file-send body a database row references. */
export interface ReferencedFile {
  kind: "attachment" | "send";
  /** `attachments/<cipher_uuid>/<id>` or `sends/<send_uuid>/<file_id>`: local and stored path. */
  rel: string;
  /** The size the row records (the real size once an upload finished); null when absent. */
  size: number | null;
  /** When the row last changed (for a grace period while an upload runs); null when unknown. */
  rowTime: Date | null;
}

/** Where an app keeps the files on disk; undefined = not local (nothing to keep). */
export interface VaultPaths {
  dataDir: string;
  attachmentsDir: string | undefined;
  sendsDir: string | undefined;
  secrets: Record<SecretName, string | undefined>;
}

/** A storage and the key prefix the files live under (`FILES_BASE` or "" for a separate one). */
export interface VaultStore {
  storage: Storage;
  base: string;
}

/** One stored version of a secret file. */
export interface VersionObject {
  name: SecretName;
  time: Date;
  digest: string;
  encrypted: boolean;
  /** Full key relative to the storage root. */
  key: string;
  size: number;
}

/** Path segments Vaultwarden generates (UUIDs, hex ids): nothing that could leave the folder. */
const SEGMENT = /^[A-Za-z0-9_-]{1,128}$/;

/** `attachments/<id>/<id>` or `sends/<id>/<id>` with safe segments. */
export function isVaultFileRel(rel: string): boolean {
  const parts = rel.split("/");
  return parts.length === 3 && (parts[0] === "attachments" || parts[0] === "sends") &&
    SEGMENT.test(parts[1]) && SEGMENT.test(parts[2]);
}

/** The local path of a stored relative path; undefined when that kind is not kept locally. */
export function localPathOf(paths: VaultPaths, rel: string): string | undefined {
  const slash = rel.indexOf("/");
  const dir = rel.startsWith("attachments/") ? paths.attachmentsDir : paths.sendsDir;
  return dir === undefined ? undefined : `${dir}/${rel.slice(slash + 1)}`;
}

export function fileObjectKey(store: VaultStore, rel: string): string {
  return store.base + rel;
}

/** `20261204T041500.123Z`: fixed width, so key order is time order. */
export function formatStamp(t: Date): string {
  return t.toISOString().replace(/[-:]/g, "");
}

export function parseStamp(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/.exec(s);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** A version's key relative to the store's base. */
export function versionKey(
  name: SecretName,
  time: Date,
  digest: string,
  encrypted: boolean,
): string {
  return `${VERSIONS_DIR}${name}/${formatStamp(time)}-${digest}${encrypted ? ".age" : ""}`;
}

/** The parts of a version key relative to the base; undefined for anything else. */
export function parseVersionKey(
  rel: string,
): Omit<VersionObject, "key" | "size"> | undefined {
  if (!rel.startsWith(VERSIONS_DIR)) return undefined;
  const parts = rel.slice(VERSIONS_DIR.length).split("/");
  if (parts.length !== 2) return undefined;
  const name = SECRET_NAMES.find((n) => n === parts[0]);
  const m = /^(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{16})(\.age)?$/.exec(parts[1]);
  if (!name || !m) return undefined;
  const time = parseStamp(m[1]);
  if (!time) return undefined;
  return { name, time, digest: m[2], encrypted: m[3] !== undefined };
}

/** The first 16 hex digits of the SHA-256 of `data`. */
export async function contentDigest(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  return [...hash.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every stored attachment and send object, by relative path. */
export async function listFileObjects(store: VaultStore): Promise<Map<string, ObjectInfo>> {
  const out = new Map<string, ObjectInfo>();
  for (const dir of ["attachments/", "sends/"]) {
    for await (const obj of store.storage.list(store.base + dir)) {
      const rel = obj.key.slice(store.base.length);
      if (isVaultFileRel(rel)) out.set(rel, obj);
    }
  }
  return out;
}

/** Every stored version per name, oldest first. */
export async function listVersions(store: VaultStore): Promise<Map<SecretName, VersionObject[]>> {
  const out = new Map<SecretName, VersionObject[]>(SECRET_NAMES.map((n) => [n, []]));
  for await (const obj of store.storage.list(store.base + VERSIONS_DIR)) {
    const v = parseVersionKey(obj.key.slice(store.base.length));
    if (v) out.get(v.name)!.push({ ...v, key: obj.key, size: obj.size });
  }
  for (const list of out.values()) {
    list.sort((a, b) => a.time.getTime() - b.time.getTime() || (a.key < b.key ? -1 : 1));
  }
  return out;
}

/** The version in effect at `t`: the newest at or before it. `versions` oldest first. */
export function versionAt(versions: readonly VersionObject[], t: Date): VersionObject | undefined {
  let found: VersionObject | undefined;
  for (const v of versions) {
    if (v.time.getTime() <= t.getTime()) found = v;
    else break;
  }
  return found;
}
