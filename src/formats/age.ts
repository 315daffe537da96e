/**
 * age encryption (age-encryption.org/v1) as Litestream v0.3 applies it (LITESTREAM-FORMATS §2.9):
 * every snapshot and WAL segment object is one binary age file over the LZ4 frame. The one module
 * that imports the `age-encryption` package; everything else sees streams and key strings.
 *
 * Only native X25519 keys, the kind Litestream v0.3.13 accepts (`AGE-SECRET-KEY-1…` / `age1…`).
 * Key material never appears in an error message: messages name a source and a line number.
 */
import { FormatError } from "./format_error.ts";

/**
 * The package costs ~50-90 ms to load (its post-quantum code): loaded on first use, so that
 * plain replicas, `--help` and `verify --file` never pay for it. `deno bundle` inlines it.
 */
const lib = () => import("age-encryption");

/** The first line of every binary age file, followed by `\n`. */
export const AGE_HEADER_LINE = "age-encryption.org/v1";
/** Bytes to read from an object to tell an age file from a plain one. */
export const AGE_PROBE_BYTES = AGE_HEADER_LINE.length + 1;

const HEADER_BYTES = new TextEncoder().encode(`${AGE_HEADER_LINE}\n`);

/** True when `head` (the first bytes of an object) starts an age file. */
export function isAgeEncrypted(head: Uint8Array): boolean {
  if (head.length < HEADER_BYTES.length) return false;
  for (let i = 0; i < HEADER_BYTES.length; i++) if (head[i] !== HEADER_BYTES[i]) return false;
  return true;
}

/** An identity or recipient that cannot be used; the message names where, never the key. */
export class AgeKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgeKeyError";
  }
}

/** None of the identities can unwrap the object's file key: the object is for another key. */
export class AgeIdentityMismatch extends Error {
  constructor() {
    super("no identity matches any of the file's recipients");
    this.name = "AgeIdentityMismatch";
  }
}

const IDENTITY_PREFIX = "AGE-SECRET-KEY-1";
const RECIPIENT_PREFIX = "age1";

/**
 * The identities of an age identity file (or one `age.identities` entry, which Litestream parses
 * the same way): one per line, blank lines and `#` comments ignored. Each comes with `where`
 * (`line N of <source>`) for messages. Throws `AgeKeyError` for a line that is not an X25519
 * identity.
 */
export function parseAgeIdentities(text: string, source: string): { key: string; where: string }[] {
  const out: { key: string; where: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `line ${i + 1} of ${source}`;
    if (line.toUpperCase().startsWith("AGE-SECRET-KEY-PQ-1")) {
      throw new AgeKeyError(
        `${where} is a post-quantum age identity; Litestream v0.3 uses X25519 keys (AGE-SECRET-KEY-1…) only`,
      );
    }
    if (line.startsWith("AGE-PLUGIN-")) {
      throw new AgeKeyError(`${where} is an age plugin identity; only X25519 keys can be used`);
    }
    if (!line.startsWith(IDENTITY_PREFIX)) {
      throw new AgeKeyError(
        `${where} is not an age X25519 identity (AGE-SECRET-KEY-1…); an age identity file holds one per line, # for comments`,
      );
    }
    out.push({ key: line, where });
  });
  return out;
}

/** The recipients of one `age.recipients` entry (same line rules as identities). */
export function parseAgeRecipients(text: string, source: string): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    if (!line.startsWith(RECIPIENT_PREFIX) || line.startsWith("age1pq1")) {
      throw new AgeKeyError(
        `line ${i + 1} of ${source} is not an age X25519 recipient (age1…)`,
      );
    }
    out.push(line);
  });
  return out;
}

/** The public recipient (`age1…`) of an X25519 identity; `AgeKeyError` when it is malformed. */
export async function recipientOf(identity: string, source: string): Promise<string> {
  try {
    return await (await lib()).identityToRecipient(identity);
  } catch {
    throw new AgeKeyError(`${source} is a malformed age identity (bad checksum or length)`);
  }
}

/** A new X25519 identity (`AGE-SECRET-KEY-1…`), for tests and tooling. */
export async function generateAgeIdentity(): Promise<string> {
  return await (await lib()).generateX25519Identity();
}

/**
 * Identities ready to decrypt, each with its public recipient (which messages may show: the
 * X25519 stanza does not say which recipient an object was encrypted for).
 */
export class AgeKeyring {
  private constructor(
    private readonly identities: readonly string[],
    /** Public recipients of the identities, in order. Safe to print. */
    readonly recipients: readonly string[],
  ) {}

  /** Validates every identity (checksum, length) and derives its recipient. */
  static async create(identities: readonly { key: string; source: string }[]): Promise<AgeKeyring> {
    const recipients: string[] = [];
    for (const { key, source } of identities) recipients.push(await recipientOf(key, source));
    return new AgeKeyring(identities.map((i) => i.key), recipients);
  }

  get size(): number {
    return this.identities.length;
  }

  /**
   * The plaintext of an age file, streamed in 64 KiB STREAM chunks (memory stays flat). The
   * header is read before this resolves: `AgeIdentityMismatch` when no identity fits, a
   * `FormatError` when the header is malformed. A chunk that fails authentication (damage,
   * truncation) errors the returned stream with a `FormatError`.
   */
  async decrypt(file: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
    const d = new (await lib()).Decrypter();
    for (const id of this.identities) d.addIdentity(id);
    let plain: ReadableStream<Uint8Array>;
    try {
      plain = await d.decrypt(file);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/no identity matched/.test(message)) throw new AgeIdentityMismatch();
      throw new FormatError(`its age header is invalid (${message})`);
    }
    return rethrowAsFormatError(plain);
  }
}

/** Errors inside the package's STREAM decoder become `FormatError`s that say what they mean. */
function rethrowAsFormatError(s: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = s.getReader();
  let plaintext = 0;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      let next;
      try {
        next = await reader.read();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new FormatError(
          `age payload fails authentication after ${plaintext} plaintext bytes (${message}): the object is damaged or truncated`,
        );
      }
      if (next.done) ctrl.close();
      else {
        plaintext += next.value.length;
        ctrl.enqueue(next.value);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Encrypts `data` as one binary age file for `recipients` (`age1…`), as Litestream writes its
 * objects. A stream in gives a stream out (chunked, flat memory).
 */
export async function ageEncrypt(
  data: Uint8Array,
  recipients: readonly string[],
): Promise<Uint8Array>;
export async function ageEncrypt(
  data: ReadableStream<Uint8Array>,
  recipients: readonly string[],
): Promise<ReadableStream<Uint8Array>>;
export async function ageEncrypt(
  data: Uint8Array | ReadableStream<Uint8Array>,
  recipients: readonly string[],
): Promise<Uint8Array | ReadableStream<Uint8Array>> {
  if (recipients.length === 0) throw new AgeKeyError("age encryption needs at least one recipient");
  const e = new (await lib()).Encrypter();
  recipients.forEach((r, i) => {
    try {
      e.addRecipient(r);
    } catch {
      throw new AgeKeyError(`age recipient #${i + 1} is malformed`);
    }
  });
  return data instanceof Uint8Array ? await e.encrypt(data) : await e.encrypt(data);
}
