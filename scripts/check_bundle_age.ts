/**
 * Runs the bundled CLI on an age-encrypted copy of the sample replica: the age package is loaded
 * lazily and the payload cipher is Deno's node:crypto, so this proves both reach the bundle. The
 * encrypted restore must equal the plain one. Usage: deno run -A scripts/check_bundle_age.ts BUNDLE
 */
import { ageEncrypt, generateAgeIdentity, recipientOf } from "../src/formats/age.ts";
import { parseV03Key } from "../src/formats/v03_layout.ts";
import { listFiles } from "../tests/support/litestream.ts";

const bundle = Deno.args[0];
const sample = new URL("../samples/vaultwarden-replica", import.meta.url).pathname;
const work = await Deno.makeTempDir({ prefix: "litewarden-bundle-age-" });
let code = 1;
try {
  const identity = await generateAgeIdentity();
  const recipient = await recipientOf(identity, "bundle check");
  await Deno.writeTextFile(`${work}/key.txt`, `${identity}\n`);
  for (const key of await listFiles(sample)) {
    const data = await Deno.readFile(`${sample}/${key}`);
    const path = `${work}/replica/${key}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, parseV03Key(key) ? await ageEncrypt(data, [recipient]) : data);
  }
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-remote", "--no-npm", "--no-config", "-A", bundle, ...args],
      env: { NO_PROGRESS: "1", NO_COLOR: "1" },
      cwd: work,
    }).output();
  const plain = await run(["restore", `file://${sample}`, "-o", `${work}/plain.db`]);
  const enc = await run([
    "restore",
    "--age-identity",
    `${work}/key.txt`,
    `file://${work}/replica`,
    "-o",
    `${work}/enc.db`,
  ]);
  const same = plain.success && enc.success &&
    (await Deno.readFile(`${work}/plain.db`)).join() ===
      (await Deno.readFile(`${work}/enc.db`)).join();
  if (same) {
    code = 0;
  } else {
    console.error(`bundle check failed: age restore exited ${enc.code}, plain ${plain.code}`);
    console.error(new TextDecoder().decode(enc.stderr), new TextDecoder().decode(plain.stderr));
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
Deno.exit(code);
