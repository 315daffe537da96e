/**
 * `verify`'s files layer: the whole vault beside the database. Every attachment and file-send row
 * must have its body (stored object or local file) with the row's size, and the signing key and
 * the admin-page settings that go with the point must exist and parse. Rows younger than a grace
 * period belong to an upload still in progress (Vaultwarden writes the row before the body), so
 * they warn instead of failing.
 *
 * Messages give counts and sizes only: attachment file names are encrypted and stay unread, and
 * the JSON `objects` carry the relative paths (item uuid and attachment id), never a name.
 */
import { createPrivateKey } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { fail, pass, skip, warn } from "../../checks/check.ts";
import type { Check } from "../../checks/check.ts";
import type { ErrorKind } from "../../errors.ts";
import { LitewardenError, PermissionError } from "../../errors.ts";
import { formatAge, formatBytes, formatTime } from "../../lib/format.ts";
import { readOnlyUri } from "../../lib/sqlite.ts";
import {
  listFileObjects,
  listVersions,
  localPathOf,
  versionAt,
} from "../../replica/vault_files.ts";
import type {
  ReferencedFile,
  SecretName,
  VaultPaths,
  VaultStore,
  VersionObject,
} from "../../replica/vault_files.ts";
import { readReferencedFiles, referencedFiles } from "./data_folder.ts";
import type { ReferencedFiles } from "./data_folder.ts";
import { readBackfill } from "../../replica/vault_backfill.ts";
import type { BackfillState } from "../../replica/vault_backfill.ts";
import { readAll } from "../../storage/storage.ts";
import type { Storage } from "../../storage/storage.ts";

/** `--files-grace` when not given: a row younger than this may still be uploading. */
export const DEFAULT_FILES_GRACE_MS = 3_600_000;

/** A key or settings file larger than this is not one (and is not read into memory). */
const MAX_SECRET_BYTES = 1 << 20;

export interface FilesJudgement {
  /** Where the bodies were looked for, for messages: a storage location or a local folder. */
  where: string;
  /** Rows whose `rowTime` is after this are in their grace period. */
  graceStart: Date;
  graceMs: number;
  /** The kind of a failure: `damaged` for a replica's objects, `appCheck` for a local folder. */
  failKind: ErrorKind;
  /** Set while the companion's one-time backfill runs: missing bodies may not be uploaded yet. */
  backfillRunning?: boolean;
  /**
   * Nothing of the vault is stored at all: the companion's file upload is not in use here (the
   * data folder may live on a disk), so the rows are not checked (skip).
   */
  nothingStored?: boolean;
}

/**
 * `files.attachments` and `files.sends`: each row's body exists (`sizeOf` answers its size, or
 * undefined when it is missing) with the row's size when the row records one.
 */
export function fileRowChecks(
  files: readonly ReferencedFile[],
  sizeOf: (rel: string) => number | undefined,
  j: FilesJudgement,
): { checks: Check[]; counts: FilesCounts } {
  const a = judgeKind("attachment", files.filter((f) => f.kind === "attachment"), sizeOf, j);
  const s = judgeKind("send", files.filter((f) => f.kind === "send"), sizeOf, j);
  return { checks: [a.check, s.check], counts: { attachments: a.counts, sends: s.counts } };
}

/** What verify found for one kind of body (JSON `files.attachments`, `files.sends`). */
export interface BodyCounts {
  rows: number;
  /** Bodies found, and their bytes. */
  present: number;
  bytes: number;
  /** Rows past the grace period without a body, or whose body has another size. */
  missing: number;
  wrongSize: number;
  /** Rows within the grace period without their (whole) body: uploads in progress. */
  uploading: number;
}

export interface FilesCounts {
  attachments: BodyCounts;
  sends: BodyCounts;
}

function judgeKind(
  kind: "attachment" | "send",
  files: readonly ReferencedFile[],
  sizeOf: (rel: string) => number | undefined,
  j: FilesJudgement,
): { check: Check; counts: BodyCounts } {
  const id = kind === "attachment" ? "files.attachments" : "files.sends";
  const noun = kind === "attachment" ? "attachment" : "file-send";
  const missing: ReferencedFile[] = [];
  const wrongSize: ReferencedFile[] = [];
  const uploading: ReferencedFile[] = [];
  let present = 0;
  let bytes = 0;
  for (const f of files) {
    const actual = sizeOf(f.rel);
    if (actual !== undefined) {
      present++;
      bytes += actual;
      if (f.size === null || f.size === actual) continue;
    }
    if (f.rowTime !== null && f.rowTime.getTime() > j.graceStart.getTime()) uploading.push(f);
    else if (actual === undefined) missing.push(f);
    else wrongSize.push(f);
  }
  const counts: BodyCounts = {
    rows: files.length,
    present,
    bytes,
    missing: missing.length,
    wrongSize: wrongSize.length,
    uploading: uploading.length,
  };
  const withObjects = (check: Check): { check: Check; counts: BodyCounts } => ({
    check: { ...check, objects: [...missing, ...wrongSize, ...uploading].map((f) => f.rel) },
    counts,
  });
  if (files.length === 0) return { check: pass(id, `no ${noun} rows`), counts };
  if (j.nothingStored) {
    const check = skip(
      id,
      `${files.length} ${noun} row(s) not checked: no vault files are stored in ${j.where} (the companion's file upload is not in use here)`,
    );
    return { check, counts };
  }

  const base = `${files.length} ${noun} row(s), ${present} bod${
    present === 1 ? "y" : "ies"
  } present (${formatBytes(bytes)}) in ${j.where}`;
  const uploadingText = uploading.length > 0
    ? `; ${uploading.length} row(s) younger than the grace period (${
      formatAge(j.graceMs)
    }) lack their body or its full size: an upload in progress`
    : "";
  const parts: string[] = [];
  if (missing.length > 0) {
    parts.push(
      `${missing.length} row(s) have no body (${
        formatBytes(missing.reduce((n, f) => n + (f.size ?? 0), 0))
      } as the rows record it)`,
    );
  }
  if (wrongSize.length > 0) {
    parts.push(
      `${wrongSize.length} bod${
        wrongSize.length === 1 ? "y has" : "ies have"
      } another size than its row records`,
    );
  }
  if (parts.length === 0) {
    return uploading.length > 0
      ? withObjects(warn(id, `${base}${uploadingText}`))
      : { check: pass(id, `${base}, each with the size its row records`), counts };
  }
  const text = `${base}; ${parts.join(", ")}${uploadingText}`;
  if (j.backfillRunning) {
    return withObjects(warn(
      id,
      `${text}: the companion's first upload of existing files is still running`,
    ));
  }
  return withObjects(fail(
    id,
    `${text}: ${
      j.failKind === "damaged"
        ? "a restore of this point lacks them (an upload that never finished, or lost objects)"
        : "Vaultwarden lists them, but they cannot be downloaded"
    }`,
    j.failKind,
  ));
}

/** What is wrong with `bytes` as `name`'s content; undefined when it is fine. */
export function secretProblem(name: SecretName, bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return "it is empty";
  if (name === "rsa_key.pem") return rsaKeyProblem(bytes);
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return "it is JSON but not an object of settings";
    }
    return undefined;
  } catch {
    return "it is not JSON"; // the parser's message could quote the content: never printed
  }
}

/** A PEM RSA private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, as Vaultwarden writes it) or PKCS#8. */
function rsaKeyProblem(bytes: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(bytes);
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(text)) {
    return "it is not a PEM private key";
  }
  try {
    const key = createPrivateKey({ key: text, format: "pem" });
    if (key.asymmetricKeyType !== "rsa") return `it is a ${key.asymmetricKeyType} key, not RSA`;
    return undefined;
  } catch {
    return "it does not parse as a PEM RSA private key"; // never the parser's text (key bytes)
  }
}

const SECRET_CHECK_ID: Record<SecretName, string> = {
  "rsa_key.pem": "files.rsa-key",
  "config.json": "files.config",
};

/**
 * `files.rsa-key` and `files.config` for a replica's point at `pointTime`: the newest stored
 * version at or before it is read (decrypted by the storage's age layer) and parsed. No key
 * stored at all warns (the operator may give it from a secret instead); none for the point while
 * later ones exist warns too (the point predates the first upload: a restore at it starts with a
 * new key). A version that does not parse fails.
 */
export async function storedSecretChecks(
  storage: Storage,
  versions: ReadonlyMap<SecretName, readonly VersionObject[]>,
  pointTime: Date,
  failKind: ErrorKind,
): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [name, id] of Object.entries(SECRET_CHECK_ID) as [SecretName, string][]) {
    const all = versions.get(name) ?? [];
    const chosen = versionAt(all, pointTime);
    if (!chosen) {
      const none = name === "rsa_key.pem"
        ? warn(
          id,
          all.length === 0
            ? `no rsa_key.pem is stored in ${storage.location}: unless the key is given from a secret, Vaultwarden makes a new one at a restore (every client logged out)`
            : `no rsa_key.pem version at or before ${
              formatTime(pointTime)
            } (the first of ${all.length} is later): a restore of this point starts with a new key (every client logged out)`,
        )
        : skip(
          id,
          all.length === 0
            ? "no config.json stored (no settings saved from the admin page)"
            : `no config.json version at or before ${formatTime(pointTime)}`,
        );
      checks.push(none);
      continue;
    }
    const label = `${name} version of ${formatTime(chosen.time)}${
      chosen.encrypted ? " (age-encrypted)" : ""
    }, ${all.length} stored`;
    if (chosen.size > MAX_SECRET_BYTES) {
      checks.push(
        fail(id, `${label}: ${formatBytes(chosen.size)} is too large to be one`, failKind),
      );
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = await readAll(await storage.get(chosen.key));
    } catch (err) {
      if (!(err instanceof LitewardenError)) throw err;
      checks.push(fail(id, `${label}: ${err.message}`, err.kind));
      continue;
    }
    const problem = secretProblem(name, bytes);
    checks.push(
      problem ? fail(id, `${label}: ${problem}`, failKind) : pass(
        id,
        `${label}: ${name === "rsa_key.pem" ? "a PEM RSA private key" : "JSON settings"}`,
      ),
    );
  }
  return checks;
}

/**
 * `files.rsa-key` and `files.config` of a local data folder: the files at `paths` (undefined =
 * not kept locally) read and parsed. A missing key warns (Vaultwarden makes a new one: every
 * client logged out), a missing config.json is normal.
 */
export async function localSecretChecks(
  paths: Readonly<Record<SecretName, string | undefined>>,
): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [name, id] of Object.entries(SECRET_CHECK_ID) as [SecretName, string][]) {
    const path = paths[name];
    if (path === undefined) {
      checks.push(skip(id, `${name} is not kept in the data folder (Vaultwarden's own storage)`));
      continue;
    }
    let bytes: Uint8Array;
    try {
      const st = await Deno.stat(path);
      if (st.size > MAX_SECRET_BYTES) {
        checks.push(
          fail(id, `${path}: ${formatBytes(st.size)} is too large to be one`, "appCheck"),
        );
        continue;
      }
      bytes = await Deno.readFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        checks.push(
          name === "rsa_key.pem"
            ? warn(id, `no ${path}: Vaultwarden makes a new key at start (every client logged out)`)
            : skip(id, `no ${path} (no settings saved from the admin page)`),
        );
        continue;
      }
      if (err instanceof Deno.errors.PermissionDenied) {
        checks.push(fail(id, `${path} may not be read`, "permission"));
        continue;
      }
      throw err;
    }
    const problem = secretProblem(name, bytes);
    checks.push(
      problem ? fail(id, `${path}: ${problem}`, "appCheck") : pass(
        id,
        `${path}: ${name === "rsa_key.pem" ? "a PEM RSA private key" : "JSON settings"}`,
      ),
    );
  }
  return checks;
}

/**
 * The sizes of the local bodies of `files` (absent: missing, or that kind not kept locally), one
 * `stat` each, never opened.
 */
export async function localBodySizes(
  files: readonly ReferencedFile[],
  paths: VaultPaths,
): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const f of files) {
    const path = localPathOf(paths, f.rel);
    if (path === undefined) continue;
    try {
      const st = await Deno.stat(path);
      if (st.isFile) sizes.set(f.rel, st.size);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) continue;
      if (err instanceof Deno.errors.PermissionDenied) {
        throw new PermissionError(
          path,
          `${path} may not be read; run verify as a user that can read the data folder`,
        );
      }
      throw err;
    }
  }
  return sizes;
}

/** What the files layer of one verify found: its checks and, for JSON, the counts. */
export interface VaultFilesResult {
  checks: Check[];
  files: FilesCounts & { invalidRows: number; backfill?: BackfillState };
}

export interface VaultFilesOptions {
  graceMs: number;
  now: Date;
}

/**
 * The files layer against stored objects: the restored database at `dbPath` (the point of
 * `pointTime`) is the manifest; `store` holds the bodies and the key and config versions.
 */
export async function checkStoredVault(
  store: VaultStore,
  dbPath: string,
  pointTime: Date,
  opts: VaultFilesOptions,
): Promise<VaultFilesResult> {
  const referenced = readReferencedFiles(dbPath);
  const [objects, versions, backfill] = await Promise.all([
    listFileObjects(store),
    listVersions(store),
    readBackfill(store),
  ]);
  const nothingStored = objects.size === 0 && backfill === undefined &&
    [...versions.values()].every((v) => v.length === 0);
  const rows = fileRowChecks(referenced.files, (rel) => objects.get(rel)?.size, {
    where: `${store.storage.location}${store.base ? `/${store.base.replace(/\/$/, "")}` : ""}`,
    graceStart: new Date(opts.now.getTime() - opts.graceMs),
    graceMs: opts.graceMs,
    failKind: "damaged",
    nothingStored,
    backfillRunning: backfill !== undefined && backfill.done === null,
  });
  const secrets = nothingStored
    ? [
      skip("files.rsa-key", "no rsa_key.pem versions stored (no vault files are stored here)"),
      skip("files.config", "no config.json versions stored (no vault files are stored here)"),
    ]
    : await storedSecretChecks(store.storage, versions, pointTime, "damaged");
  return {
    checks: [
      ...rows.checks,
      ...invalidRowsCheck(referenced.invalid),
      ...secrets,
      backfillCheck(backfill, opts.now),
    ],
    files: { ...rows.counts, invalidRows: referenced.invalid, ...(backfill && { backfill }) },
  };
}

/** The files layer against a local data folder (`verify --file DB --data-dir DIR`), read-only. */
export async function checkLocalVault(
  dbPath: string,
  paths: VaultPaths,
  opts: VaultFilesOptions,
): Promise<VaultFilesResult> {
  const referenced = referencedFilesWithWal(dbPath);
  const sizes = await localBodySizes(referenced.files, paths);
  const rows = fileRowChecks(referenced.files, (rel) => sizes.get(rel), {
    where: paths.dataDir,
    graceStart: new Date(opts.now.getTime() - opts.graceMs),
    graceMs: opts.graceMs,
    failKind: "appCheck",
  });
  const secrets = await localSecretChecks(paths.secrets);
  return {
    checks: [...rows.checks, ...invalidRowsCheck(referenced.invalid), ...secrets],
    files: { ...rows.counts, invalidRows: referenced.invalid },
  };
}

/**
 * `files.backfill`: the companion's one-time upload of the files a vault already had when it first
 * ran. While it runs, bodies it has not reached yet are missing (so those checks warn).
 */
export function backfillCheck(state: BackfillState | undefined, now: Date): Check {
  const id = "files.backfill";
  if (!state) return skip(id, "no backfill record (the companion has not started one here)");
  const progress = `${state.files.uploaded} of ${state.files.total} file(s), ${
    formatBytes(state.bytes.uploaded)
  } of ${formatBytes(state.bytes.total)}`;
  if (state.done !== null) {
    return pass(
      id,
      `the companion's first upload of existing files finished ${
        formatTime(new Date(state.done))
      } (${progress})`,
    );
  }
  const age = now.getTime() - Date.parse(state.updated);
  return warn(
    id,
    `the companion's first upload of existing files is running since ${
      formatTime(new Date(state.started))
    }: ${progress} uploaded, last progress ${formatAge(Math.max(0, age))} ago`,
  );
}

/**
 * The files a local (perhaps live) database references, its `-wal` included: a row Vaultwarden
 * committed a moment ago is in the WAL, not yet in the main file. Read-only either way
 * (`immutable=1` without a WAL, `mode=ro` with one; nothing is created beside it).
 */
function referencedFilesWithWal(dbPath: string): ReferencedFiles {
  const db = new DatabaseSync(readOnlyUri(dbPath), { readOnly: true });
  try {
    return referencedFiles(db);
  } finally {
    db.close();
  }
}

/** `files.rows`: rows whose ids cannot be a path were skipped (a damaged or crafted row). */
function invalidRowsCheck(invalid: number): Check[] {
  return invalid === 0 ? [] : [
    warn(
      "files.rows",
      `${invalid} attachment or file-send row(s) name no valid path (a damaged or hand-edited row): not checked`,
    ),
  ];
}
