import { UsageError } from "../errors.ts";
import { writeFileAtomic } from "../lib/atomic_write.ts";
import { redact, registerSecret } from "./redact.ts";
import type { VerifyResult } from "./verify_report.ts";

/**
 * Sends the verdict to a healthchecks.io-style URL: the URL itself on success, `<url>/fail` on
 * failure, with the JSON report as body. Returns a warning text instead of throwing: a monitoring
 * outage must not turn a good verify into a failed one.
 */
/**
 * Checks `--ping-url` before any work and registers it as a secret: in healthchecks.io-style URLs
 * the path (the check's UUID) is the credential, so neither the URL nor its `/fail` form may ever
 * be printed. Not an absolute http(s) URL is a usage error (exit 2) that does not echo it.
 */
export function checkPingUrl(url: string): string {
  registerSecret(url);
  registerSecret(failUrl(url));
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    // reported below
  }
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
    throw new UsageError(
      "--ping-url is not an absolute http(s) URL; give it whole, e.g. https://hc-ping.com/UUID",
    );
  }
  registerSecret(u.pathname.length > 1 ? u.pathname : undefined);
  return url;
}

export async function sendPing(
  url: string,
  ok: boolean,
  body: unknown,
): Promise<string | undefined> {
  const target = ok ? url : failUrl(url);
  try {
    const res = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // The body is a report like stdout's, and goes through the same redaction.
      body: redact(JSON.stringify(body)),
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    if (!res.ok) return `ping to ${safe(target)} answered HTTP ${res.status}`;
    return undefined;
  } catch (err) {
    // Runtime messages quote the URL ("Invalid URL: '…'"); only its safe form may be shown.
    const why = (err instanceof Error ? err.message : String(err)).split(target).join(safe(target))
      .split(url).join(safe(url));
    return `ping to ${safe(target)} failed: ${redact(why)}`;
  }
}

/**
 * `<url>/fail`, appended to the path so a query stays a query (healthchecks.io:
 * `https://hc-ping.com/UUID?rid=…` → `https://hc-ping.com/UUID/fail?rid=…`).
 */
function failUrl(url: string): string {
  try {
    const u = new URL(url);
    u.pathname = `${u.pathname.replace(/\/+$/, "")}/fail`;
    return u.href;
  } catch {
    return `${url.replace(/\/+$/, "")}/fail`;
  }
}

/** The ping URL as messages may show it: scheme and host only. */
function safe(url: string): string {
  try {
    // Only the host: in healthchecks.io-style URLs the path (the check's UUID) is the credential.
    const u = new URL(url);
    return redact(`${u.protocol}//${u.host}/…`);
  } catch {
    return "the ping URL";
  }
}

/**
 * Prometheus text-format gauges for node_exporter's textfile collector, written atomically
 * (temp file in the same directory, fsync, rename). The last success time survives failed runs
 * by being read back from the previous file.
 */
export async function writeMetrics(
  path: string,
  results: VerifyResult[],
  now: Date,
): Promise<void> {
  const previous = await Deno.readTextFile(path).catch(() => "");
  const lastSuccess = new Map<string, string>();
  for (
    const m of previous.matchAll(
      /^litewarden_verify_last_success_timestamp_seconds\{database="((?:[^"\\]|\\.)*)"\} (\S+)$/gm,
    )
  ) {
    lastSuccess.set(m[1], m[2]);
  }
  const nowSec = Math.floor(now.getTime() / 1000);
  // The text format wants each metric's HELP, TYPE and samples together, in one group.
  const help: Record<string, string> = {
    litewarden_verify_success: "1 if the last verify passed, else 0.",
    litewarden_verify_exit_code: "Exit code of the last verify (see README).",
    litewarden_verify_last_run_timestamp_seconds: "When verify last ran.",
    litewarden_verify_last_success_timestamp_seconds: "When verify last passed.",
    litewarden_restore_point_age_seconds: "Age of the newest restorable point.",
    litewarden_heartbeat_age_seconds: "Age of the companion's heartbeat in the replica.",
    litewarden_replication_lag_seconds:
      "How long the replica has lacked the live position the heartbeat names (0: none).",
    litewarden_verify_check_failures: "Failed checks in the last verify.",
    litewarden_verify_check_warnings:
      "Checks that warned in the last verify (exit 0, but worth a look: e.g. a hole in older history).",
  };
  const samples = new Map<string, string[]>(Object.keys(help).map((name) => [name, []]));
  const add = (name: string, label: string, value: string | number) =>
    samples.get(name)!.push(`${name}${label} ${value}`);
  for (const r of results) {
    const db = r.subject.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    const label = `{database="${db}"}`;
    const ok = r.exitCode === 0;
    if (ok) lastSuccess.set(db, String(nowSec));
    add("litewarden_verify_success", label, ok ? 1 : 0);
    add("litewarden_verify_exit_code", label, r.exitCode);
    add("litewarden_verify_last_run_timestamp_seconds", label, nowSec);
    const last = lastSuccess.get(db);
    if (last) add("litewarden_verify_last_success_timestamp_seconds", label, last);
    if (r.restorePoint) {
      const age = Math.round((now.getTime() - r.restorePoint.time.getTime()) / 1000);
      add("litewarden_restore_point_age_seconds", label, age);
    }
    if (r.heartbeat) {
      const age = Math.round((now.getTime() - r.heartbeat.time.getTime()) / 1000);
      add("litewarden_heartbeat_age_seconds", label, age);
      if (r.heartbeat.lagSeconds !== null) {
        add("litewarden_replication_lag_seconds", label, Math.round(r.heartbeat.lagSeconds));
      }
    }
    const failures = r.checks.filter((c) => c.status === "fail").length;
    add("litewarden_verify_check_failures", label, failures);
    add(
      "litewarden_verify_check_warnings",
      label,
      r.checks.filter((c) => c.status === "warn").length,
    );
  }
  const lines = [...samples].flatMap(([name, list]) => [
    `# HELP ${name} ${help[name]}`,
    `# TYPE ${name} gauge`,
    ...list,
  ]);
  await writeFileAtomic(path, redact(lines.join("\n") + "\n"));
}
