/**
 * The stand-in Vaultwarden (fake_vaultwarden.ts) does what the vault tests rely on: a real RSA key
 * made once and kept, attachments and file sends written after their rows with the rows' sizes
 * made real, deletes, config.json; its data folder then passes `verify --file DB --data-dir DIR`,
 * and an attachment whose body never came fails it once past the grace period.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCliJson } from "../support/cli.ts";
import { makeTempDir } from "../support/tmp.ts";
import { readReferencedFiles } from "../../src/apps/vaultwarden/data_folder.ts";
import { secretProblem } from "../../src/apps/vaultwarden/files_check.ts";
import { attachmentRel, fileBody, sendCommand, sendRel, sha256Hex } from "./fake_vaultwarden.ts";
import type { FakeAction, FakeVaultwardenReport } from "./fake_vaultwarden.ts";

const APP = new URL("./fake_vaultwarden.ts", import.meta.url).pathname;

Deno.test("the stand-in Vaultwarden writes a data folder the files checks accept", async () => {
  await using tmp = await makeTempDir();
  const data = tmp.join("data");
  const control = tmp.join("control");
  await Deno.mkdir(data);
  await Deno.mkdir(control);
  const report = tmp.join("report.jsonl");
  const db = `${data}/db.sqlite3`;
  const start = (boot: string, script: FakeAction[] = []) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", APP],
      env: {
        FAKE_VW_DB: db,
        FAKE_VW_BOOT: boot,
        FAKE_VW_REPORT: report,
        FAKE_VW_CONTROL: control,
        FAKE_VW_SCRIPT: JSON.stringify(script),
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  const reportOf = async (boot: string): Promise<FakeVaultwardenReport> => {
    for (let i = 0; i < 400; i++) {
      const lines = await Deno.readTextFile(report).catch(() => "");
      const mine = lines.split("\n").filter((l) => l).map((l) => JSON.parse(l))
        .find((r: FakeVaultwardenReport) => r.boot === boot);
      if (mine) return mine;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no report from boot ${boot}`);
  };

  const first = start("one", [{ op: "attach", name: "a1", size: 5000, chunks: 4 }]);
  try {
    const r1 = await reportOf("one");
    assertEquals(r1.error, undefined);
    assertEquals(r1.found, {});
    assertEquals(r1.key?.generated, true);
    const pem = await Deno.readFile(`${data}/rsa_key.pem`);
    assertEquals(secretProblem("rsa_key.pem", pem), undefined);
    assertStringIncludes(new TextDecoder().decode(pem), "-----BEGIN RSA PRIVATE KEY-----");
    assertEquals(r1.script?.[0].rel, attachmentRel("a1"));

    const results = await sendCommand(control, [
      { op: "attach", name: "a2", cipher: "a1", size: 70_000, declaredSize: 69_000 },
      { op: "send", name: "s1", size: 1234 },
      { op: "send", name: "s2", size: 10 },
      { op: "delete-send", name: "s2" },
      { op: "attach", name: "gave-up", size: 100, body: false },
      { op: "config", settings: { admin_token: "t0k3n" } },
    ]);
    assertEquals(results.map((r) => r.op), [
      "attach",
      "send",
      "send",
      "delete-send",
      "attach",
      "config",
    ]);
    assertEquals(
      await Deno.readFile(`${data}/${attachmentRel("a2", "a1")}`),
      fileBody("a2", 70_000),
    );
  } finally {
    first.kill("SIGTERM");
    await first.output();
  }
  {
    // Stopped, the app has checkpointed its WAL: the database file holds every row.
    const files = readReferencedFiles(db).files;
    assertEquals(
      files.map((f) => [f.rel, f.size]).sort(),
      [
        [attachmentRel("a1"), 5000],
        [attachmentRel("a2", "a1"), 70_000], // the declared size, made real after the upload
        [attachmentRel("gave-up"), 100],
        [sendRel("s1"), 1234],
      ].sort(),
    );
    assert(files.every((f) => f.rowTime && Date.now() - f.rowTime.getTime() < 60_000));
    await Deno.stat(`${data}/sends/${sendRel("s2").split("/")[1]}`).then(
      () => assert(false, "the deleted send's folder is still there"),
      () => {},
    );

    // The abandoned upload is a row without a body: young, it warns; past the grace, it fails.
    const young = await runCliJson<{ checks: { id: string; status: string }[] }>([
      "verify",
      "--file",
      db,
      "--data-dir",
      data,
      "--app",
      "none",
      "--json",
    ]);
    assertEquals(young.code, 0, young.stdout);
    const status = (r: typeof young, id: string) => r.json.checks.find((c) => c.id === id)?.status;
    assertEquals(status(young, "files.attachments"), "warn");
    assertEquals(status(young, "files.sends"), "pass");
    assertEquals(status(young, "files.rsa-key"), "pass");
    assertEquals(status(young, "files.config"), "pass");
    await new Promise((r) => setTimeout(r, 1100));
    const late = await runCliJson<{ checks: { id: string; status: string }[] }>([
      "verify",
      "--file",
      db,
      "--data-dir",
      data,
      "--app",
      "none",
      "--files-grace",
      "1s",
      "--json",
    ]);
    assertEquals(late.code, 7, late.stdout);
    assertEquals(status(late, "files.attachments"), "fail");
  }

  // A restart keeps the key and finds what the first boot wrote.
  const keyHash = await sha256Hex(await Deno.readFile(`${data}/rsa_key.pem`));
  const second = start("two");
  try {
    const r2 = await reportOf("two");
    assertEquals(r2.key, { generated: false, sha256: keyHash });
    assertEquals(r2.boots, ["one", "two"]);
    assertEquals(r2.found?.[attachmentRel("a1")]?.size, 5000);
    assertEquals(r2.found?.[sendRel("s1")]?.sha256, await sha256Hex(fileBody("s1", 1234)));
    assert(r2.found?.["config.json"]);
  } finally {
    second.kill("SIGTERM");
    await second.output();
  }
});
