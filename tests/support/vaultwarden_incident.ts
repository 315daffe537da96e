/**
 * A scripted incident on the populated Vaultwarden fixture, replicated by real Litestream v0.3.13:
 * an item deleted for good, an item trashed, a member removed, a folder renamed, a member's role
 * changed and an account re-keyed, each its own transaction. The script records, for each step,
 * the WAL segments Litestream uploaded for it (the first one holds the step's commit).
 */
import { openDatabaseReadOnly } from "../../src/lib/sqlite.ts";
import { fileReplicaObjects, startReplicate, writeLitestreamConfig } from "./litestream.ts";
import type { ReplicaConfig } from "./litestream.ts";
import { openWalDatabase } from "./sqlite_writer.ts";

export const FIXTURE =
  new URL("../fixtures/vaultwarden/vw-1.37.2-populated.sqlite3", import.meta.url).pathname;

export const ALICE = "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601";
export const BOB = "b2e4d6f8-1a3c-4e5f-9071-c2d3e4f5a602";
export const CAROL = "c3d5e7f9-2b4d-4f6a-8182-d3e4f5a6b703";
export const DAVE = "d4e6f8a0-3c5e-4a7b-9293-e4f5a6b7c804";
export const ERIN = "e5f7a9b1-4d6f-4b8c-a3a4-f5a6b7c8d905";
export const ORG = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c01";
/** Alice's login without attachments (deleted for good), an organization login (trashed). */
export const GONE = "a6ead519-a516-46a3-9485-01013068d86e";
export const TRASHED = "2d4161e5-2b2a-4c27-9de1-012528dbbc0a";
export const CAROL_FOLDER = "4e5f6071-8293-44a5-b6c7-d8e9fa0b1c08";

/** Column values that must never be printed: encrypted fields, keys, hashes, tokens. */
const SECRET_COLUMNS: Record<string, string[]> = {
  users: [
    "password_hash",
    "salt",
    "akey",
    "private_key",
    "public_key",
    "totp_secret",
    "totp_recover",
    "security_stamp",
    "api_key",
    "password_hint",
  ],
  ciphers: ["name", "notes", "fields", "data", "password_history", "key"],
  folders: ["name"],
  collections: ["name"],
  users_organizations: ["akey", "reset_password_key"],
  organizations: ["private_key", "public_key"],
  devices: ["push_token", "refresh_token", "twofactor_remember"],
  twofactor: ["data"],
  sends: ["name", "notes", "data", "akey", "password_hash", "password_salt"],
  attachments: ["file_name", "akey"],
};

/** Every secret column value of a Vaultwarden database, in the forms a report could print. */
export function secretValues(path: string): string[] {
  const db = openDatabaseReadOnly(path);
  const out: string[] = [];
  try {
    for (const [table, cols] of Object.entries(SECRET_COLUMNS)) {
      for (
        const row of db.prepare(`SELECT ${cols.map((c) => `"${c}"`).join(", ")} FROM ${table}`)
          .all()
      ) {
        for (const v of Object.values(row)) {
          const forms = v instanceof Uint8Array
            ? [
              [...v].map((b) => b.toString(16).padStart(2, "0")).join(""),
              btoa(String.fromCharCode(...v)),
            ]
            : typeof v === "string"
            ? [v]
            : [];
          // Short values (empty blobs, "[]") could match anywhere; real secrets are longer.
          out.push(...forms.filter((f) => f.length >= 8));
        }
      }
    }
  } finally {
    db.close();
  }
  return out;
}

/** A fresh value in Bitwarden's EncString shape (`2.IV|DATA|MAC`), as a re-key writes one. */
export const encString = () =>
  `2.${btoa(crypto.randomUUID())}|${btoa(crypto.randomUUID())}|${btoa(crypto.randomUUID())}`;

export const diesel = (iso: string) => iso.replace("T", " ").replace("Z", "000");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A v0.3 WAL segment of the file replica. */
export interface SegmentName {
  generation: string;
  index: number;
  offset: number;
}

export interface IncidentStep {
  name: "deleted" | "trashed" | "removed" | "renamed" | "role-changed" | "re-keyed";
  /** The segments uploaded for this step, in (index, offset) order; the first holds its commit. */
  segments: SegmentName[];
}

/** A query whose answer the step changes (and no other step does). */
export const STEP_QUERIES: Record<IncidentStep["name"], string> = {
  "deleted": `SELECT count(*) FROM ciphers WHERE uuid = '${GONE}'`,
  "trashed": `SELECT deleted_at IS NULL FROM ciphers WHERE uuid = '${TRASHED}'`,
  "removed": `SELECT count(*) FROM users_organizations WHERE user_uuid = '${ERIN}'`,
  "renamed": `SELECT name FROM folders WHERE uuid = '${CAROL_FOLDER}'`,
  "role-changed": `SELECT atype FROM users_organizations WHERE user_uuid = '${CAROL}'`,
  "re-keyed": `SELECT private_key FROM users WHERE uuid = '${BOB}'`,
};

/** A replica named `s3` in `bucket`/db on the test S3 server, for {@link IncidentOptions}. */
export function s3IncidentReplica(
  server: { endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } },
  bucket: string,
): ReplicaConfig {
  return {
    name: "s3",
    type: "s3",
    bucket,
    path: "db",
    endpoint: server.endpoint,
    forcePathStyle: true,
    accessKeyId: server.credentials.accessKeyId,
    secretAccessKey: server.credentials.secretAccessKey,
  };
}

export interface Incident {
  dir: string;
  /** The file replica's directory and its `file://` URL. */
  replica: string;
  url: string;
  config: string;
  live: string;
  /** A time after the replica's first state and before the incident. */
  before: string;
  steps: IncidentStep[];
  /** Segments uploaded before the first step (the state the incident starts from). */
  baseline: SegmentName[];
  secrets: string[];
}

export interface IncidentOptions {
  /**
   * Litestream's `min-checkpoint-page-count`: small values make it checkpoint after most steps,
   * so the generation spans several WAL indexes.
   */
  minCheckpointPageCount?: number;
  /** More replicas Litestream writes at the same time (an S3 one); every step waits for all. */
  extraReplicas?: ReplicaConfig[];
}

/** Replicates the fixture to `<dir>/replica` and runs the incident on it, one step a sync. */
export async function replicateIncident(
  dir: string,
  opts: IncidentOptions = {},
): Promise<Incident> {
  const live = `${dir}/db.sqlite3`;
  await Deno.copyFile(FIXTURE, live);
  await Deno.chmod(live, 0o644);
  const replica = `${dir}/replica`;
  const config = await writeLitestreamConfig(dir, [{
    path: live,
    minCheckpointPageCount: opts.minCheckpointPageCount,
    replicas: [{ name: "file", path: replica }, ...(opts.extraReplicas ?? [])],
  }]);
  const db = openWalDatabase(live);
  let before = "";
  const seen = new Set<string>();
  const newSegments = async (): Promise<SegmentName[]> => {
    const out: SegmentName[] = [];
    for (const o of await fileReplicaObjects(replica)) {
      if (o.kind !== "wal" || seen.has(o.key)) continue;
      seen.add(o.key);
      out.push({ generation: o.generation, index: o.index, offset: o.offset! });
    }
    return out;
  };
  const steps: IncidentStep[] = [];
  let baseline: SegmentName[] = [];
  try {
    const rep = await startReplicate(config);
    try {
      await rep.waitForSync();
      await sleep(1100);
      before = new Date().toISOString();
      await sleep(1100);
      baseline = await newSegments();
      const now = diesel(new Date().toISOString());
      const script: [IncidentStep["name"], [string, unknown[]][]][] = [
        // Deleted for good, as Vaultwarden does: its links first, then the row.
        ["deleted", [
          ["DELETE FROM folders_ciphers WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM ciphers_collections WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM favorites WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM archives WHERE cipher_uuid = ?", [GONE]],
          ["DELETE FROM ciphers WHERE uuid = ?", [GONE]],
        ]],
        ["trashed", [[
          "UPDATE ciphers SET deleted_at = ?, updated_at = ? WHERE uuid = ?",
          [now, now, TRASHED],
        ]]],
        ["removed", [
          [
            "DELETE FROM groups_users WHERE users_organizations_uuid IN (SELECT uuid FROM users_organizations WHERE user_uuid = ?)",
            [ERIN],
          ],
          ["DELETE FROM users_collections WHERE user_uuid = ?", [ERIN]],
          ["DELETE FROM users_organizations WHERE user_uuid = ? AND org_uuid = ?", [ERIN, ORG]],
        ]],
        ["renamed", [[
          "UPDATE folders SET name = ?, updated_at = ? WHERE uuid = ?",
          [
            `2.${btoa(crypto.randomUUID())}|${btoa(crypto.randomUUID())}|renamed`,
            now,
            CAROL_FOLDER,
          ],
        ]]],
        ["role-changed", [[
          "UPDATE users_organizations SET atype = 1 WHERE user_uuid = ? AND org_uuid = ?",
          [CAROL, ORG],
        ]]],
        ["re-keyed", [[
          "UPDATE users SET akey = ?, private_key = ?, security_stamp = ?, updated_at = ? WHERE uuid = ?",
          [
            encString(),
            encString(),
            crypto.randomUUID(),
            now,
            BOB,
          ],
        ]]],
      ];
      for (const [name, statements] of script) {
        db.exec("BEGIN");
        for (const [sql, args] of statements) {
          db.prepare(sql).run(...(args as (string | number | null)[]));
        }
        db.exec("COMMIT");
        await rep.waitForSync();
        steps.push({ name, segments: await newSegments() });
      }
    } finally {
      await rep.stop();
    }
  } finally {
    db.close();
  }
  return {
    dir,
    replica,
    url: `file://${replica}`,
    config,
    live,
    before,
    steps,
    baseline,
    secrets: [...new Set([...secretValues(FIXTURE), ...secretValues(live)])],
  };
}

/** Hex SHA-256 of a file's bytes (a refusal must leave the target byte-identical). */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
