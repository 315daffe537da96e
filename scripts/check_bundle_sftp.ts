/**
 * Runs the bundled CLI against a test sshd on 127.0.0.1: the SFTP backend and ssh2 are imported
 * lazily, so this proves `deno bundle` inlined them and that ssh2 runs from the bundle.
 * Usage: deno run -A scripts/check_bundle_sftp.ts BUNDLE (skips, exit 0, when sshd is missing).
 */
import { haveSshd, startSftpServer } from "../tests/support/sshd_server.ts";
import { bundleNewestTxid } from "./bundle_list.ts";

const bundle = Deno.args[0];
if (!haveSshd()) {
  console.error("bundle check: sshd not installed, SFTP check skipped");
  Deno.exit(0);
}
const fixture = new URL("../tests/fixtures/ltx/ltx-v0.5.2-block/nochecksum", import.meta.url)
  .pathname;
const server = await startSftpServer();
let code = 1;
try {
  const dir = `${server.dataDir}/db`;
  const cp = await new Deno.Command("cp", { args: ["-a", fixture, dir] }).output();
  if (!cp.success) throw new Error("cannot copy the LTX fixture");
  const { txid, report } = await bundleNewestTxid(
    bundle,
    `sftp://${server.user}@${server.hostPort}${dir}`,
    {
      LITEWARDEN_SFTP_KEY_PATH: server.keyPath,
      LITEWARDEN_SFTP_KNOWN_HOSTS: server.knownHostsPath,
    },
  );
  if (txid === "0000000000000004") {
    code = 0;
  } else {
    console.error(`bundle check failed: list on SFTP gave ${report}`);
  }
} finally {
  await server.stop();
}
Deno.exit(code);
