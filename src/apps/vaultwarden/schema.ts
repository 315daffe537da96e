/**
 * Vaultwarden's physical SQLite schema as data (VAULTWARDEN-SCHEMA §2, §4, §5): every table and
 * column any release from 1.16.0 on has, with the migration that creates it and, for the few
 * objects later migrations remove, the migration that drops it. The expected schema of a migration
 * set is then every object created by a migration of the set (or by the baseline migrations every
 * known release has) and not dropped by one. Checked against real databases of 1.20.0, 1.30.0 and
 * 1.37.2 in tests/apps/vaultwarden_test.ts.
 */

/** A column; `since`/`until` default to the table's. */
export interface ColumnSpec {
  name: string;
  /** Migration version that adds it; absent = created with its table. */
  since?: string;
  /** Migration version that removes or renames it away. */
  until?: string;
}

export interface TableSpec {
  name: string;
  /** Migration version that creates it; absent = a baseline migration (#1–#17, every release). */
  since?: string;
  /** Migration version that drops it. */
  until?: string;
  /** Its columns; null = not compared (a transient table whose columns changed several times). */
  columns: ColumnSpec[] | null;
}

/** Migrations that do nothing on SQLite (#44, #45: the file holds only a comment). */
export const NOOP_MIGRATIONS: ReadonlySet<string> = new Set(["20240112210182", "20240214140000"]);

/** The core tables that identify a Vaultwarden database (with `__diesel_schema_migrations`). */
export const CORE_TABLES = [
  "users",
  "ciphers",
  "folders",
  "organizations",
  "users_organizations",
  "collections",
  "devices",
  "twofactor",
] as const;

const cols = (...names: (string | ColumnSpec)[]): ColumnSpec[] =>
  names.map((n) => (typeof n === "string" ? { name: n } : n));
const since = (name: string, version: string): ColumnSpec => ({ name, since: version });

/** Every table of every known release, in the order of §4. */
export const TABLES: readonly TableSpec[] = [
  {
    name: "users",
    columns: cols(
      "uuid",
      "created_at",
      "updated_at",
      "email",
      "name",
      "password_hash",
      "salt",
      "password_iterations",
      "password_hint",
      "akey",
      "private_key",
      "public_key",
      "totp_secret",
      "totp_recover",
      "security_stamp",
      "equivalent_domains",
      "excluded_globals",
      "client_kdf_type",
      "client_kdf_iter",
      "verified_at",
      "last_verifying_at",
      "login_verify_count",
      "email_new",
      "email_new_token",
      since("enabled", "20201130224000"),
      since("stamp_exception", "20201209173101"),
      since("api_key", "20220117234911"),
      since("avatar_color", "20230111205851"),
      since("client_kdf_memory", "20230131222222"),
      since("client_kdf_parallelism", "20230131222222"),
      since("external_id", "20230602200424"),
    ),
  },
  {
    name: "devices",
    columns: cols(
      "uuid",
      "created_at",
      "updated_at",
      "user_uuid",
      "name",
      "atype",
      "push_token",
      "refresh_token",
      "twofactor_remember",
      since("push_uuid", "20230218125735"),
    ),
  },
  {
    name: "twofactor",
    columns: cols("uuid", "user_uuid", "atype", "enabled", "data", "last_used"),
  },
  {
    name: "twofactor_incomplete",
    since: "20211024164321",
    columns: cols(
      "user_uuid",
      "device_uuid",
      "device_name",
      "login_time",
      "ip_address",
      since("device_type", "20240904091351"),
    ),
  },
  {
    name: "twofactor_duo_ctx",
    since: "20240605131359",
    columns: cols("state", "user_email", "nonce", "exp"),
  },
  { name: "invitations", columns: cols("email") },
  {
    name: "emergency_access",
    since: "20210830193501",
    columns: cols(
      "uuid",
      "grantor_uuid",
      "grantee_uuid",
      "email",
      "key_encrypted",
      "atype",
      "status",
      "wait_time_days",
      "recovery_initiated_at",
      "last_notification_at",
      "updated_at",
      "created_at",
    ),
  },
  {
    name: "auth_requests",
    since: "20230617200424",
    columns: cols(
      "uuid",
      "user_uuid",
      "organization_uuid",
      "request_device_identifier",
      "device_type",
      "request_ip",
      "response_device_id",
      "access_code",
      "public_key",
      "enc_key",
      "master_password_hash",
      "approved",
      "creation_date",
      "response_date",
      "authentication_date",
    ),
  },
  // Dropped and recreated by #46/#47 with other columns, replaced by sso_auth in #53.
  { name: "sso_nonce", since: "20230910133000", until: "20250820120000", columns: null },
  {
    name: "sso_users",
    since: "20240306170000",
    columns: cols("user_uuid", "identifier", "created_at"),
  },
  {
    name: "sso_auth",
    since: "20250820120000",
    columns: cols(
      "state",
      "client_challenge",
      "nonce",
      "redirect_uri",
      "code_response",
      "auth_response",
      "created_at",
      "updated_at",
      since("binding_hash", "20260425120000"),
      since("code_response_error", "20260505120000"),
    ),
  },
  {
    name: "ciphers",
    columns: cols(
      "uuid",
      "created_at",
      "updated_at",
      "user_uuid",
      "organization_uuid",
      "atype",
      "name",
      "notes",
      "fields",
      "data",
      // Moved to the favorites table when #18 rebuilt ciphers.
      { name: "favorite", until: "20200802025025" },
      "password_history",
      "deleted_at",
      since("reprompt", "20210430233251"),
      since("key", "20231021221242"),
    ),
  },
  { name: "attachments", columns: cols("id", "cipher_uuid", "file_name", "file_size", "akey") },
  { name: "folders", columns: cols("uuid", "created_at", "updated_at", "user_uuid", "name") },
  { name: "folders_ciphers", columns: cols("cipher_uuid", "folder_uuid") },
  { name: "favorites", since: "20200802025025", columns: cols("user_uuid", "cipher_uuid") },
  {
    name: "archives",
    since: "20260309005927",
    columns: cols("user_uuid", "cipher_uuid", "archived_at"),
  },
  {
    name: "sends",
    since: "20210311190243",
    columns: cols(
      "uuid",
      "user_uuid",
      "organization_uuid",
      "name",
      "notes",
      "atype",
      "data",
      // Renamed to akey by #22.
      { name: "key", until: "20210315163412" },
      since("akey", "20210315163412"),
      "password_hash",
      "password_salt",
      "password_iter",
      "max_access_count",
      "access_count",
      "creation_date",
      "revision_date",
      "expiration_date",
      "deletion_date",
      "disabled",
      since("hide_email", "20210511205202"),
    ),
  },
  {
    name: "organizations",
    columns: cols(
      "uuid",
      "name",
      "billing_email",
      since("private_key", "20210701203140"),
      since("public_key", "20210701203140"),
    ),
  },
  {
    name: "users_organizations",
    columns: cols(
      "uuid",
      "user_uuid",
      "org_uuid",
      "access_all",
      "akey",
      "status",
      "atype",
      since("reset_password_key", "20230106151600"),
      since("external_id", "20230902212336"),
      since("invited_by_email", "20230914133000"),
    ),
  },
  {
    name: "collections",
    columns: cols("uuid", "org_uuid", "name", since("external_id", "20230628133700")),
  },
  {
    name: "users_collections",
    columns: cols(
      "user_uuid",
      "collection_uuid",
      "read_only",
      "hide_passwords",
      since("manage", "20250109172300"),
    ),
  },
  { name: "ciphers_collections", columns: cols("cipher_uuid", "collection_uuid") },
  {
    name: "groups",
    since: "20220727110000",
    columns: cols(
      "uuid",
      "organizations_uuid",
      "name",
      "access_all",
      "external_id",
      "creation_date",
      "revision_date",
    ),
  },
  {
    name: "groups_users",
    since: "20220727110000",
    columns: cols("groups_uuid", "users_organizations_uuid"),
  },
  {
    name: "collections_groups",
    since: "20220727110000",
    columns: cols(
      "collections_uuid",
      "groups_uuid",
      "read_only",
      "hide_passwords",
      since("manage", "20250109172300"),
    ),
  },
  { name: "org_policies", columns: cols("uuid", "org_uuid", "atype", "enabled", "data") },
  {
    name: "organization_api_key",
    since: "20230602200424",
    columns: cols("uuid", "org_uuid", "atype", "api_key", "revision_date"),
  },
  {
    name: "event",
    since: "20221018170602",
    columns: cols(
      "uuid",
      "event_type",
      "user_uuid",
      "org_uuid",
      "cipher_uuid",
      "collection_uuid",
      "group_uuid",
      "org_user_uuid",
      "act_user_uuid",
      "device_type",
      "ip_address",
      "event_date",
      "policy_uuid",
      "provider_uuid",
      "provider_user_uuid",
      "provider_org_uuid",
    ),
  },
  { name: "__diesel_schema_migrations", columns: cols("version", "run_on") },
];

const TABLE_BY_NAME = new Map(TABLES.map((t) => [t.name, t]));

/** The table spec of `name`, if any release has such a table. */
export function tableSpec(name: string): TableSpec | undefined {
  return TABLE_BY_NAME.get(name);
}

/** True when an object created by `since` and dropped by `until` exists after the `applied` set. */
export function presentAfter(
  applied: ReadonlySet<string>,
  since: string | undefined,
  until: string | undefined,
): boolean {
  return (since === undefined || applied.has(since)) &&
    (until === undefined || !applied.has(until));
}

/**
 * The tables and columns a database holds once exactly the migrations in `applied` have run
 * (unknown versions are ignored): table name → column names (null = columns not compared).
 */
export function expectedSchema(applied: ReadonlySet<string>): Map<string, string[] | null> {
  const out = new Map<string, string[] | null>();
  for (const t of TABLES) {
    if (!presentAfter(applied, t.since, t.until)) continue;
    out.set(
      t.name,
      t.columns === null ? null : t.columns
        .filter((c) => presentAfter(applied, c.since ?? t.since, c.until ?? t.until))
        .map((c) => c.name),
    );
  }
  return out;
}

/** The objects (`table` or `table.column`) that migration `version` creates. */
export function objectsCreatedBy(version: string): string[] {
  const out: string[] = [];
  for (const t of TABLES) {
    if (t.since === version) out.push(t.name);
    else if (t.columns) {
      for (const c of t.columns) if (c.since === version) out.push(`${t.name}.${c.name}`);
    }
  }
  return out;
}
