import { resolveTarget } from "../config/resolve.ts";
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
      registerSecret(r.credentials.secretAccessKey);
      registerSecret(r.credentials.sessionToken);
    }
  }
  if (opts.replica !== undefined) {
    const picked = resolved.replicas.filter((r) => r.name === opts.replica);
    if (picked.length === 0) {
      throw usageError(
        `replica ${opts.replica} not found; this database has: ${
          resolved.replicas.map((r) => r.name).join(", ")
        }`,
      );
    }
    return { ...resolved, replicas: picked };
  }
  return resolved;
}

export function targetLabel(r: ReplicaTarget): string {
  return `${r.name} ${describeTarget(r)}`;
}
