/**
 * Stands in for Vaultwarden in tests/ship/entrypoint_test.ts: the app the container gate starts
 * under `litestream replicate -exec`. Like Vaultwarden it opens the SQLite database in WAL mode,
 * creating it on a first boot; it then writes one row for this boot, appends one JSON line to the
 * report file (every boot label it finds, or the error it hit), and serves until SIGTERM.
 *
 * Environment: FAKE_VW_DB (database path), FAKE_VW_BOOT (label of this boot), FAKE_VW_REPORT
 * (report file).
 */
import { createItemsTable, openWalDatabase } from "../support/sqlite_writer.ts";

export interface FakeVaultwardenReport {
  boot: string;
  pid: number;
  /** Boot labels found in the database after this boot's row was written, oldest first. */
  boots?: string[];
  error?: string;
}

function env(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`fake_vaultwarden: ${name} is not set`);
  return v;
}

if (import.meta.main) {
  const report = env("FAKE_VW_REPORT");
  const boot = env("FAKE_VW_BOOT");
  const write = (r: FakeVaultwardenReport) =>
    Deno.writeTextFileSync(report, JSON.stringify(r) + "\n", { append: true });
  try {
    const db = openWalDatabase(env("FAKE_VW_DB"));
    createItemsTable(db, "boots");
    db.prepare("INSERT INTO boots (label, body) VALUES (?, ?)").run(boot, new Date().toISOString());
    const boots = db.prepare("SELECT label FROM boots ORDER BY id").all().map((r) =>
      String(r.label)
    );
    write({ boot, pid: Deno.pid, boots });
    const stop = () => {
      db.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
    setInterval(() => {}, 60_000); // serve until a signal arrives
  } catch (err) {
    write({ boot, pid: Deno.pid, error: err instanceof Error ? err.message : String(err) });
    Deno.exit(1);
  }
}
