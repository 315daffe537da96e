/**
 * age encryption (age-encryption.org/v1) as Litestream v0.3 applies it (LITESTREAM-FORMATS §2.9):
 * every snapshot and WAL segment object is one binary age file over the LZ4 frame. The one module
 * that imports the `age-encryption` package; everything else sees streams and key strings.
 *
 * Only native X25519 keys, the kind Litestream v0.3.13 accepts (`AGE-SECRET-KEY-1…` / `age1…`).
 * Key material never appears in an error message: messages name a source and a line number.
 */
import { createDecipheriv } from "node:crypto";
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
   * header is read and authenticated before this resolves: `AgeIdentityMismatch` when no
   * identity fits, a `FormatError` when the header is malformed. A chunk that fails
   * authentication (damage, truncation) errors the returned stream with a `FormatError`.
   *
   * The package unwraps the file key (X25519, header MAC); the payload goes through Deno's native
   * ChaCha20-Poly1305 (node:crypto), about 7 times faster than the package's JavaScript cipher
   * (585 vs 86 MB/s here), which made an encrypted restore 2.5 times slower than a plain one.
   */
  async decrypt(file: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
    const input = new ByteQueue(file.getReader());
    try {
      const header = await readHeader(input);
      const d = new (await lib()).Decrypter();
      for (const id of this.identities) d.addIdentity(id);
      let fileKey: Uint8Array;
      try {
        fileKey = await d.decryptHeader(header);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (/no identity matched/.test(message)) throw new AgeIdentityMismatch();
        throw new FormatError(`its age header is invalid (${message})`);
      }
      const nonce = await input.take(NONCE_BYTES);
      if (nonce.length < NONCE_BYTES) {
        throw new FormatError("its age header is invalid (the payload nonce is cut off)");
      }
      return payloadStream(input, await payloadKey(fileKey, nonce));
    } catch (err) {
      await input.cancel();
      throw err;
    }
  }
}

const NONCE_BYTES = 16;
const TAG_BYTES = 16;
const PLAIN_CHUNK = 64 * 1024;
const CIPHER_CHUNK = PLAIN_CHUNK + TAG_BYTES;
/** Far above any header Litestream writes (one stanza per recipient); bounds memory on junk. */
const MAX_HEADER_BYTES = 1 << 20;
const MAC_LINE = new TextEncoder().encode("\n--- ");

/** The header up to and including its MAC line (`--- …\n`), as `decryptHeader` takes it. */
async function readHeader(input: ByteQueue): Promise<Uint8Array> {
  for (let want = 512;; want *= 2) {
    const have = await input.peek(Math.min(want, MAX_HEADER_BYTES));
    const at = indexOf(have, MAC_LINE);
    if (at >= 0) {
      const end = have.indexOf(0x0a, at + MAC_LINE.length);
      if (end >= 0) return (await input.take(end + 1)).slice();
    }
    if (have.length < want || want >= MAX_HEADER_BYTES) {
      throw new FormatError("its age header is invalid (no MAC line: the object is cut off)");
    }
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** HKDF-SHA-256(file key, salt = nonce, info = "payload"): age's payload key. */
async function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Promise<Uint8Array> {
  const ikm = await crypto.subtle.importKey("raw", fileKey.slice(), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: nonce.slice(),
      info: new TextEncoder().encode("payload"),
    },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

/**
 * age's STREAM payload: chunks of 64 KiB plaintext + 16-byte tag, nonce = 11-byte big-endian
 * chunk counter + a last-chunk flag byte. A chunk is the last one only if the input ends right
 * after it, so one byte more is looked at before each full chunk is opened.
 */
function payloadStream(input: ByteQueue, key: Uint8Array): ReadableStream<Uint8Array> {
  const nonce = new Uint8Array(12);
  let counter = 0;
  let plaintext = 0;
  let finished = false;
  const open = (sealed: Uint8Array, last: boolean): Uint8Array => {
    nonce[11] = last ? 1 : 0;
    const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const out = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      d.final();
    } catch {
      throw new FormatError(
        `age payload chunk ${counter} fails authentication after ${plaintext} plaintext bytes: the object is damaged or truncated`,
      );
    }
    counter++;
    // The 11-byte counter, +1. (Not `++nonce[i] !== 0`: that expression is 256, not the stored 0.)
    for (let i = 10; i >= 0; i--) {
      nonce[i]++;
      if (nonce[i] !== 0) break;
    }
    plaintext += out.length;
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (finished) return ctrl.close();
      const ahead = await input.peek(CIPHER_CHUNK + 1);
      if (ahead.length > CIPHER_CHUNK) {
        ctrl.enqueue(open(await input.take(CIPHER_CHUNK), false));
        return;
      }
      // The last chunk: it must authenticate with the last-chunk flag set.
      finished = true;
      if (ahead.length < TAG_BYTES) {
        throw new FormatError(
          `age payload ends inside chunk ${counter} after ${plaintext} plaintext bytes: the object is truncated`,
        );
      }
      const out = open(await input.take(ahead.length), true);
      if (out.length === 0 && counter > 1) {
        throw new FormatError("age payload ends with an empty chunk: the object is damaged");
      }
      if (out.length > 0) ctrl.enqueue(out);
      ctrl.close();
    },
    cancel() {
      return input.cancel();
    },
  }, { highWaterMark: 0 });
}

/** A stream reader with look-ahead: `peek(n)` and `take(n)` give fewer bytes only at the end. */
class ByteQueue {
  private buf: Uint8Array = new Uint8Array(0);
  private done = false;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.done) {
      const next = await this.reader.read();
      if (next.done) {
        this.done = true;
        break;
      }
      if (this.buf.length === 0) {
        this.buf = next.value;
        continue;
      }
      const joined = new Uint8Array(this.buf.length + next.value.length);
      joined.set(this.buf);
      joined.set(next.value, this.buf.length);
      this.buf = joined;
    }
  }

  async peek(n: number): Promise<Uint8Array> {
    await this.fill(n);
    return this.buf.subarray(0, Math.min(n, this.buf.length));
  }

  async take(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  cancel(): Promise<void> {
    this.buf = new Uint8Array(0);
    return this.reader.cancel().catch(() => {});
  }
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
