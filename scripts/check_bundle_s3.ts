/**
 * Runs the bundled CLI against the in-process S3 test server: the S3 backend is imported lazily,
 * so this proves `deno bundle` inlined it. Usage: deno run -A scripts/check_bundle_s3.ts BUNDLE
 */
import { s3TargetFor, startS3Server } from "../tests/support/s3_server.ts";
import { S3Storage } from "../src/storage/s3.ts";
import { bundleNewestTxid } from "./bundle_list.ts";

const bundle = Deno.args[0];
const root = new URL("../tests/fixtures/ltx/ltx-v0.5.2-block/nochecksum/ltx", import.meta.url)
  .pathname;
const server = await startS3Server();
let code = 1;
try {
  await server.createBucket("bundle-check");
  const storage = new S3Storage(s3TargetFor(server, "bundle-check", "db"));
  for (const level of Deno.readDirSync(root)) {
    for (const f of Deno.readDirSync(`${root}/${level.name}`)) {
      const key = `${Number(level.name).toString(16).padStart(4, "0")}/${f.name}`;
      await storage.put(key, await Deno.readFile(`${root}/${level.name}/${f.name}`));
    }
  }
  storage.close?.();
  const { txid, report } = await bundleNewestTxid(
    bundle,
    `s3://bundle-check/db?endpoint=${server.endpoint}&force-path-style=true`,
    { AWS_ACCESS_KEY_ID: "bundle", AWS_SECRET_ACCESS_KEY: "check-secret" },
  );
  if (txid === "0000000000000004") {
    code = 0;
  } else {
    console.error(`bundle check failed: list on S3 gave ${report}`);
  }
} finally {
  await server.stop();
}
Deno.exit(code);
