/**
 * The decryption layer between a storage backend and the decoders: whole-object reads of age
 * files (Litestream v0.3 with `age:`, LITESTREAM-FORMATS §2.9) come out as their plaintext (the
 * LZ4 frame), so restore, verify, snapshot-diff and prune need no code of their own for it.
 *
 * Every whole-object read is sniffed, not only those the config says are encrypted: a replica
 * can be mixed (a misspelt `recipients:` makes Litestream write plaintext, Litestream #603), and
 * plaintext objects pass through unchanged. `verify`'s `replica.encryption` check is what reports
 * a mismatch. Ranged reads (LTX headers, the encryption probe) see the stored bytes.
 */
import type { AgeSettings } from "../config/target.ts";
import { DamagedError, UsageError } from "../errors.ts";
import {
  AGE_PROBE_BYTES,
  AgeIdentityMismatch,
  AgeKeyError,
  AgeKeyring,
  isAgeEncrypted,
  parseAgeIdentities,
} from "../formats/age.ts";
import { FormatError } from "../formats/format_error.ts";
import type { ByteRange, Storage } from "./storage.ts";

/**
 * `backend` with its whole-object reads decrypted. A Proxy rather than a wrapper class, so the
 * result is still the backend (its type, `instanceof`, `close`) for everything but `get`.
 */
export function withAgeDecryption<S extends Storage>(
  backend: S,
  keyring: AgeKeyring | undefined,
): S {
  const get = (key: string, range?: ByteRange) => decryptingGet(backend, keyring, key, range);
  return new Proxy(backend, {
    get(target, prop) {
      if (prop === "get") return get;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function decryptingGet(
  backend: Storage,
  keyring: AgeKeyring | undefined,
  key: string,
  range: ByteRange | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const stored = await backend.get(key, range);
  if (range) return stored;
  const { head, stream } = await peek(stored, AGE_PROBE_BYTES);
  if (!isAgeEncrypted(head)) return stream;
  const where = `${key} at ${backend.location}`;
  if (!keyring || keyring.size === 0) {
    await stream.cancel();
    throw new UsageError(
      `${where} is age-encrypted and no age identity was given; add age.identities to the replica in the config, or pass --age-identity FILE (or set LITEWARDEN_AGE_IDENTITY_FILE)`,
    );
  }
  try {
    return await keyring.decrypt(stream);
  } catch (err) {
    await stream.cancel().catch(() => {});
    if (err instanceof AgeIdentityMismatch) {
      const n = keyring.size;
      throw new UsageError(
        `none of the ${n} age identit${n === 1 ? "y" : "ies"} (recipient${n === 1 ? "" : "s"} ${
          keyring.recipients.join(", ")
        }) can decrypt ${where}; it was encrypted for another key: give the identity of a recipient in the replica's age.recipients`,
      );
    }
    if (err instanceof FormatError) {
      throw new DamagedError(`${key} is damaged: ${err.message}`, key);
    }
    throw err;
  }
}

/** Opens a keyring for `settings` (exit 2 for a malformed identity); undefined without any. */
export async function openKeyring(
  settings: AgeSettings | undefined,
): Promise<AgeKeyring | undefined> {
  if (!settings || settings.identities.length === 0) return undefined;
  try {
    const keys = settings.identities.flatMap(({ text, source }) =>
      parseAgeIdentities(text, source).map(({ key, where }) => ({ key, source: where }))
    );
    if (keys.length === 0) {
      throw new AgeKeyError(
        `${settings.identities.map((i) => i.source).join(", ")} holds no age identity`,
      );
    }
    return await AgeKeyring.create(keys);
  } catch (err) {
    if (err instanceof AgeKeyError) throw new UsageError(`${err.message}; fix the age identity`);
    throw err;
  }
}

/**
 * Reads at least `n` bytes (or all, if shorter) off the front of `s` and returns them with a
 * stream that yields the whole content again, without buffering more than the first chunks.
 */
async function peek(
  s: ReadableStream<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
  const reader = s.getReader();
  const chunks: Uint8Array[] = [];
  let have = 0;
  let done = false;
  try {
    while (have < n) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        break;
      }
      chunks.push(next.value);
      have += next.value.length;
    }
  } catch (err) {
    reader.releaseLock();
    throw err;
  }
  const head = new Uint8Array(have);
  let at = 0;
  for (const c of chunks) {
    head.set(c, at);
    at += c.length;
  }
  const stream = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      const first = chunks.shift();
      if (first) return ctrl.enqueue(first);
      if (done) return ctrl.close();
      return reader.read().then((next) => {
        if (next.done) ctrl.close();
        else ctrl.enqueue(next.value);
      });
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head, stream };
}
