/**
 * Layer 5 of `verify`: application checks. `auto` recognises the application from the database
 * (today: Vaultwarden, by `__diesel_schema_migrations` plus its migrations or core tables);
 * `vaultwarden` insists on it (exit 7 when it is not one); `none` runs nothing.
 *
 * The file is opened exactly as the database layer opens it: read-only, `immutable=1`.
 */
import type { DatabaseSync } from "node:sqlite";
import { fail, skip, warn } from "../checks/check.ts";
import type { Check } from "../checks/check.ts";
import { errorText, openDatabaseReadOnly } from "../lib/sqlite.ts";
import type { AppReport } from "./app_report.ts";
import { checkVaultwarden, detectVaultwarden, readPhysicalSchema } from "./vaultwarden/check.ts";
import type { Detection, PhysicalSchema } from "./vaultwarden/check.ts";

export type AppMode = "auto" | "vaultwarden" | "none";

export interface AppResult {
  checks: Check[];
  app: AppReport | null;
}

export function checkApplication(path: string, mode: AppMode): Promise<AppResult> {
  return Promise.resolve(checkSync(path, mode));
}

function checkSync(path: string, mode: AppMode): AppResult {
  if (mode === "none") return { checks: [], app: null };
  const demanded = mode === "vaultwarden";
  const notChecked = (msg: string): AppResult => ({
    checks: [demanded ? fail("app.detect", msg, "appCheck") : skip("app.detect", msg)],
    app: null,
  });

  let db: DatabaseSync;
  try {
    db = openDatabaseReadOnly(path);
  } catch (err) {
    return notChecked(`no application checks: the database cannot be opened (${errorText(err)})`);
  }
  try {
    let schema: PhysicalSchema;
    let detection: Detection;
    try {
      schema = readPhysicalSchema(db);
      detection = detectVaultwarden(db, schema);
    } catch (err) {
      return notChecked(`no application checks: the schema cannot be read (${errorText(err)})`);
    }
    switch (detection.kind) {
      case "vaultwarden":
        return checkVaultwarden(db, schema, detection.versions);
      case "other-diesel": {
        const msg =
          `diesel migrations of an unknown application (${detection.versions.length} recorded, none of them Vaultwarden's, and not its tables)`;
        return {
          checks: [
            demanded
              ? fail("app.detect", `not a Vaultwarden database: ${msg}`, "appCheck")
              : warn("app.detect", `${msg}: no application checks`),
          ],
          app: null,
        };
      }
      case "none": {
        if (!demanded) {
          return {
            checks: [
              skip(
                "app.detect",
                "no __diesel_schema_migrations table: not an application litewarden knows; no application checks",
              ),
            ],
            app: null,
          };
        }
        const what = schema.size === 0
          ? "the database has no tables at all (a brand-new empty file: the wrong path, or an empty restore?)"
          : `no __diesel_schema_migrations table among its ${schema.size} tables`;
        return notChecked(`not a Vaultwarden database: ${what}`);
      }
    }
  } finally {
    db.close();
  }
}

/**
 * Findings Vaultwarden starts and serves with: SQLite checks foreign keys only when a row is
 * written, never for rows already there, and Vaultwarden reads items through their owner, so a
 * row whose owner is gone (an orphan cipher, folder entry or membership) is simply never shown.
 * They point at an earlier bug or a hand edit, not at a bad restore, so the container gate warns
 * on them instead of keeping the vault down; `--strict` (and a plain verify) still fails them.
 * Everything else that fails (integrity, schema, migrations Vaultwarden would re-run and crash
 * on, unreadable content) makes the vault unusable or proves a bad restore and fails the gate.
 */
export const FINDINGS_VAULTWARDEN_LIVES_WITH: ReadonlySet<string> = new Set([
  "db.foreign-keys",
  "app.content.orphans",
]);

/** The gate's judgement of a Vaultwarden database: findings it lives with become warnings. */
export function judgeAsGate(checks: readonly Check[], app: AppReport | null): Check[] {
  if (app?.name !== "vaultwarden") return [...checks];
  return checks.map((c) =>
    c.status === "fail" && FINDINGS_VAULTWARDEN_LIVES_WITH.has(c.id)
      ? {
        id: c.id,
        status: "warn" as const,
        message: `${c.message} (Vaultwarden starts and serves with this; --strict fails it)`,
        ...(c.objects && { objects: c.objects }),
      }
      : c
  );
}
