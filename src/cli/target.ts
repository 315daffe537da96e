import { resolveTarget, selectReplicas } from "../config/resolve.ts";
import type { ResolvedTarget } from "../config/resolve.ts";
import { describeTarget } from "../config/target.ts";
import type { ReplicaTarget } from "../config/target.ts";
import { usageError } from "../errors.ts";
import { registerSecret } from "../report/redact.ts";

/** Resolves the TARGET argument of any command and registers its secrets for redaction. */
export async function resolveCliTarget(
  arg: string | undefined,
  opts: { config?: string; replica?: string },
): Promise<ResolvedTarget> {
  const env = Deno.env.toObject();
  for (
    const k of [
      "LITESTREAM_SECRET_ACCESS_KEY",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "LITESTREAM_ACCESS_KEY_ID",
      "AWS_ACCESS_KEY_ID",
    ]
  ) registerSecret(env[k]);
  const resolved = await resolveTarget(arg, { configPath: opts.config, env, cwd: Deno.cwd() });
  for (const r of resolved.replicas) {
    if (r.type === "s3" && r.credentials) {
      registerSecret(r.credentials.accessKeyId);
      registerSecret(r.credentials.secretAccessKey);
      registerSecret(r.credentials.sessionToken);
    }
    if (r.type === "sftp") registerSecret(r.password);
  }
  const replicas = selectReplicas(resolved, opts.replica);
  if (replicas.length === 0) {
    const why = resolved.unusable?.[0]?.message;
    throw usageError(
      why ??
        `database ${resolved.dbPath ?? arg ?? ""} has no replica configured; add one to the config`,
    );
  }
  return { ...resolved, replicas };
}

export function targetLabel(r: ReplicaTarget): string {
  return `${r.name} ${describeTarget(r)}`;
}
