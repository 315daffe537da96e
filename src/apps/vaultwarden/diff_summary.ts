/**
 * What changed between two Vaultwarden databases, in Vaultwarden's words: per user and per
 * organization, items created / changed / trashed / restored / deleted for good, folders,
 * collections, memberships, devices, two-factor methods, sends, attachments and account changes.
 *
 * Works on one connection where `main` is the older database and `after` the newer (see
 * replica/diff.ts `withAttachedPair`). Only identifiers, types, roles, statuses, KDF settings and
 * e-mail addresses leave SQLite; encrypted fields, keys, hashes and tokens are only ever compared
 * inside SQL (`IS NOT`), so their values cannot reach the report.
 */
import type { DatabaseSync } from "node:sqlite";
import { UsageError } from "../../errors.ts";
import { quoteIdent } from "../../lib/sqlite.ts";

/** One change, the JSON schema documented in the README (`vaultwarden.users[].changes[]`). */
export interface VaultChange {
  /** The table the change was read from. */
  table: string;
  object:
    | "account"
    | "item"
    | "folder"
    | "collection"
    | "membership"
    | "device"
    | "two-factor"
    | "send"
    | "attachment"
    | "organization";
  action: string;
  /** The object's uuid (an attachment's id; a membership's user uuid). */
  uuid: string;
  /** Item type (login, note, card, identity, ssh-key), two-factor method, send type. */
  type?: string;
  /** The item an attachment belongs to. */
  item?: string;
  /** A membership's member e-mail. */
  email?: string;
  /** Old and new value of a role, status, e-mail or KDF setting. */
  from?: string;
  to?: string;
}

export interface UserChanges {
  uuid: string;
  email: string | null;
  changes: VaultChange[];
}

export interface OrganizationChanges {
  uuid: string;
  changes: VaultChange[];
}

export interface VaultSummary {
  users: UserChanges[];
  organizations: OrganizationChanges[];
}

export interface SummaryFilter {
  /** A user's uuid or e-mail (case-insensitive). */
  user?: string;
  item?: string;
  table?: string;
}

/** Value names from VAULTWARDEN-SCHEMA §5 (enumerations). */
export const ITEM_TYPES: Record<string, string> = {
  "1": "login",
  "2": "note",
  "3": "card",
  "4": "identity",
  "5": "ssh-key",
};
const ROLES: Record<string, string> = { "0": "owner", "1": "admin", "2": "user", "3": "manager" };
const MEMBER_STATUS: Record<string, string> = { "0": "invited", "1": "accepted", "2": "confirmed" };
const TWO_FACTOR_TYPES: Record<string, string> = {
  "0": "authenticator",
  "1": "email",
  "2": "duo",
  "3": "yubikey",
  "4": "u2f",
  "5": "remember",
  "6": "org-duo",
  "7": "webauthn",
  "8": "webauthn-register-challenge",
  "9": "webauthn-login-challenge",
  "10": "recovery-code",
  "1000": "email-verification-challenge",
};
const SEND_TYPES: Record<string, string> = { "0": "text", "1": "file" };
const KDF_TYPES: Record<string, string> = { "0": "PBKDF2-SHA256", "1": "Argon2id" };

export const named = (names: Record<string, string>, v: unknown) =>
  v === null || v === undefined ? "unknown" : names[String(v)] ?? `type ${v}`;

/**
 * A table's rows that differ between the two databases, with chosen non-secret columns of each
 * side (`b_*`, `a_*`) and named boolean comparisons (`flags`, SQL over `b` and `a`).
 */
interface TableRead {
  table: string;
  key: string[];
  /** Columns whose values may be printed (ids, types, statuses, e-mail, KDF numbers). */
  facts: string[];
  /** name → SQL comparing `b.col` with `a.col`; only the boolean leaves SQLite. */
  flags?: Record<string, (has: (col: string) => boolean) => string>;
}

interface RowPair {
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  flags: Record<string, boolean>;
}

function columnsOf(db: DatabaseSync, schema: string, table: string): Set<string> {
  return new Set(
    (db.prepare("SELECT name FROM pragma_table_info(?, ?)").all(table, schema) as {
      name: string;
    }[]).map((r) => r.name),
  );
}

function changedRows(db: DatabaseSync, read: TableRead): RowPair[] {
  const before = columnsOf(db, "main", read.table);
  const after = columnsOf(db, "after", read.table);
  if (before.size === 0 || after.size === 0) return [];
  if (!read.key.every((k) => before.has(k) && after.has(k))) return [];
  const shared = [...after].filter((c) => before.has(c)).map(quoteIdent).join(", ");
  const t = quoteIdent(read.table);
  const keys = read.key.map(quoteIdent);
  const keyList = keys.join(", ");
  const join = (alias: string) => keys.map((k) => `${alias}.${k} = ch.${k}`).join(" AND ");
  const fact = (alias: string, cols: Set<string>, c: string) =>
    `${cols.has(c) ? `${alias}.${quoteIdent(c)}` : "NULL"} AS ${quoteIdent(`${alias}_${c}`)}`;
  const has = (c: string) => before.has(c) && after.has(c);
  const flagNames = Object.keys(read.flags ?? {});
  const select = [
    `b.${keys[0]} IS NOT NULL AS in_b`,
    `a.${keys[0]} IS NOT NULL AS in_a`,
    ...read.facts.map((c) => fact("b", before, c)),
    ...read.facts.map((c) => fact("a", after, c)),
    ...flagNames.map((f) => `(${read.flags![f](has)}) AS ${quoteIdent(`flag_${f}`)}`),
  ];
  const sql = `WITH ch AS (
      SELECT ${keyList} FROM (SELECT ${shared} FROM after.${t} EXCEPT SELECT ${shared} FROM main.${t})
      UNION
      SELECT ${keyList} FROM (SELECT ${shared} FROM main.${t} EXCEPT SELECT ${shared} FROM after.${t})
    )
    SELECT ${select.join(", ")} FROM ch
    LEFT JOIN main.${t} b ON ${join("b")}
    LEFT JOIN after.${t} a ON ${join("a")}
    ORDER BY ${keys.map((k) => `ch.${k}`).join(", ")}`;
  return (db.prepare(sql).all() as Record<string, unknown>[]).map((r) => {
    const side = (p: string) =>
      Object.fromEntries(read.facts.map((c) => [c, r[`${p}_${c}`] ?? null]));
    return {
      before: r.in_b ? side("b") : null,
      after: r.in_a ? side("a") : null,
      flags: Object.fromEntries(flagNames.map((f) => [f, Boolean(r[`flag_${f}`])])),
    };
  });
}

/** `b.c IS NOT a.c` for each column both sides have, OR-ed; false when none. */
function anyDiffers(...cols: string[]) {
  return (has: (col: string) => boolean) => {
    const present = cols.filter(has).map(quoteIdent);
    return present.length ? present.map((c) => `b.${c} IS NOT a.${c}`).join(" OR ") : "0";
  };
}

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

function kdfText(r: Record<string, unknown>): string {
  const parts = [named(KDF_TYPES, r.client_kdf_type), `${r.client_kdf_iter} iterations`];
  if (r.client_kdf_memory !== null) parts.push(`${r.client_kdf_memory} MiB`);
  if (r.client_kdf_parallelism !== null) parts.push(`parallelism ${r.client_kdf_parallelism}`);
  return parts.join(", ");
}

/** Where a change is filed: a user's section or an organization's. */
type Owner = { user: string } | { organization: string };

function ownerOf(r: Record<string, unknown>): Owner | null {
  if (r.organization_uuid) return { organization: String(r.organization_uuid) };
  if (r.user_uuid) return { user: String(r.user_uuid) };
  return null;
}

/** The Vaultwarden summary of the attached pair (`main` older, `after` newer). */
export function summarizeVaultChanges(db: DatabaseSync, filter: SummaryFilter = {}): VaultSummary {
  const emails = new Map<string, string>();
  for (const schema of ["main", "after"]) {
    if (columnsOf(db, schema, "users").has("email")) {
      for (const r of db.prepare(`SELECT uuid, email FROM ${schema}.users`).all()) {
        emails.set(String(r.uuid), String(r.email));
      }
    }
  }
  const filed: { owner: Owner; change: VaultChange }[] = [];
  const file = (owner: Owner | null, change: VaultChange) => {
    if (owner) filed.push({ owner, change });
  };

  for (
    const r of changedRows(db, {
      table: "users",
      key: ["uuid"],
      facts: [
        "uuid",
        "email",
        "enabled",
        "client_kdf_type",
        "client_kdf_iter",
        "client_kdf_memory",
        "client_kdf_parallelism",
      ],
      flags: { keys: anyDiffers("akey", "private_key", "public_key") },
    })
  ) {
    const row = (r.after ?? r.before)!;
    const owner = { user: String(row.uuid) };
    const base = { table: "users", object: "account" as const, uuid: String(row.uuid) };
    if (!r.before) file(owner, { ...base, action: "created" });
    else if (!r.after) file(owner, { ...base, action: "deleted" });
    else {
      const b = r.before;
      const a = r.after;
      if (b.email !== a.email) {
        file(owner, { ...base, action: "email-changed", from: str(b.email)!, to: str(a.email)! });
      }
      if (kdfText(b) !== kdfText(a)) {
        file(owner, { ...base, action: "kdf-changed", from: kdfText(b), to: kdfText(a) });
      }
      if (r.flags.keys) file(owner, { ...base, action: "keys-changed" });
      if (b.enabled !== a.enabled) {
        file(owner, { ...base, action: Number(a.enabled) ? "enabled" : "disabled" });
      }
    }
  }

  for (
    const r of changedRows(db, {
      table: "organizations",
      key: ["uuid"],
      facts: ["uuid"],
      flags: { keys: anyDiffers("private_key", "public_key") },
    })
  ) {
    const uuid = String((r.after ?? r.before)!.uuid);
    const base = { table: "organizations", object: "organization" as const, uuid };
    const action = !r.before
      ? "created"
      : !r.after
      ? "deleted"
      : r.flags.keys
      ? "keys-changed"
      : "";
    if (action) file({ organization: uuid }, { ...base, action });
  }

  for (
    const r of changedRows(db, {
      table: "ciphers",
      key: ["uuid"],
      facts: ["uuid", "user_uuid", "organization_uuid", "atype", "deleted_at"],
    })
  ) {
    const row = (r.after ?? r.before)!;
    const action = !r.before
      ? "created"
      : !r.after
      ? "deleted"
      : r.before.deleted_at === null && r.after.deleted_at !== null
      ? "trashed"
      : r.before.deleted_at !== null && r.after.deleted_at === null
      ? "restored"
      : "changed";
    file(ownerOf(row), {
      table: "ciphers",
      object: "item",
      action,
      uuid: String(row.uuid),
      type: named(ITEM_TYPES, row.atype),
    });
  }

  for (
    const r of changedRows(db, {
      table: "folders",
      key: ["uuid"],
      facts: ["uuid", "user_uuid"],
      flags: { renamed: anyDiffers("name") },
    })
  ) {
    const row = (r.after ?? r.before)!;
    const action = !r.before ? "created" : !r.after ? "deleted" : r.flags.renamed ? "renamed" : "";
    if (action) {
      file(ownerOf(row), { table: "folders", object: "folder", action, uuid: String(row.uuid) });
    }
  }

  for (
    const r of changedRows(db, {
      table: "collections",
      key: ["uuid"],
      facts: ["uuid", "org_uuid"],
      flags: { renamed: anyDiffers("name") },
    })
  ) {
    const row = (r.after ?? r.before)!;
    const action = !r.before ? "created" : !r.after ? "deleted" : r.flags.renamed ? "renamed" : "";
    if (action) {
      file({ organization: String(row.org_uuid) }, {
        table: "collections",
        object: "collection",
        action,
        uuid: String(row.uuid),
      });
    }
  }

  for (
    const r of changedRows(db, {
      table: "users_organizations",
      key: ["uuid"],
      facts: ["user_uuid", "org_uuid", "status", "atype"],
    })
  ) {
    const row = (r.after ?? r.before)!;
    const user = String(row.user_uuid);
    const base = {
      table: "users_organizations",
      object: "membership" as const,
      uuid: user,
      email: emails.get(user),
    };
    const owner = { organization: String(row.org_uuid) };
    if (!r.before) {
      const status = Number(r.after!.status);
      file(owner, {
        ...base,
        action: status === 0 ? "invited" : "added",
        to: `${memberStatus(status)}, ${named(ROLES, r.after!.atype)}`,
      });
    } else if (!r.after) file(owner, { ...base, action: "removed" });
    else {
      const [b, a] = [Number(r.before.status), Number(r.after.status)];
      if (b !== a) {
        const action = a < 0 && b >= 0
          ? "revoked"
          : a >= 0 && b < 0
          ? "restored"
          : a === 2
          ? "confirmed"
          : a === 1
          ? "accepted"
          : "status-changed";
        file(owner, { ...base, action, from: memberStatus(b), to: memberStatus(a) });
      }
      if (r.before.atype !== r.after.atype) {
        file(owner, {
          ...base,
          action: "role-changed",
          from: named(ROLES, r.before.atype),
          to: named(ROLES, r.after.atype),
        });
      }
    }
  }

  for (
    const r of changedRows(db, {
      table: "devices",
      key: ["uuid", "user_uuid"],
      facts: ["uuid", "user_uuid"],
    })
  ) {
    const row = (r.after ?? r.before)!;
    const action = !r.before ? "added" : !r.after ? "removed" : "";
    if (action) {
      file(ownerOf(row), { table: "devices", object: "device", action, uuid: String(row.uuid) });
    }
  }

  for (
    const r of changedRows(db, {
      table: "twofactor",
      key: ["uuid"],
      facts: ["uuid", "user_uuid", "atype", "enabled"],
    })
  ) {
    const row = (r.after ?? r.before)!;
    const action = !r.before
      ? "added"
      : !r.after
      ? "removed"
      : r.before.enabled !== r.after.enabled
      ? (Number(r.after.enabled) ? "enabled" : "disabled")
      : "";
    if (action) {
      file(ownerOf(row), {
        table: "twofactor",
        object: "two-factor",
        action,
        uuid: String(row.uuid),
        type: named(TWO_FACTOR_TYPES, row.atype),
      });
    }
  }

  for (
    const r of changedRows(db, {
      table: "sends",
      key: ["uuid"],
      facts: ["uuid", "user_uuid", "organization_uuid", "atype"],
    })
  ) {
    const row = (r.after ?? r.before)!;
    file(ownerOf(row), {
      table: "sends",
      object: "send",
      action: !r.before ? "created" : !r.after ? "deleted" : "changed",
      uuid: String(row.uuid),
      type: named(SEND_TYPES, row.atype),
    });
  }

  const itemOwner = itemOwners(db);
  for (
    const r of changedRows(db, {
      table: "attachments",
      key: ["id"],
      facts: ["id", "cipher_uuid"],
    })
  ) {
    const row = (r.after ?? r.before)!;
    const action = !r.before ? "added" : !r.after ? "removed" : "";
    if (action) {
      file(itemOwner(String(row.cipher_uuid)), {
        table: "attachments",
        object: "attachment",
        action,
        uuid: String(row.id),
        item: String(row.cipher_uuid),
      });
    }
  }

  return group(filed, emails, filter);
}

function memberStatus(status: number): string {
  return status < 0 ? `revoked (was ${named(MEMBER_STATUS, status + 128)})` : named(
    MEMBER_STATUS,
    status,
  );
}

/** An item's owner in the newer database, else in the older one. */
function itemOwners(db: DatabaseSync): (uuid: string) => Owner | null {
  const stmts = ["after", "main"].map((s) =>
    db.prepare(`SELECT user_uuid, organization_uuid FROM ${s}.ciphers WHERE uuid = ?`)
  );
  return (uuid) => {
    for (const stmt of stmts) {
      const r = stmt.get(uuid);
      if (r) return ownerOf(r);
    }
    return null;
  };
}

function group(
  filed: { owner: Owner; change: VaultChange }[],
  emails: Map<string, string>,
  filter: SummaryFilter,
): VaultSummary {
  const wantUser = filter.user === undefined ? undefined : resolveUser(filter.user, emails);
  if (wantUser === null) {
    throw new UsageError(
      `no user ${filter.user} at either point; give a user's uuid or e-mail address`,
    );
  }
  const users = new Map<string, UserChanges>();
  const orgs = new Map<string, OrganizationChanges>();
  for (const { owner, change } of filed) {
    if (filter.table !== undefined && change.table !== filter.table) continue;
    if (filter.item !== undefined && change.uuid !== filter.item && change.item !== filter.item) {
      continue;
    }
    if ("user" in owner) {
      if (wantUser !== undefined && owner.user !== wantUser) continue;
      const u = users.get(owner.user) ??
        { uuid: owner.user, email: emails.get(owner.user) ?? null, changes: [] };
      u.changes.push(change);
      users.set(owner.user, u);
    } else {
      // An organization's changes concern a user when they are that user's membership.
      if (wantUser !== undefined && !(change.object === "membership" && change.uuid === wantUser)) {
        continue;
      }
      const o = orgs.get(owner.organization) ?? { uuid: owner.organization, changes: [] };
      o.changes.push(change);
      orgs.set(owner.organization, o);
    }
  }
  const byUuid = <T extends { uuid: string }>(m: Map<string, T>) =>
    [...m.values()].sort((a, b) => a.uuid.localeCompare(b.uuid));
  return { users: byUuid(users), organizations: byUuid(orgs) };
}

/** `--user` as a uuid, from a uuid or an e-mail known at either point; null when unknown. */
function resolveUser(user: string, emails: Map<string, string>): string | null {
  if (emails.has(user)) return user;
  const wanted = user.toLowerCase();
  for (const [uuid, email] of emails) if (email.toLowerCase() === wanted) return uuid;
  return null;
}

/** One line per change, under a heading per user and per organization. */
export function vaultSummaryText(summary: VaultSummary): string[] {
  const lines: string[] = [];
  if (summary.users.length === 0 && summary.organizations.length === 0) {
    return ["Vaultwarden: no changes."];
  }
  for (const u of summary.users) {
    lines.push(`Vaultwarden user ${u.email ?? "(unknown e-mail)"} (${u.uuid}):`);
    for (const c of u.changes) lines.push(`  ${changeText(c)}`);
  }
  for (const o of summary.organizations) {
    lines.push(`Vaultwarden organization ${o.uuid}:`);
    for (const c of o.changes) lines.push(`  ${changeText(c)}`);
  }
  return lines;
}

const ACTION_WORDS: Record<string, string> = {
  trashed: "moved to trash",
  restored: "restored from trash",
  deleted: "deleted for good",
};

function changeText(c: VaultChange): string {
  const fromTo = c.from !== undefined && c.to !== undefined
    ? ` from ${c.from} to ${c.to}`
    : c.to !== undefined
    ? ` (${c.to})`
    : "";
  switch (c.object) {
    case "item":
      return `item ${c.uuid} (${c.type}) ${ACTION_WORDS[c.action] ?? c.action}`;
    case "account":
      if (c.action === "keys-changed") return "account: the keys changed";
      if (c.action === "email-changed") return `account: e-mail changed${fromTo}`;
      if (c.action === "kdf-changed") return `account: KDF changed${fromTo}`;
      return `account ${c.action}`;
    case "membership":
      return `member ${c.email ?? "(unknown e-mail)"} (${c.uuid}) ${
        c.action === "role-changed" ? "role changed" : c.action
      }${fromTo}`;
    case "attachment":
      return `attachment ${c.uuid} of item ${c.item} ${c.action}`;
    case "two-factor":
    case "send":
      return `${c.object} ${c.uuid} (${c.type}) ${c.action}`;
    case "organization":
      return c.action === "keys-changed"
        ? "organization: the keys changed"
        : `organization ${c.action}`;
    default:
      return `${c.object} ${c.uuid} ${c.action}`;
  }
}
