/**
 * Oracle tests for age-encrypted v0.3 replicas: real Litestream v0.3.13 replicates with
 * `age: {identities, recipients}` (a key pair generated here), into a file replica and an S3
 * replica; `litestream restore` (config form: the only form in which Litestream decrypts) and
 * `litewarden restore` must write the same bytes, latest, per index, per generation and per time.
 * verify, snapshot-diff and prune run on the same encrypted replicas; identities never show up in
 * anything litewarden prints.
 */
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { generateAgeIdentity, isAgeEncrypted, recipientOf } from "../../src/formats/age.ts";
import { sha256hex } from "../formats/helpers.ts";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import type { CliResult } from "../support/cli.ts";
import {
  type DbConfig,
  fileReplicaObjects,
  fileReplicaUrl,
  litestreamRestore,
  retimeFileReplica,
  type RunResult,
  startReplicate,
  writeLitestreamConfig,
} from "../support/litestream.ts";
import { startS3Server } from "../support/s3_server.ts";
import {
  checkpoint,
  createWalDatabase,
  readUserTables,
  shrinkWithVacuum,
  writeBigTransaction,
  writeSmallTransactions,
} from "../support/sqlite_writer.ts";
import { makeTempDir } from "../support/tmp.ts";

Deno.env.set("NO_PROGRESS", "1");

const sha256 = async (path: string) => sha256hex(await Deno.readFile(path));

const hex = (n: number) => n.toString(16);
const iso = (t: Date) => t.toISOString().replace(".000Z", "Z");

interface KeyPair {
  identity: string;
  recipient: string;
}

async function keyPair(): Promise<KeyPair> {
  const identity = await generateAgeIdentity();
  return { identity, recipient: await recipientOf(identity, "test") };
}

/** No identity (nor any line of one) in anything litewarden printed. */
function assertNoIdentity(r: CliResult, ...pairs: KeyPair[]): void {
  for (const p of pairs) {
    for (const text of [r.stdout, r.stderr]) {
      assert(!text.includes(p.identity), `identity leaked:\n${text}`);
      // Even a fragment of the key's bech32 payload must not appear.
      assert(!text.includes(p.identity.slice(16, 40)), `identity fragment leaked:\n${text}`);
    }
  }
}

let seq = 0;

/** `litestream restore` and `litewarden restore` of the same point; both must succeed, same bytes. */
async function assertSameRestore(
  outDir: string,
  label: string,
  oracleArgs: string[],
  lwArgs: string[],
  ...keys: KeyPair[]
): Promise<string> {
  const n = ++seq;
  const a = join(outDir, `${n}.litestream.db`);
  const b = join(outDir, `${n}.litewarden.db`);
  const oracle: RunResult = await litestreamRestore(["-o", a, ...oracleArgs]);
  assertEquals(oracle.code, 0, `${label}: litestream restore failed:\n${oracle.stderr}`);
  const lw = await runCli(["restore", "-o", b, ...lwArgs]);
  assertEquals(lw.code, 0, `${label}: litewarden restore failed:\n${lw.stderr}`);
  assertNoIdentity(lw, ...keys);
  assertEquals(await sha256(b), await sha256(a), `${label}: litewarden's file differs`);
  return b;
}

/** Every snapshot and segment of a file replica starts with the age header, not LZ4. */
async function assertAllEncrypted(dir: string, generation?: string): Promise<number> {
  const objects = (await fileReplicaObjects(dir)).filter((o) =>
    !generation || o.generation === generation
  );
  assert(objects.length > 0);
  for (const o of objects) {
    const head = (await Deno.readFile(join(dir, o.key))).subarray(0, 22);
    assert(isAgeEncrypted(head), `${o.key} is not age-encrypted`);
  }
  return objects.length;
}

Deno.test("age-encrypted v0.3 file replica: restore, verify, snapshot-diff, prune", async (t) => {
  await using tmp = await makeTempDir();
  const outDir = tmp.join("out");
  await Deno.mkdir(outDir);
  const key = await keyPair();
  const other = await keyPair();
  const dbPath = tmp.join("app.db");
  const replica = tmp.join("replica");
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  const config = await writeLitestreamConfig(tmp.path, [
    {
      path: dbPath,
      minCheckpointPageCount: 100,
      replicas: [{
        path: replica,
        extra: { age: { identities: [key.identity], recipients: [key.recipient] } },
      }],
    } satisfies DbConfig,
  ]);
  const identityFile = tmp.join("key.txt");
  await Deno.writeTextFile(
    identityFile,
    `# created: 2026-01-01T00:00:00Z\n# public key: ${key.recipient}\n${key.identity}\n`,
  );
  const wrongFile = tmp.join("wrong.txt");
  await Deno.writeTextFile(wrongFile, `${other.identity}\n`);
  try {
    // Generation 1: several segments in index 0, checkpoints into indexes 1 and 2, a VACUUM.
    const rep = await startReplicate(config);
    try {
      for (let round = 0; round < 3; round++) {
        writeSmallTransactions(db, 10, { label: `small${round}` });
        await rep.waitForSync();
      }
      writeBigTransaction(db, { minPages: 200, label: "big1" });
      await rep.waitForSync();
      writeSmallTransactions(db, 10, { label: "idx1" });
      await rep.waitForSync();
      writeBigTransaction(db, { minPages: 200, label: "big2" });
      await rep.waitForSync();
      shrinkWithVacuum(db, { keepRows: 15 });
      writeSmallTransactions(db, 5, { label: "idx2" });
      await rep.waitForSync();
    } finally {
      await rep.stop();
    }
    // Generation 2: the WAL was truncated while Litestream was stopped.
    assertEquals(checkpoint(db, "TRUNCATE").busy, 0);
    const rep2 = await startReplicate(config);
    try {
      writeSmallTransactions(db, 8, { label: "gen2a" });
      await rep2.waitForSync();
      writeBigTransaction(db, { minPages: 200, label: "gen2big" });
      await rep2.waitForSync();
      writeSmallTransactions(db, 4, { label: "gen2b" });
      await rep2.waitForSync();
    } finally {
      await rep2.stop();
    }
    const total = await assertAllEncrypted(replica);

    // Object times: whole seconds 10 s apart in write order, so -timestamp hits each exactly.
    const objects = await retimeFileReplica(replica, new Date(Date.UTC(2026, 0, 1)));
    const times = new Map(objects.map((o) => [o.key, o.time]));
    const gens = [...new Set(objects.map((o) => o.generation))];
    assertEquals(gens.length, 2);
    const indexesOf = (g: string) => [
      ...new Set(objects.filter((o) => o.generation === g && o.kind === "wal").map((o) => o.index)),
    ];
    assert(indexesOf(gens[0]).length >= 3, `gen1 indexes ${indexesOf(gens[0])}`);
    const cfg = ["-config", config];
    const url = fileReplicaUrl(replica);

    await t.step("latest, every index, a generation, every object time", async () => {
      const latest = await assertSameRestore(
        outDir,
        "latest",
        [...cfg, dbPath],
        [...cfg, dbPath],
        key,
      );
      assertEquals(readUserTables(latest), readUserTables(dbPath));
      for (const g of gens) {
        for (const index of indexesOf(g)) {
          const args = ["-generation", g, "-index", hex(index)];
          await assertSameRestore(
            outDir,
            `${g} -index ${hex(index)}`,
            [...cfg, ...args, dbPath],
            [...cfg, ...args, dbPath],
            key,
          );
        }
      }
      await assertSameRestore(
        outDir,
        "gen1",
        [...cfg, "-generation", gens[0], dbPath],
        [...cfg, "-generation", gens[0], dbPath],
        key,
      );
      for (const [k, time] of times) {
        const args = ["-timestamp", iso(time)];
        await assertSameRestore(
          outDir,
          `-timestamp ${k}`,
          [...cfg, ...args, dbPath],
          [...cfg, ...args, dbPath],
          key,
        );
      }
    });

    await t.step("URL form: --age-identity FILE and the environment variables", async () => {
      // Litestream cannot decrypt in URL form; its config-form restore is the oracle.
      await assertSameRestore(
        outDir,
        "--age-identity",
        [...cfg, dbPath],
        ["--age-identity", identityFile, url],
        key,
      );
      // A wrong identity next to the right one is fine: any identity that fits is used.
      await assertSameRestore(
        outDir,
        "two identities",
        [...cfg, "-index", "1", "-generation", gens[0], dbPath],
        [
          "--age-identity",
          wrongFile,
          "--age-identity",
          identityFile,
          "-index",
          "1",
          "-generation",
          gens[0],
          url,
        ],
        key,
        other,
      );
      Deno.env.set("LITEWARDEN_AGE_IDENTITY_FILE", identityFile);
      try {
        await assertSameRestore(outDir, "env file", [...cfg, dbPath], [url], key);
      } finally {
        Deno.env.delete("LITEWARDEN_AGE_IDENTITY_FILE");
      }
      Deno.env.set("LITEWARDEN_AGE_IDENTITY", key.identity);
      try {
        await assertSameRestore(outDir, "env identity", [...cfg, dbPath], [url, "--json"], key);
      } finally {
        Deno.env.delete("LITEWARDEN_AGE_IDENTITY");
      }
    });

    await t.step(
      "a wrong or missing identity is exit 2 naming the recipient, never damage",
      async () => {
        const out = join(outDir, "wrong.db");
        const wrong = await runCli(["restore", "--age-identity", wrongFile, "-o", out, url]);
        assertEquals(wrong.code, 2, wrong.stderr);
        assertStringIncludes(
          wrong.stderr,
          `none of the 1 age identity (recipient ${other.recipient}) can decrypt generations/`,
        );
        assert(!/damaged/.test(wrong.stderr), wrong.stderr);
        assertEquals(wrong.stderr.trim().split("\n").length, 1, wrong.stderr);
        assertNoIdentity(wrong, key, other);
        assert(!(await Deno.stat(out).then(() => true, () => false)), "no output on failure");

        const none = await runCli(["restore", "-o", out, url]);
        assertEquals(none.code, 2, none.stderr);
        assertStringIncludes(none.stderr, "is age-encrypted and no age identity was given");
        assertStringIncludes(none.stderr, "--age-identity FILE");

        const verifyWrong = await runCli(["verify", "--age-identity", wrongFile, url, "--json"]);
        assertEquals(verifyWrong.code, 2, verifyWrong.stdout);
        const doc = JSON.parse(verifyWrong.stdout);
        const apply = doc.checks.find((c: { id: string }) => c.id === "restore.apply");
        assertEquals(apply.status, "fail");
        assertStringIncludes(apply.message, other.recipient);
        assertNoIdentity(verifyWrong, key, other);

        // A file that is not an identity file: its line is named, its content is not printed.
        const junk = tmp.join("junk.txt");
        await Deno.writeTextFile(junk, `# mine\n${key.identity.slice(0, 30)}x\n`);
        const bad = await runCli(["restore", "--age-identity", junk, "-o", out, url]);
        assertEquals(bad.code, 2, bad.stderr);
        assertStringIncludes(bad.stderr, `line 2 of age identity file ${junk}`);
        assertNoIdentity(bad, key);
      },
    );

    await t.step("verify passes and checks every object's encryption", async () => {
      const r = await runCli(["verify", ...cfg, dbPath, "--json"]);
      assertEquals(r.code, 0, r.stdout);
      assertNoIdentity(r, key);
      const doc = JSON.parse(r.stdout);
      const enc = doc.checks.find((c: { id: string }) => c.id === "replica.encryption");
      assertEquals(enc.status, "pass", enc.message);
      assertStringIncludes(enc.message, `all ${total} snapshot and WAL objects are age-encrypted`);
      const text = await runCli(["verify", "--age-identity", identityFile, url]);
      assertEquals(text.code, 0, text.stdout);
      assertNoIdentity(text, key);

      // The writer's config holds only the recipient; the identity comes from the environment.
      const writerConfig = await writeLitestreamConfig(tmp.path, [{
        path: dbPath,
        replicas: [{ path: replica, extra: { age: { recipients: [key.recipient] } } }],
      }], { fileName: "writer.yml" });
      Deno.env.set("LITEWARDEN_AGE_IDENTITY", key.identity);
      try {
        const w = await runCli(["verify", "-config", writerConfig, dbPath, "--json"]);
        assertEquals(w.code, 0, w.stdout);
        assertNoIdentity(w, key);
        const keys = JSON.parse(w.stdout).checks.find((c: { id: string }) =>
          c.id === "replica.age-keys"
        );
        assertEquals(keys.status, "pass", keys.message);
      } finally {
        Deno.env.delete("LITEWARDEN_AGE_IDENTITY");
      }
      // An identity that belongs to none of the recipients: named by its recipient, exit 2.
      const m = await runCli([
        "verify",
        "-config",
        writerConfig,
        dbPath,
        "--age-identity",
        wrongFile,
        "--json",
      ]);
      assertEquals(m.code, 2, m.stdout);
      assertNoIdentity(m, key, other);
      const mismatch = JSON.parse(m.stdout).checks.find((c: { id: string }) =>
        c.id === "replica.age-keys"
      );
      assertEquals(mismatch.status, "fail");
      assertStringIncludes(mismatch.message, `recipients ${other.recipient}`);
      assertStringIncludes(mismatch.message, `age.recipients (${key.recipient})`);
    });

    await t.step("snapshot-diff between two encrypted points", async () => {
      const r = await runCli([
        "snapshot-diff",
        ...cfg,
        dbPath,
        "--from",
        `${iso(times.get(objects[0].key)!)}`,
        "--json",
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertNoIdentity(r, key);
      const doc = JSON.parse(r.stdout);
      assert(JSON.stringify(doc).includes("items"), r.stdout);
    });

    await t.step("list needs no key", async () => {
      const r = await runCli(["list", url, "--json"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(r.stdout).replicas[0].generations.length, 2);
    });

    await t.step("prune: the older generation goes, the newest point still restores", async () => {
      const before = await assertSameRestore(outDir, "pre-prune", [...cfg, dbPath], [
        ...cfg,
        dbPath,
      ], key);
      const dry = await runCli(["prune", ...cfg, dbPath, "--keep-last", "1", "--min-age", "0s"]);
      assertEquals(dry.code, 0, dry.stderr);
      assertEquals((await fileReplicaObjects(replica)).length, total, "a dry run deletes nothing");
      const r = await runCli([
        "prune",
        ...cfg,
        dbPath,
        "--keep-last",
        "1",
        "--min-age",
        "0s",
        "--apply",
        "--json",
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertNoIdentity(r, key);
      const left = await fileReplicaObjects(replica);
      assert(left.length < total, "prune deleted nothing");
      assert(left.every((o) => o.generation === gens[1]), "gen1 should be gone");
      const after = await assertSameRestore(outDir, "post-prune", [...cfg, dbPath], [
        ...cfg,
        dbPath,
      ], key);
      assertEquals(await sha256(after), await sha256(before));
      const v = await runCli(["verify", ...cfg, dbPath]);
      assertEquals(v.code, 0, v.stdout);
    });
  } finally {
    db.close();
  }
});

Deno.test("mixed replica (Litestream #603): verify names every plaintext object; restore still works", async () => {
  await using tmp = await makeTempDir();
  const key = await keyPair();
  const dbPath = tmp.join("app.db");
  const replica = tmp.join("replica");
  const db = createWalDatabase(dbPath);
  const configFor = (age: Record<string, unknown>, fileName: string) =>
    writeLitestreamConfig(tmp.path, [{
      path: dbPath,
      replicas: [{ path: replica, extra: { age } }],
    }], {
      fileName,
    });
  const good = await configFor(
    { identities: [key.identity], recipients: [key.recipient] },
    "a.yml",
  );
  // The typo: `recipient:` is not a Litestream setting, so it writes plaintext.
  const typo = await configFor({ identities: [key.identity], recipient: [key.recipient] }, "b.yml");
  try {
    const rep = await startReplicate(good);
    try {
      writeSmallTransactions(db, 5, { label: "encrypted" });
      await rep.waitForSync();
    } finally {
      await rep.stop();
    }
    const [encryptedGen] = [
      ...new Set((await fileReplicaObjects(replica)).map((o) => o.generation)),
    ];
    assertEquals(checkpoint(db, "TRUNCATE").busy, 0);
    const rep2 = await startReplicate(typo);
    try {
      writeSmallTransactions(db, 5, { label: "plain" });
      await rep2.waitForSync();
    } finally {
      await rep2.stop();
    }
    const objects = await fileReplicaObjects(replica);
    const plain = objects.filter((o) => o.generation !== encryptedGen).map((o) => o.key).sort();
    assert(plain.length >= 2, `plaintext objects: ${plain}`);
    await assertAllEncrypted(replica, encryptedGen);

    for (const cfg of [good, typo]) {
      const r = await runCli(["verify", "-config", cfg, dbPath, "--json"]);
      assertEquals(r.code, 2, r.stdout);
      assertNoIdentity(r, key);
      const enc = JSON.parse(r.stdout).checks.find((c: { id: string }) =>
        c.id === "replica.encryption"
      );
      assertEquals(enc.status, "fail");
      assertEquals([...enc.objects].sort(), plain);
      assertStringIncludes(enc.message, `${plain.length} of ${objects.length}`);
      assertStringIncludes(enc.message, "NOT age-encrypted");
      if (cfg === typo) assertStringIncludes(enc.message, "recipient: is not a setting");
    }
    // Without any age settings, the encrypted generation is what verify reports.
    const noAge = await runCli(["verify", fileReplicaUrl(replica), "--json"]);
    assertEquals(noAge.code, 2, noAge.stdout);
    const enc = JSON.parse(noAge.stdout).checks.find((c: { id: string }) =>
      c.id === "replica.encryption"
    );
    assertEquals(
      [...enc.objects].sort(),
      objects.filter((o) => o.generation === encryptedGen).map((o) => o.key).sort(),
    );

    // Litestream cannot restore the plaintext generation with age configured; litewarden can.
    const oracle = await litestreamRestore(["-config", typo, "-o", tmp.join("ls.db"), dbPath]);
    assert(oracle.code !== 0, "litestream restore unexpectedly read plaintext through age");
    const out = tmp.join("lw.db");
    const lw = await runCli(["restore", "-config", typo, "-o", out, dbPath]);
    assertEquals(lw.code, 0, lw.stderr);
    assertEquals(readUserTables(out), readUserTables(dbPath));
    // And the encrypted generation, point in time, equals Litestream's with the good config.
    await assertSameRestore(
      tmp.path,
      "encrypted generation",
      ["-config", good, "-generation", encryptedGen, dbPath],
      ["-config", typo, "-generation", encryptedGen, dbPath],
      key,
    );
  } finally {
    db.close();
  }
});

Deno.test("age-encrypted v0.3 S3 replica: restore equals litestream restore; verify passes", async () => {
  await using tmp = await makeTempDir();
  const outDir = tmp.join("out");
  await Deno.mkdir(outDir);
  const server = await startS3Server();
  const bucket = "lw-age";
  const creds = server.credentials;
  const key = await keyPair();
  const dbPath = tmp.join("app.db");
  const db = createWalDatabase(dbPath, { pageSize: 4096 });
  const client = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds,
  });
  const saved = {
    id: Deno.env.get("AWS_ACCESS_KEY_ID"),
    secret: Deno.env.get("AWS_SECRET_ACCESS_KEY"),
  };
  try {
    await server.createBucket(bucket);
    const config = await writeLitestreamConfig(tmp.path, [{
      path: dbPath,
      minCheckpointPageCount: 100,
      replicas: [{
        type: "s3",
        bucket,
        path: "vault",
        region: "us-east-1",
        endpoint: server.endpoint,
        forcePathStyle: true,
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        extra: { age: { identities: [key.identity], recipients: [key.recipient] } },
      }],
    }]);
    for (let gen = 0; gen < 2; gen++) {
      if (gen > 0) assertEquals(checkpoint(db, "TRUNCATE").busy, 0);
      const rep = await startReplicate(config);
      try {
        writeSmallTransactions(db, 10, { label: `g${gen}a` });
        await rep.waitForSync();
        writeBigTransaction(db, { minPages: 150, label: `g${gen}big` });
        await rep.waitForSync();
        writeSmallTransactions(db, 10, { label: `g${gen}b` });
        await rep.waitForSync();
        if (gen === 0) {
          shrinkWithVacuum(db, { keepRows: 12 });
          await rep.waitForSync();
        }
      } finally {
        await rep.stop();
      }
    }
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const objects = (listed.Contents ?? []).map((o) => ({
      key: o.Key ?? "",
      time: o.LastModified ?? new Date(0),
    })).filter((o) => /\.lz4$/.test(o.key));
    const gens = [...new Set(objects.map((o) => o.key.split("/")[2]))].sort();
    assertEquals(gens.length, 2, `generations: ${gens}`);

    Deno.env.set("AWS_ACCESS_KEY_ID", creds.accessKeyId);
    Deno.env.set("AWS_SECRET_ACCESS_KEY", creds.secretAccessKey);
    const cfg = ["-config", config];
    const url = `s3://${bucket}/vault?endpoint=${server.endpoint}&force-path-style=true`;
    const identityFile = tmp.join("key.txt");
    await Deno.writeTextFile(identityFile, `${key.identity}\n`);

    // Every stored object is ciphertext.
    const storage = new (await import("../../src/storage/s3.ts")).S3Storage({
      type: "s3",
      name: "s3",
      bucket,
      path: "vault",
      endpoint: server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      skipVerify: false,
      credentials: creds,
    });
    try {
      for (const o of objects) {
        const rel = o.key.slice("vault/".length);
        const s = await storage.get(rel, { offset: 0, length: 22 });
        assert(isAgeEncrypted(new Uint8Array(await new Response(s).arrayBuffer())), o.key);
      }
    } finally {
      storage.close();
    }

    const latest = await assertSameRestore(
      outDir,
      "latest",
      [...cfg, dbPath],
      [...cfg, dbPath],
      key,
    );
    assertEquals(readUserTables(latest), readUserTables(dbPath));
    await assertSameRestore(outDir, "latest via URL", [...cfg, dbPath], [
      "--age-identity",
      identityFile,
      url,
    ], key);
    for (const g of gens) {
      const indexes = [
        ...new Set(
          objects.flatMap((o) => {
            const m = new RegExp(`^vault/generations/${g}/wal/([0-9a-f]{8})_`).exec(o.key);
            return m ? [parseInt(m[1], 16)] : [];
          }),
        ),
      ];
      assert(indexes.length >= 2, `indexes of ${g}: ${indexes}`);
      for (const index of indexes) {
        const args = ["-generation", g, "-index", hex(index)];
        await assertSameRestore(outDir, `${g}/${hex(index)}`, [...cfg, ...args, dbPath], [
          ...cfg,
          ...args,
          dbPath,
        ], key);
      }
    }
    for (const o of objects) {
      const args = ["-timestamp", o.time.toISOString()];
      await assertSameRestore(outDir, `-timestamp ${o.key}`, [...cfg, ...args, dbPath], [
        ...cfg,
        ...args,
        dbPath,
      ], key);
    }
    const v = await runCli(["verify", ...cfg, dbPath, "--json"]);
    assertEquals(v.code, 0, v.stdout);
    assertNoIdentity(v, key);
    const enc = JSON.parse(v.stdout).checks.find((c: { id: string }) =>
      c.id === "replica.encryption"
    );
    assertEquals(enc.status, "pass");
    const pruned = await runCli(["prune", ...cfg, dbPath, "--keep-last", "1", "--min-age", "0s"]);
    assertEquals(pruned.code, 0, pruned.stderr);
    assertNoIdentity(pruned, key);
  } finally {
    for (
      const [k, v] of [["AWS_ACCESS_KEY_ID", saved.id], ["AWS_SECRET_ACCESS_KEY", saved.secret]]
    ) {
      if (v === undefined) Deno.env.delete(k!);
      else Deno.env.set(k!, v);
    }
    client.destroy();
    db.close();
    await server.stop();
  }
});
