/**
 * Host key checking for SFTP replicas, OpenSSH's way: a key pinned in the config (`host-key`,
 * an authorized_keys-style line or a `SHA256:` fingerprint), else the host's entries in
 * known_hosts files (plain and hashed host names, `[host]:port` for other ports than 22,
 * `*`/`?` patterns and `!` negations, `@revoked` lines; `@cert-authority` lines are skipped:
 * certificates are not supported). Pure: files are read by the caller.
 */
import { createHash, createHmac } from "node:crypto";

/** A public key: its algorithm name and the base64 of its SSH wire-format blob. */
export interface PublicKey {
  type: string;
  base64: string;
}

/** The blob's key type (the first SSH string in it). */
export function keyOfBlob(blob: Uint8Array): PublicKey {
  const len = blob.length >= 4
    ? ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0
    : 0;
  const type = len > 0 && len <= blob.length - 4
    ? new TextDecoder().decode(blob.subarray(4, 4 + len))
    : "unknown";
  return { type, base64: btoa(String.fromCharCode(...blob)) };
}

/** OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's SHA-256. */
export function fingerprintOf(base64: string): string {
  const digest = createHash("sha256").update(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)))
    .digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

interface KnownHostLine {
  marker?: "revoked" | "cert-authority";
  hosts: string;
  key: PublicKey;
}

function parseLines(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const f = line.split(/\s+/);
    let marker: KnownHostLine["marker"];
    if (f[0] === "@revoked" || f[0] === "@cert-authority") {
      marker = f[0].slice(1) as KnownHostLine["marker"];
      f.shift();
    } else if (f[0].startsWith("@")) continue;
    if (f.length < 3) continue;
    out.push({ marker, hosts: f[0], key: { type: f[1], base64: f[2] } });
  }
  return out;
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`);
}

/** Whether a known_hosts host field (`a,b,!c`, or one hashed `|1|salt|hash`) names `name`. */
function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Uint8Array.from(atob(salt), (c) => c.charCodeAt(0)))
      .update(name).digest("base64");
    return mac === hash;
  }
  let matched = false;
  for (const p of field.toLowerCase().split(",")) {
    const negated = p.startsWith("!");
    const pattern = negated ? p.slice(1) : p;
    if (globToRegExp(pattern).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The name known_hosts stores a host under: `host`, or `[host]:port` for other ports. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

export interface HostKeys {
  /** Keys listed for the host. */
  keys: PublicKey[];
  /** Keys marked `@revoked` (for any host). */
  revoked: PublicKey[];
}

/** The known keys of `host:port` in known_hosts text (several files: concatenate). */
export function knownKeysFor(text: string, host: string, port: number): HostKeys {
  const name = knownHostsName(host, port);
  const keys: PublicKey[] = [];
  const revoked: PublicKey[] = [];
  for (const line of parseLines(text)) {
    if (line.marker === "cert-authority") continue;
    if (!hostsMatch(line.hosts, name)) continue;
    (line.marker === "revoked" ? revoked : keys).push(line.key);
  }
  return { keys, revoked };
}

/** The SSH host key algorithms that can produce a key of `type` (RSA keys sign three ways). */
export function algorithmsFor(type: string): string[] {
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; why: "unknown" | "mismatch" | "revoked" };

/**
 * Decides on the key a server presented. `pinned` (canonical `TYPE BASE64` or `SHA256:…`) wins
 * over known_hosts; with neither, the host is unknown.
 */
export function judgeHostKey(
  presented: PublicKey,
  pinned: string | undefined,
  known: HostKeys,
): HostKeyVerdict {
  const same = (k: PublicKey) => k.base64 === presented.base64;
  if (known.revoked.some(same)) return { ok: false, why: "revoked" };
  if (pinned !== undefined) {
    const ok = pinned.startsWith("SHA256:")
      ? fingerprintOf(presented.base64) === pinned
      : pinned === `${presented.type} ${presented.base64}`;
    return ok ? { ok: true } : { ok: false, why: "mismatch" };
  }
  if (known.keys.some(same)) return { ok: true };
  return { ok: false, why: known.keys.length > 0 ? "mismatch" : "unknown" };
}
