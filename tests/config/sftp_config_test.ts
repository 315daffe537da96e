/**
 * SFTP replicas in both forms, as Litestream v0.3.13 reads them (`type: sftp` with host, user,
 * password, key-path, path; `sftp://USER[:PASSWORD]@HOST[:PORT]/PATH`), plus litewarden's host key
 * settings. Passwords never appear in messages or in the target's location.
 */
import { parseLitestreamConfig } from "../../src/config/litestream_yml.ts";
import { describeTarget, type SftpReplicaTarget } from "../../src/config/target.ts";
import { parseHostKey, parseReplicaUrl } from "../../src/config/url.ts";
import { LitewardenError } from "../../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

const CWD = "/srv/app";
const ENV = { HOME: "/home/u" };
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAVXcjB6FCHBbBcQ2DwVQPUjBoruLiabGEwbYgc2NnOw";
const DEFAULT_KNOWN = ["/home/u/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"];

function url(u: string, env: Record<string, string> = {}): SftpReplicaTarget {
  const t = parseReplicaUrl(u, { ...ENV, ...env }, { cwd: CWD });
  assert(t.type === "sftp");
  return t;
}

function config(replica: string, env: Record<string, string> = {}) {
  const text = `dbs:\n  - path: /data/db.sqlite3\n    replicas:\n      - ${replica}\n`;
  return parseLitestreamConfig(text, "/etc/litestream.yml", { ...ENV, ...env }, { cwd: CWD })
    .dbs[0];
}

function configTarget(replica: string, env: Record<string, string> = {}): SftpReplicaTarget {
  const db = config(replica, env);
  assertEquals(db.unusable, []);
  const t = db.replicas[0];
  assert(t.type === "sftp");
  return t;
}

Deno.test("sftp URLs: user, password, port (default 22), absolute path; location without password", () => {
  const t = url("sftp://vw:s3cr%40t-pass@backup.example.com:2222/backups/vw/");
  assertEquals(t, {
    type: "sftp",
    name: "sftp",
    host: "backup.example.com",
    port: 2222,
    user: "vw",
    password: "s3cr@t-pass",
    path: "/backups/vw",
    knownHosts: DEFAULT_KNOWN,
    insecureHostKey: false,
  });
  assertEquals(describeTarget(t), "sftp://backup.example.com:2222/backups/vw");
  const plain = url("sftp://u123@u123.your-storagebox.de");
  assertEquals([plain.port, plain.path, plain.password], [22, "", undefined]);
  assertEquals(describeTarget(plain), "sftp://u123.your-storagebox.de:22/~");
  assertEquals(url("sftp://u@[::1]:23/x").host, "::1");
  assertEquals(describeTarget(url("sftp://u@[::1]:23/x")), "sftp://[::1]:23/x");
});

Deno.test("sftp URL errors: no user, no host, bad port — exit 2, password never echoed", () => {
  for (
    const [bad, why] of [
      ["sftp://host.example/p", "user required for an sftp replica"],
      ["sftp:///p", "host required for an sftp replica"],
      ["sftp://u:TopSecret99@h:99999/p", "invalid sftp host"],
      ["sftp://u:TopSecret99@h:x/p", "invalid sftp host"],
    ]
  ) {
    const err = assertThrows(() => url(bad), LitewardenError);
    assertEquals(err.exitCode, 2, bad);
    assert(err.message.includes(why), err.message);
    assert(!err.message.includes("TopSecret99"), err.message);
  }
});

Deno.test("sftp environment: key path, pinned host key, known_hosts files, insecure switch", () => {
  const t = url("sftp://u@h/p", {
    LITEWARDEN_SFTP_KEY_PATH: "~/.ssh/id_backup",
    LITEWARDEN_SFTP_HOST_KEY: `${KEY} root@h`,
    LITEWARDEN_SFTP_KNOWN_HOSTS: "/a/known:rel/known",
    LITEWARDEN_SFTP_INSECURE_HOST_KEY: "yes",
  });
  assertEquals(t.keyPath, "/home/u/.ssh/id_backup");
  assertEquals(t.hostKey, KEY);
  assertEquals(t.knownHosts, ["/a/known", "/srv/app/rel/known"]);
  assertEquals(t.insecureHostKey, true);
  assertEquals(
    url("sftp://u@h/p", { LITEWARDEN_SFTP_INSECURE_HOST_KEY: "0" }).insecureHostKey,
    false,
  );
});

Deno.test("parseHostKey: key lines (as ssh-keyscan or known_hosts print them) and fingerprints", () => {
  assertEquals(parseHostKey(KEY, ""), KEY);
  assertEquals(parseHostKey(`[h]:2222 ${KEY}`, ""), KEY);
  assertEquals(parseHostKey(`  ${KEY} comment here `, ""), KEY);
  const fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
  assertEquals(parseHostKey(fp, ""), fp);
  assertEquals(parseHostKey(`${fp}=`, ""), fp);
  for (const bad of ["AAAAC3Nza", "ssh-ed25519", "MD5:aa:bb", "SHA256:short"]) {
    const err = assertThrows(() => parseHostKey(bad, "for replica r"), LitewardenError);
    assertEquals(err.exitCode, 2);
    assert(err.message.includes("host-key for replica r is not a public key"), err.message);
  }
});

Deno.test("type: sftp in litestream.yml: host with port, user, password, key-path, path, host-key", () => {
  const t = configTarget(
    `{type: sftp, name: box, host: "box.example:23", user: vw, password: pw-123456, key-path: keys/id, path: backups/vw, host-key: "${KEY}"}`,
  );
  assertEquals(t, {
    type: "sftp",
    name: "box",
    host: "box.example",
    port: 23,
    user: "vw",
    password: "pw-123456",
    keyPath: "/srv/app/keys/id",
    hostKey: KEY,
    path: "backups/vw",
    knownHosts: DEFAULT_KNOWN,
    insecureHostKey: false,
    dbPath: "/data/db.sqlite3",
  });
  // A relative path is relative to the login directory, as the SFTP server resolves it.
  assertEquals(describeTarget(t), "sftp://box.example:23/~/backups/vw");
  // url: fills what the config leaves empty (host, user, password, path), as Litestream does.
  const u = configTarget(
    `{url: "sftp://urluser:urlpw@h:2200/from/url", user: cfguser, key-path: /k}`,
  );
  assertEquals([u.host, u.port, u.user, u.password, u.path, u.name], [
    "h",
    2200,
    "cfguser",
    "urlpw",
    "/from/url",
    "sftp",
  ]);
  // The config's ${VAR} expansion reaches the password.
  const e = configTarget(`{type: sftp, host: h, user: u, password: "\${SFTP_PW}"}`, {
    SFTP_PW: "from-env-77",
  });
  assertEquals(e.password, "from-env-77");
});

Deno.test("invalid sftp replicas are unusable with Litestream's reasons; the password is never shown", () => {
  const cases: [string, string][] = [
    [`{url: "sftp://u@h/p", path: /other}`, "cannot specify url and path for an sftp replica"],
    [`{url: "sftp://u@h/p", host: other}`, "cannot specify url and host for an sftp replica"],
    [`{type: sftp, user: u, password: Hunter2Secret}`, "host required for an sftp replica"],
    [`{type: sftp, host: h, password: Hunter2Secret}`, "user required for an sftp replica"],
    [`{type: sftp, host: h, user: u, host-key: "nonsense"}`, "is not a public key"],
  ];
  for (const [replica, why] of cases) {
    const db = config(replica);
    assertEquals(db.replicas, [], replica);
    assertEquals(db.unusable.length, 1, replica);
    assertEquals(db.unusable[0].kind, "invalid");
    assert(db.unusable[0].message.includes(why), db.unusable[0].message);
    assert(db.unusable[0].message.includes("/etc/litestream.yml"), db.unusable[0].message);
    assert(!db.unusable[0].message.includes("Hunter2Secret"));
  }
});
