/**
 * `replica.encryption`: is every v0.3 object encrypted exactly when the replica's config says so?
 * A misspelt `recipients:` makes Litestream write plaintext while the operator believes the
 * bucket holds ciphertext (Litestream #603), and Litestream's own restore then fails on those
 * objects. The probe reads the first 22 bytes of every snapshot and WAL segment (ranged reads),
 * so it covers old generations the restore never touches.
 */
import type { AgeSettings } from "../config/target.ts";
import { LitewardenError } from "../errors.ts";
import {
  AGE_PROBE_BYTES,
  AgeKeyError,
  isAgeEncrypted,
  parseAgeRecipients,
} from "../formats/age.ts";
import type { ReplicaListing } from "../replica/listing.ts";
import { mapLimit } from "../replica/pool.ts";
import { openKeyring } from "../storage/decrypting.ts";
import { readAll } from "../storage/storage.ts";
import type { Storage } from "../storage/storage.ts";
import { fail, pass, skip, warn } from "./check.ts";
import type { Check } from "./check.ts";

/** How many keys a message names before it says "and N more" (JSON `objects` has them all). */
const NAMED = 5;

export async function encryptionChecks(
  storage: Storage,
  listing: ReplicaListing,
  age: AgeSettings | undefined,
  parallelism: number,
): Promise<Check[]> {
  if (!listing.v03) {
    return [skip("replica.encryption", "no v0.3 objects (Litestream v0.5 does not encrypt)")];
  }
  const keys = listing.v03.generations.flatMap((g) => [
    ...g.snapshots.map((s) => ({ key: s.key, size: s.size })),
    ...g.segments.map((s) => ({ key: s.key, size: s.size })),
  ]);
  const encrypted = await mapLimit(keys, parallelism, async ({ key, size }) => {
    if (size < AGE_PROBE_BYTES) return false;
    const head = await readAll(await storage.get(key, { offset: 0, length: AGE_PROBE_BYTES }));
    return isAgeEncrypted(head);
  });
  const wanted = age !== undefined;
  const odd = keys.filter((_, i) => encrypted[i] !== wanted).map((k) => k.key);
  const total = keys.length;
  const checks: Check[] = [];
  if (odd.length === 0) {
    checks.push(pass(
      "replica.encryption",
      wanted
        ? `all ${total} snapshot and WAL objects are age-encrypted, as the replica's age: says`
        : `no snapshot or WAL object is age-encrypted (the replica has no age: settings)`,
    ));
  } else {
    const named = odd.slice(0, NAMED).join(", ") +
      (odd.length > NAMED ? ` and ${odd.length - NAMED} more (all in --json "objects")` : "");
    const check = wanted
      ? fail(
        "replica.encryption",
        `${odd.length} of ${total} snapshot and WAL objects are NOT age-encrypted although the replica's age: says they should be: ${named}; Litestream writes plaintext when age.recipients is missing or misspelt (Litestream issue #603): fix the config${
          unknownNote(age)
        }`,
        "usage",
      )
      : fail(
        "replica.encryption",
        `${odd.length} of ${total} snapshot and WAL objects are age-encrypted but the replica has no age: settings: ${named}; add age.identities to the replica in the config, or pass --age-identity FILE`,
        "usage",
      );
    checks.push({ ...check, objects: odd });
  }
  if (age && age.unknownKeys.length > 0 && odd.length === 0) {
    checks.push(warn("replica.age-settings", `the replica's age:${unknownNote(age).slice(1)}`));
  }
  checks.push(...(await keyMatchChecks(age)));
  return checks;
}

function unknownNote(age: AgeSettings | undefined): string {
  if (!age || age.unknownKeys.length === 0) return "";
  const keys = age.unknownKeys.map((k) => `${k}:`).join(", ");
  return `; ${keys} ${
    age.unknownKeys.length === 1 ? "is not a setting" : "are not settings"
  } Litestream reads (it reads identities: and recipients:)`;
}

/**
 * With both identities and recipients configured, at least one identity must belong to one of
 * the recipients: Litestream encrypts for the recipients, and restores with the identities.
 */
async function keyMatchChecks(age: AgeSettings | undefined): Promise<Check[]> {
  if (!age || age.identities.length === 0 || age.recipients.length === 0) return [];
  let mine: readonly string[];
  let configured: string[];
  try {
    mine = (await openKeyring(age))?.recipients ?? [];
    configured = age.recipients.flatMap((r) => parseAgeRecipients(r.text, r.source));
  } catch (err) {
    const message = err instanceof AgeKeyError || err instanceof LitewardenError
      ? err.message
      : String(err);
    return [fail("replica.age-keys", message, "usage")];
  }
  if (mine.some((r) => configured.includes(r))) {
    return [pass(
      "replica.age-keys",
      `the age identities given belong to ${
        mine.filter((r) => configured.includes(r)).join(", ")
      } of age.recipients`,
    )];
  }
  return [fail(
    "replica.age-keys",
    `none of the age identities given (recipients ${mine.join(", ")}) belongs to age.recipients (${
      configured.join(", ")
    }): what Litestream writes now cannot be decrypted with them; configure the matching identity`,
    "usage",
  )];
}
