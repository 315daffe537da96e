/**
 * A real Azure Blob Storage emulator for tests: azurite (npm, pinned in deno.json as `azurite`),
 * its blob service run as a child process of the same Deno binary, on 127.0.0.1 with an ephemeral
 * port, keeping blobs in memory.
 *
 * Each server gets its own storage account with a random key (azurite's `AZURITE_ACCOUNTS`), so
 * signatures are really checked and tests can look for the key in output. azurite serves accounts
 * path-style: the service URL (Litestream's and litewarden's `endpoint`) is
 * `http://127.0.0.1:PORT/ACCOUNT`.
 *
 * Two azurite traps are handled here: under Deno its graceful shutdown (SIGTERM) takes minutes,
 * so `stop()` kills it (nothing is persisted anyway); and it listens only once its start-up log
 * says so, which `startAzurite()` waits for.
 */
import { join } from "node:path";
import type { AbsReplicaTarget } from "../../src/config/target.ts";
import { sharedKeySignature } from "../../src/storage/abs.ts";

export interface TestAzurite {
  /** Service URL with the account: `http://127.0.0.1:PORT/ACCOUNT`. */
  endpoint: string;
  accountName: string;
  /** Base64 account key (random per server). */
  accountKey: string;
  /** Creates a container; one that exists is not an error. */
  createContainer(name: string): Promise<void>;
  /** Kills the server. */
  stop(): Promise<void>;
}

const running = new Set<Deno.ChildProcess>();
let unloadHookInstalled = false;

/** The blob service entry point inside the installed azurite package. */
function azuriteBlobMain(): string {
  const candidates: string[] = [];
  // The test config (test_deps/deno.jsonc) installs into test_deps/node_modules.
  for (const rel of ["../../test_deps/node_modules/", "../../node_modules/"]) {
    const root = new URL(rel, import.meta.url).pathname;
    candidates.push(join(root, "azurite/dist/src/blob/main.js"));
    try {
      for (const e of Deno.readDirSync(join(root, ".deno"))) {
        if (e.name.startsWith("azurite@")) {
          candidates.push(
            join(root, ".deno", e.name, "node_modules/azurite/dist/src/blob/main.js"),
          );
        }
      }
    } catch {
      // No node_modules/.deno here.
    }
  }
  for (const c of candidates) {
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch {
      // Try the next one.
    }
  }
  throw new Error("azurite not found: run `deno install --config test_deps/deno.jsonc` first");
}

/** Starts azurite's blob service; resolves once it listens. */
export async function startAzurite(): Promise<TestAzurite> {
  const accountName = `lw${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const accountKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(64))));
  const projectRoot = new URL("../../", import.meta.url).pathname;
  if (!unloadHookInstalled) {
    unloadHookInstalled = true;
    globalThis.addEventListener("unload", () => {
      for (const c of running) {
        try {
          c.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }
    });
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      azuriteBlobMain(),
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      "0",
      "--inMemoryPersistence", // writes nothing to disk (and rules out --location)
      "--extentMemoryLimit",
      "512",
      "--skipApiVersionCheck",
      "--disableTelemetry",
    ],
    cwd: projectRoot,
    env: { AZURITE_ACCOUNTS: `${accountName}:${accountKey}`, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.add(child);
  let log = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) log += dec.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    running.delete(child);
    return s;
  });

  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await status;
    await pumps;
  };

  const deadline = Date.now() + 30_000;
  let port: string | undefined;
  while (!port) {
    port = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1];
    if (port) break;
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`azurite did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const endpoint = `http://127.0.0.1:${port}/${accountName}`;
  const key = Uint8Array.from(atob(accountKey), (c) => c.charCodeAt(0));

  return {
    endpoint,
    accountName,
    accountKey,
    async createContainer(name: string) {
      const url = new URL(`${endpoint}/${name}?restype=container`);
      const headers: Record<string, string> = {
        "x-ms-date": new Date().toUTCString(),
        "x-ms-version": "2021-12-02",
      };
      headers.authorization = `SharedKey ${accountName}:${
        sharedKeySignature(key, accountName, "PUT", url, headers, "")
      }`;
      const res = await fetch(url, { method: "PUT", headers });
      const text = await res.text();
      if (!res.ok && res.status !== 409) {
        throw new Error(`creating container ${name} failed: HTTP ${res.status} ${text}`);
      }
    },
    stop,
  };
}

/** An abs replica target pointing at the test server. */
export function absTargetFor(
  server: TestAzurite,
  container: string,
  path: string,
): AbsReplicaTarget {
  return {
    type: "abs",
    name: "abs",
    accountName: server.accountName,
    accountKey: server.accountKey,
    container,
    path,
    endpoint: server.endpoint,
  };
}
