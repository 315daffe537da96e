import { Option } from "commander";
import { resolveTarget, selectReplicas } from "../config/resolve.ts";
import type { ResolvedTarget } from "../config/resolve.ts";
import { describeTarget } from "../config/target.ts";
import type { AgeSettings, ReplicaTarget } from "../config/target.ts";
import { UsageError } from "../errors.ts";
import { registerSecret } from "../report/redact.ts";
import { listReplica } from "../replica/listing.ts";
import { openStorage } from "../storage/open.ts";

/** An age identity file for every replica of the target (the URL form has no `age:`). */
export const AGE_IDENTITY_FILE_ENV = "LITEWARDEN_AGE_IDENTITY_FILE";
/** The identity text itself, for platforms that hand secrets over as variables. */
export const AGE_IDENTITY_ENV = "LITEWARDEN_AGE_IDENTITY";

/** `--age-identity FILE`, repeatable, for every command that reads replica objects. */
export function ageIdentityOption() {
  return new Option(
    "--age-identity <file>",
    `age identity file for encrypted v0.3 replicas, repeatable (also $${AGE_IDENTITY_FILE_ENV}, $${AGE_IDENTITY_ENV})`,
  ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
}

/** Resolves the TARGET argument of any command and registers its secrets for redaction. */
export async function resolveCliTarget(
  arg: string | undefined,
  opts: { config?: string; replica?: string; ageIdentity?: string[] },
): Promise<ResolvedTarget> {
  const env = Deno.env.toObject();
  const extraIdentities = await cliAgeIdentities(opts.ageIdentity ?? [], env);
  for (
    const k of [
      "LITESTREAM_SECRET_ACCESS_KEY",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "LITESTREAM_ACCESS_KEY_ID",
      "AWS_ACCESS_KEY_ID",
      "LITESTREAM_AZURE_ACCOUNT_KEY",
    ]
  ) registerSecret(env[k]);
  const resolved = await resolveTarget(arg, { configPath: opts.config, env, cwd: Deno.cwd() });
  for (const r of resolved.replicas) {
    if (extraIdentities.length > 0) {
      r.age = {
        identities: [...(r.age?.identities ?? []), ...extraIdentities],
        recipients: r.age?.recipients ?? [],
        unknownKeys: r.age?.unknownKeys ?? [],
      };
    }
    for (const id of r.age?.identities ?? []) registerIdentity(id.text);
    if (r.type === "s3" && r.credentials) {
      registerSecret(r.credentials.accessKeyId);
      registerSecret(r.credentials.secretAccessKey);
      registerSecret(r.credentials.sessionToken);
    }
    if (r.type === "sftp") registerSecret(r.password);
    if (r.type === "abs") registerSecret(r.accountKey);
  }
  const replicas = selectReplicas(resolved, opts.replica);
  if (replicas.length === 0) {
    const why = resolved.unusable?.[0]?.message;
    throw new UsageError(
      why ??
        `database ${resolved.dbPath ?? arg ?? ""} has no replica configured; add one to the config`,
    );
  }
  return { ...resolved, replicas };
}

export function targetLabel(r: ReplicaTarget): string {
  return `${r.name} ${describeTarget(r)}`;
}

/** Identities from `--age-identity` files and the environment, in that order. */
async function cliAgeIdentities(
  files: string[],
  env: Record<string, string>,
): Promise<AgeSettings["identities"]> {
  const out: AgeSettings["identities"] = [];
  const fromFile = async (path: string, how: string) => {
    try {
      out.push({ text: await Deno.readTextFile(path), source: `age identity file ${path}` });
    } catch (err) {
      const reason = err instanceof Deno.errors.NotFound
        ? "not found"
        : err instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : err instanceof Error
        ? err.name
        : "unreadable";
      throw new UsageError(
        `cannot read age identity file ${path} (${how}): ${reason}; pass the path of an age identity file (AGE-SECRET-KEY-1… lines)`,
        { cause: err },
      );
    }
  };
  for (const f of files) await fromFile(f, "--age-identity");
  if (env[AGE_IDENTITY_FILE_ENV]) await fromFile(env[AGE_IDENTITY_FILE_ENV], AGE_IDENTITY_FILE_ENV);
  if (env[AGE_IDENTITY_ENV]) {
    out.push({ text: env[AGE_IDENTITY_ENV], source: `$${AGE_IDENTITY_ENV}` });
  }
  for (const id of out) registerIdentity(id.text);
  return out;
}

/** Registers an identity text and each of its lines for redaction. */
function registerIdentity(text: string): void {
  registerSecret(text.trim());
  for (const line of text.split(/\r?\n/)) {
    const l = line.trim();
    if (l !== "" && !l.startsWith("#")) registerSecret(l);
  }
}

/** The first replica of the target, listed. */
export async function openFirstReplica(
  arg: string | undefined,
  opts: { config?: string; replica?: string; ageIdentity?: string[] },
  parallelism: number,
) {
  const resolved = await resolveCliTarget(arg, opts);
  const storage = await openStorage(resolved.replicas[0]);
  const listing = await listReplica(storage, { parallelism });
  return { storage, listing };
}
