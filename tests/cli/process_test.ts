/**
 * The CLI as a process: SIGINT/SIGTERM at any moment of a run (also before any temp file exists)
 * exit 130, and the directories restore creates for `-o` are private (0700) whatever the umask.
 * Runs main.ts as a subprocess, the way cron and the container run it.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { makeTempDir } from "../support/tmp.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a stalled S3. */
function silentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let accepted = 0;
  (async () => {
    try {
      for await (const c of listener) {
        conns.push(c);
        accepted++;
      }
    } catch {
      // closed
    }
  })();
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    accepted: () => accepted,
    stop() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  for (const command of ["list", "verify", "prune"]) {
    Deno.test(`${command}: ${signal} while waiting for the storage (no temp file yet) → exit 130`, async () => {
      const server = silentServer();
      try {
        const args = [command, `s3://bkt/db?endpoint=${encodeURIComponent(server.endpoint)}`];
        if (command === "prune") args.push("--keep-last", "1");
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", MAIN, ...args],
          env: { AWS_ACCESS_KEY_ID: "process-test", AWS_SECRET_ACCESS_KEY: "process-test-secret" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const output = child.output();
        const deadline = Date.now() + 60_000;
        while (server.accepted() === 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 5));
        }
        if (server.accepted() === 0) child.kill("SIGKILL");
        else child.kill(signal);
        const res = await output;
        assert(server.accepted() > 0, "the command never reached the storage");
        const stderr = new TextDecoder().decode(res.stderr);
        assertEquals(res.signal, null, `litewarden should handle ${signal} itself`);
        assertEquals(res.code, 130, stderr);
      } finally {
        server.stop();
      }
    });
  }
}

Deno.test("restore -o creates missing directories 0700, even under umask 000", async () => {
  await using dir = await makeTempDir();
  const out = dir.join("a/b/db.sqlite3");
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const cmd = [Deno.execPath(), "run", "-A", MAIN, "restore", `file://${SAMPLE}`, "-o", out]
    .map(quote).join(" ");
  const res = await new Deno.Command("sh", {
    args: ["-c", `umask 000 && exec ${cmd}`],
    env: { NO_PROGRESS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(res.code, 0, new TextDecoder().decode(res.stderr));
  for (const d of ["a", "a/b"]) {
    assertEquals((await Deno.stat(dir.join(d))).mode! & 0o777, 0o700, d);
  }
  assert((await Deno.stat(out)).isFile);
});
