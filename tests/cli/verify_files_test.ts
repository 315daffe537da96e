/**
 * `verify`'s files layer end to end: a Vaultwarden database replicated by the real Litestream
 * v0.3.13 to the S3 server, its attachment and send bodies and its key and settings versions
 * stored beside the replica (`.litewarden/files/`, as the companion stores them). Missing bodies,
 * a body of the wrong size, a row still uploading, a damaged or encrypted key version, nothing
 * stored at all; and `verify --file DB --data-dir DIR` on a good and a damaged local data folder.
 * Counts and sizes are reported, never an attachment's (encrypted) name, the key or the settings.
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli, runCliJson } from "../support/cli.ts";
import type { CliResult } from "../support/cli.ts";
import { startReplicate, writeLitestreamConfig } from "../support/litestream.ts";
import { s3TargetFor, startS3Server } from "../support/s3_server.ts";
import { openWalDatabase } from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";
import { bytes } from "../support/bytes.ts";
import { ageEncrypt, generateAgeIdentity, recipientOf } from "../../src/formats/age.ts";
import { readReferencedFiles } from "../../src/apps/vaultwarden/data_folder.ts";
import { FILES_BASE, versionKey } from "../../src/replica/vault_files.ts";
import { writeBackfill } from "../../src/replica/vault_backfill.ts";
import type { SecretName } from "../../src/replica/vault_files.ts";
import { S3Storage } from "../../src/storage/s3.ts";

const VW = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;

interface CheckDoc {
  id: string;
  status: "pass" | "warn" | "fail" | "skip";
  message: string;
  objects?: string[];
}

interface Counts {
  rows: number;
  present: number;
  bytes: number;
  missing: number;
  wrongSize: number;
  uploading: number;
}

interface VerifyDoc {
  ok: boolean;
  exitCode: number;
  checks: CheckDoc[];
  files?: { attachments: Counts; sends: Counts; invalidRows: number };
}

const check = (doc: VerifyDoc, id: string): CheckDoc => {
  const c = doc.checks.find((c) => c.id === id);
  assert(c, `no ${id} in ${doc.checks.map((c) => c.id).join(" ")}`);
  return c;
};

/** A real RSA key as Vaultwarden writes it (PKCS#1 PEM), made by openssl. */
async function rsaKeyPem(): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["genrsa", "-traditional", "2048"],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) {
    // Older OpenSSL writes PKCS#1 without the flag.
    const old = await new Deno.Command("openssl", { args: ["genrsa", "2048"], stdout: "piped" })
      .output();
    return new TextDecoder().decode(old.stdout);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Every line litewarden printed must be free of these (names, key, settings, secrets). */
function assertNothingSecret(r: CliResult, secrets: string[]) {
  for (const s of secrets) {
    assert(!(r.stdout + r.stderr).includes(s), `printed a secret: ${s.slice(0, 40)}…`);
  }
}

Deno.test("verify: a replica's attachments, sends, key and settings beside it on S3", async (t) => {
  await using tmp = await makeTempDir();
  const server = await startS3Server();
  const target = s3TargetFor(server, "vault", "vw");
  const storage = new S3Storage(target);
  try {
    await server.createBucket("vault");
    const dbPath = tmp.join("db.sqlite3");
    await Deno.copyFile(`${VW}vw-1.37.2-populated.sqlite3`, dbPath);
    const config = await writeLitestreamConfig(tmp.path, [{
      path: dbPath,
      replicas: [{
        type: "s3",
        bucket: "vault",
        path: "vw",
        endpoint: server.endpoint,
        forcePathStyle: true,
        accessKeyId: server.credentials.accessKeyId,
        secretAccessKey: server.credentials.secretAccessKey,
      }],
    }]);
    const db = openWalDatabase(dbPath);
    const rep = await startReplicate(config);
    try {
      db.exec("UPDATE users SET updated_at = updated_at"); // a first transaction to replicate
      await rep.waitForSync();

      // What the database references, and its encrypted names (never to be printed).
      const referenced = readReferencedFiles(dbPath).files;
      assertEquals(referenced.filter((f) => f.kind === "attachment").length, 5);
      assertEquals(referenced.filter((f) => f.kind === "send").length, 1);
      const names = new DatabaseSync(dbPath, { readOnly: true });
      const secrets = names.prepare("SELECT file_name FROM attachments").all().map((r) =>
        String(r.file_name)
      );
      names.close();
      const key = await rsaKeyPem();
      const settings = { admin_token: "admin-token-3f9d1c", smtp_password: "smtp-pw-77a2b4" };
      secrets.push(key.split("\n")[1], settings.admin_token, settings.smtp_password);
      secrets.push(server.credentials.secretAccessKey);

      const put = (key: string, data: Uint8Array) => storage.put(key, data);
      const putBody = (rel: string, size: number, seed: number) =>
        put(`${FILES_BASE}${rel}`, bytes(size, seed));
      const putVersion = (name: SecretName, time: Date, data: Uint8Array, encrypted = false) =>
        put(`${FILES_BASE}${versionKey(name, time, "0123456789abcdef", encrypted)}`, data);
      const verify = async (...extra: string[]) =>
        await runCliJson<VerifyDoc>(["verify", dbPath, "--config", config, "--json", ...extra]);

      await t.step("nothing stored here (no companion uploading files): skipped", async () => {
        const r = await verify();
        assertEquals(r.code, 0, r.stdout);
        assertEquals(r.json.checks.filter((c) => c.status === "warn"), []);
        for (const id of ["files.attachments", "files.sends", "files.rsa-key", "files.config"]) {
          assertEquals(check(r.json, id).status, "skip", id);
        }
        assertStringIncludes(
          check(r.json, "files.attachments").message,
          "5 attachment row(s) not checked: no vault files are stored",
        );
        assertEquals(r.json.files?.attachments.present, 0);
        assertNothingSecret(r, secrets);
      });

      const old = new Date(Date.now() - 86_400_000);
      await t.step("every body, the key and the settings stored: all pass", async () => {
        for (const [i, f] of referenced.entries()) await putBody(f.rel, f.size!, i + 1);
        await putVersion("rsa_key.pem", old, new TextEncoder().encode(key));
        await putVersion("config.json", old, new TextEncoder().encode(JSON.stringify(settings)));
        const r = await verify();
        assertEquals(r.code, 0, r.stdout);
        for (const id of ["files.attachments", "files.sends", "files.rsa-key", "files.config"]) {
          assertEquals(check(r.json, id).status, "pass", JSON.stringify(check(r.json, id)));
        }
        const total = referenced.filter((f) => f.kind === "attachment")
          .reduce((n, f) => n + f.size!, 0);
        assertEquals(r.json.files?.attachments, {
          rows: 5,
          present: 5,
          bytes: total,
          missing: 0,
          wrongSize: 0,
          uploading: 0,
        });
        assertEquals(r.json.files?.sends.present, 1);
        assertStringIncludes(check(r.json, "files.attachments").message, "5 attachment row(s)");
        assertNothingSecret(r, secrets);
        // The text report too.
        const text = await runCli(["verify", dbPath, "--config", config]);
        assertEquals(text.code, 0, text.stdout);
        assertMatch(text.stdout, /ok +files\.rsa-key +rsa_key\.pem version of .*a PEM RSA/);
        assertNothingSecret(text, secrets);
      });

      const [a1, a2, a3] = referenced.filter((f) => f.kind === "attachment");
      await t.step("missing bodies fail (exit 5) with counts and sizes", async () => {
        await storage.delete([`${FILES_BASE}${a1.rel}`, `${FILES_BASE}${a2.rel}`]);
        const r = await verify();
        assertEquals(r.code, 5, r.stdout);
        const c = check(r.json, "files.attachments");
        assertEquals(c.status, "fail");
        assertStringIncludes(c.message, "5 attachment row(s), 3 bodies present");
        assertStringIncludes(c.message, "2 row(s) have no body");
        assertEquals(c.objects?.sort(), [a1.rel, a2.rel].sort());
        assertEquals(r.json.files?.attachments.missing, 2);
        assertEquals(check(r.json, "files.sends").status, "pass");
        assertNothingSecret(r, secrets);
      });

      await t.step(
        "while the companion's backfill runs, missing bodies warn with its progress",
        async () => {
          const store = { storage, base: FILES_BASE };
          const started = new Date(Date.now() - 60_000).toISOString();
          const running = {
            version: 1 as const,
            started,
            updated: new Date().toISOString(),
            done: null,
            files: { total: 6, uploaded: 4 },
            bytes: { total: 2_000_000, uploaded: 1_500_000 },
          };
          await writeBackfill(store, running);
          const r = await verify();
          assertEquals(r.code, 0, r.stdout);
          assertEquals(check(r.json, "files.attachments").status, "warn");
          assertStringIncludes(check(r.json, "files.attachments").message, "still running");
          const b = check(r.json, "files.backfill");
          assertEquals(b.status, "warn");
          assertStringIncludes(b.message, "4 of 6 file(s), 1.4 MiB of 1.9 MiB uploaded");
          await writeBackfill(store, { ...running, done: new Date().toISOString() });
          const after = await verify();
          assertEquals(after.code, 5, after.stdout);
          assertEquals(check(after.json, "files.backfill").status, "pass");
          await putBody(a1.rel, a1.size!, 1);
          await putBody(a2.rel, a2.size!, 2);
        },
      );

      await t.step("a body of another size than its row fails", async () => {
        await putBody(a3.rel, a3.size! - 1, 3);
        const r = await verify();
        assertEquals(r.code, 5, r.stdout);
        const c = check(r.json, "files.attachments");
        assertStringIncludes(c.message, "1 body has another size than its row records");
        assertEquals(c.objects, [a3.rel]);
        assertEquals(r.json.files?.attachments.wrongSize, 1);
        await putBody(a3.rel, a3.size!, 3);
      });

      await t.step("a row younger than the grace period warns; past it, it fails", async () => {
        // An upload in progress: Vaultwarden wrote the row (and touched the item) first.
        const cipher = String(
          db.prepare("SELECT cipher_uuid FROM attachments LIMIT 1").get()!.cipher_uuid,
        );
        const now = new Date().toISOString().replace("T", " ").replace("Z", "000000");
        db.prepare(
          "INSERT INTO attachments (id, cipher_uuid, file_name, file_size, akey) VALUES (?, ?, ?, ?, ?)",
        ).run("0123456789abcdef0123", cipher, "2.bmV3|bmV3|bmV3", 4096, "2.a");
        db.prepare("UPDATE ciphers SET updated_at = ? WHERE uuid = ?").run(now, cipher);
        await rep.waitForSync();
        const r = await verify();
        assertEquals(r.code, 0, r.stdout);
        const c = check(r.json, "files.attachments");
        assertEquals(c.status, "warn");
        assertStringIncludes(c.message, "1 row(s) younger than the grace period (1h)");
        assertEquals(c.objects, [`attachments/${cipher}/0123456789abcdef0123`]);
        assertEquals(r.json.files?.attachments.uploading, 1);
        await new Promise((r) => setTimeout(r, 1100));
        const late = await verify("--files-grace", "1s");
        assertEquals(late.code, 5, late.stdout);
        assertEquals(check(late.json, "files.attachments").status, "fail");
        // The upload finished.
        await putBody(`attachments/${cipher}/0123456789abcdef0123`, 4096, 9);
        assertEquals((await verify("--files-grace", "1s")).code, 0);
      });

      await t.step(
        "a key version that does not parse fails; its content is never printed",
        async () => {
          const later = new Date(Date.now() - 3_600_000);
          const broken = key.slice(0, 400); // a truncated PEM
          await putVersion("rsa_key.pem", later, new TextEncoder().encode(broken));
          const r = await verify();
          assertEquals(r.code, 5, r.stdout);
          const c = check(r.json, "files.rsa-key");
          assertEquals(c.status, "fail");
          assertStringIncludes(c.message, "does not parse as a PEM RSA private key");
          assertStringIncludes(c.message, "2 stored");
          assertNothingSecret(r, [...secrets, broken.split("\n")[2]]);
          await storage.delete([
            `${FILES_BASE}${versionKey("rsa_key.pem", later, "0123456789abcdef", false)}`,
          ]);
        },
      );

      await t.step("settings that are not JSON fail", async () => {
        const later = new Date(Date.now() - 3_600_000);
        await putVersion("config.json", later, new TextEncoder().encode("{admin_token: x"));
        const r = await verify();
        assertEquals(r.code, 5, r.stdout);
        assertStringIncludes(check(r.json, "files.config").message, "it is not JSON");
        await storage.delete([
          `${FILES_BASE}${versionKey("config.json", later, "0123456789abcdef", false)}`,
        ]);
      });

      await t.step(
        "an age-encrypted key version: decrypted with the identity, exit 2 without",
        async () => {
          const identity = await generateAgeIdentity();
          const recipient = await recipientOf(identity, "test identity");
          const later = new Date(Date.now() - 3_600_000);
          await putVersion(
            "rsa_key.pem",
            later,
            await ageEncrypt(new TextEncoder().encode(key), [recipient]),
            true,
          );
          const idFile = tmp.join("age.txt");
          await Deno.writeTextFile(idFile, `${identity}\n`);
          const r = await verify("--age-identity", idFile);
          // This database replica is plaintext, which an identity makes replica.encryption
          // report; the key version decrypts and parses.
          assertEquals(r.json.checks.filter((c) => c.status === "fail").map((c) => c.id), [
            "replica.encryption",
          ]);
          assertEquals(check(r.json, "files.rsa-key").status, "pass");
          assertStringIncludes(check(r.json, "files.rsa-key").message, "(age-encrypted)");
          assertNothingSecret(r, [...secrets, identity]);
          const without = await verify();
          assertEquals(without.code, 2, without.stdout);
          assertStringIncludes(check(without.json, "files.rsa-key").message, "no age identity");
        },
      );
    } finally {
      await rep.stop();
      db.close();
    }
  } finally {
    storage.close();
    await server.stop();
  }
});

Deno.test("verify --file DB --data-dir DIR: a good and a damaged local data folder, read-only", async () => {
  await using tmp = await makeTempDir();
  const data = tmp.join("data");
  await Deno.mkdir(data);
  const dbPath = `${data}/db.sqlite3`;
  await Deno.copyFile(`${VW}vw-1.37.2-populated.sqlite3`, dbPath);
  const files = readReferencedFiles(dbPath).files;
  for (const [i, f] of files.entries()) {
    const path = `${data}/${f.rel}`;
    await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeFile(path, bytes(f.size!, i + 1));
  }
  const key = await rsaKeyPem();
  await Deno.writeTextFile(`${data}/rsa_key.pem`, key);
  await Deno.writeTextFile(`${data}/config.json`, JSON.stringify({ admin_token: "tok-51c0e2" }));
  const listing = async () => {
    const out: string[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(`${dir}/${e.name}`);
        else {
          const st = await Deno.stat(`${dir}/${e.name}`);
          out.push(`${dir}/${e.name} ${st.size} ${st.mtime?.getTime()}`);
        }
      }
    };
    await walk(data);
    return out.sort();
  };
  const before = await listing();

  const good = await runCliJson<VerifyDoc>([
    "verify",
    "--file",
    dbPath,
    "--data-dir",
    data,
    "--json",
  ]);
  assertEquals(good.code, 0, good.stdout);
  for (const id of ["files.attachments", "files.sends", "files.rsa-key", "files.config"]) {
    assertEquals(check(good.json, id).status, "pass", JSON.stringify(check(good.json, id)));
  }
  assertEquals(good.json.files?.attachments.present, 5);
  assert(!good.stdout.includes(key.split("\n")[1]) && !good.stdout.includes("tok-51c0e2"));

  // Damage: one body gone, one cut short, the key unreadable as a key.
  const [gone, short] = files.filter((f) => f.kind === "attachment");
  await Deno.remove(`${data}/${gone.rel}`);
  await Deno.truncate(`${data}/${short.rel}`, 10);
  await Deno.writeTextFile(`${data}/rsa_key.pem`, "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n");
  const damagedBefore = await listing();
  const bad = await runCliJson<VerifyDoc>([
    "verify",
    "--file",
    dbPath,
    "--data-dir",
    data,
    "--json",
  ]);
  assertEquals(bad.code, 7, bad.stdout);
  const c = check(bad.json, "files.attachments");
  assertEquals(c.status, "fail");
  assertStringIncludes(c.message, "1 row(s) have no body");
  assertStringIncludes(c.message, "1 body has another size than its row records");
  assertEquals(c.objects?.sort(), [gone.rel, short.rel].sort());
  assertEquals(check(bad.json, "files.rsa-key").status, "fail");
  assertEquals(check(bad.json, "files.sends").status, "pass");
  // Read-only: nothing in the folder changed (no -wal/-shm beside the database either).
  assertEquals(await listing(), damagedBefore);
  assertEquals(before.length, damagedBefore.length + 1);

  // No key at all: Vaultwarden would make a new one; a warning, not a failure.
  await Deno.remove(`${data}/rsa_key.pem`);
  const text = await runCli(["verify", "--file", dbPath, "--data-dir", data]);
  assertEquals(text.code, 7, text.stdout);
  assertMatch(
    text.stdout,
    /WARN {2}files\.rsa-key +no .*rsa_key\.pem: Vaultwarden makes a new key/,
  );
  assertMatch(text.stdout, /FAIL {2}files\.attachments +5 attachment row\(s\), 4 bodies present/);

  // --data-dir needs --file.
  const usage = await runCli(["verify", "s3://b/p", "--data-dir", data]);
  assertEquals(usage.code, 2);
  assertStringIncludes(usage.stderr, "--data-dir checks a local data folder");
});
