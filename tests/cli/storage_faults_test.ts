/**
 * restore, verify, list and prune end to end against the test S3 server behind the fault proxy:
 * transient faults (resets, 5xx bursts, cut bodies, latency) cost retries, never bytes; an object
 * that vanishes between LIST and GET, or arrives with a flipped bit, is exit 5 naming it (never
 * exit 0 with other bytes); a listing that pages in circles is exit 4.
 */
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { startFaultProxy } from "../support/fault_proxy.ts";
import type { FaultProxy, ProxyRequest } from "../support/fault_proxy.ts";
import { s3TargetFor, startS3Server, uploadTree } from "../support/s3_server.ts";
import { withEnv } from "../support/env.ts";
import { makeTempDir } from "../support/tmp.ts";
import type { TempDir } from "../support/tmp.ts";
import { S3Storage } from "../../src/storage/s3.ts";

const SAMPLE = new URL("../../samples/vaultwarden-replica", import.meta.url).pathname;

const isGet = (r: ProxyRequest) => r.method === "GET" && !r.isList;

Deno.test("CLI through the fault proxy: retries cost time, never bytes; damage is exit 5", async (t) => {
  await using dir: TempDir = await makeTempDir();
  const server = await startS3Server();
  const proxy: FaultProxy = startFaultProxy(server.endpoint);
  const creds = { AWS_ACCESS_KEY_ID: "faults-test", AWS_SECRET_ACCESS_KEY: "faults-test-secret" };
  await withEnv(creds, async () => {
    try {
      await server.createBucket("faults");
      const direct = new S3Storage(s3TargetFor(server, "faults", "vw"));
      const keys = await uploadTree(direct, SAMPLE);
      direct.close();
      const walKeys = keys.filter((k) => k.includes("/wal/"));
      const url = `s3://faults/vw?endpoint=${encodeURIComponent(proxy.endpoint)}`;
      const clean = await runCli(["restore", url, "-o", dir.join("clean.db")]);
      assertEquals(clean.code, 0, clean.stderr);
      const want = await Deno.readFile(dir.join("clean.db"));
      let n = 0;
      const restore = async () => {
        const out = dir.join(`r${++n}.db`);
        const r = await runCli(["restore", url, "-o", out]);
        const bytes = r.code === 0 ? await Deno.readFile(out) : undefined;
        return { ...r, bytes };
      };

      await t.step(
        "resets, 503 bursts, cut bodies and latency: restore and verify pass",
        async () => {
          proxy.reset();
          proxy.add({ when: isGet, fault: { type: "reset" }, times: 2 });
          proxy.add({ when: isGet, fault: { type: "status", status: 503 }, times: 3 });
          proxy.add({ when: isGet, fault: { type: "cut", after: 100 }, times: 3 });
          proxy.add({ when: (r) => r.isList, fault: { type: "status", status: 500 }, times: 2 });
          proxy.add({ fault: { type: "latency", ms: 20 }, times: 10 });
          const r = await restore();
          assertEquals(r.code, 0, r.stderr);
          assertEquals(r.bytes, want);
          assert(proxy.requests.filter((x) => x.fault).length >= 10, "the faults were applied");
          proxy.reset();
          proxy.add({ when: isGet, fault: { type: "status", status: 503 }, times: 4 });
          proxy.add({ when: isGet, fault: { type: "cut", after: 500 }, times: 2 });
          const v = await runCli(["verify", url]);
          assertEquals(v.code, 0, v.stdout + v.stderr);
        },
      );

      await t.step("an object vanishes between LIST and GET: exit 5 naming it", async () => {
        const gone = walKeys[2];
        proxy.reset();
        proxy.add({ when: (r) => isGet(r) && r.key.endsWith(gone), fault: { type: "vanish" } });
        const r = await restore();
        assertEquals(r.code, 5, r.stderr);
        assertStringIncludes(r.stderr, gone.slice(gone.lastIndexOf("/") + 1));
        const v = await runCli(["verify", url]);
        assertEquals(v.code, 5, v.stdout);
      });

      await t.step("a flipped bit in a body: exit 5, never a different database", async () => {
        for (
          const [i, key] of [keys.find((k) => k.includes("/snapshots/"))!, ...walKeys].entries()
        ) {
          proxy.reset();
          proxy.add({
            when: (r) => isGet(r) && r.key.endsWith(key),
            fault: { type: "flip", offset: 40 + i * 97, mask: 1 << (i % 8) },
          });
          const r = await restore();
          assertEquals(r.code, 5, `${key}: ${r.stderr}`);
        }
      });

      await t.step(
        "a listing that repeats its token: list, verify, restore, prune exit 4",
        async () => {
          proxy.reset();
          proxy.add({ when: (r) => r.isList, fault: { type: "repeatToken" } });
          for (
            const args of [
              ["list", url],
              ["verify", url],
              ["restore", url, "-o", dir.join("loop.db")],
              ["prune", url, "--keep-last", "1"],
            ]
          ) {
            proxy.requests.length = 0;
            const r = await runCli(args);
            assertEquals(r.code, 4, `${args[0]}: ${r.stdout}${r.stderr}`);
            assertStringIncludes(r.stdout + r.stderr, "is looping");
            assert(proxy.requests.length < 20, `${args[0]}: ${proxy.requests.length} requests`);
          }
        },
      );

      await t.step(
        "prune's dry run through 5xx bursts: the same plan as without faults",
        async () => {
          proxy.reset();
          const plain = await runCli(["prune", url, "--keep-last", "1", "--json"]);
          assertEquals(plain.code, 0, plain.stderr);
          proxy.add({ when: (r) => r.isList, fault: { type: "status", status: 503 }, times: 3 });
          proxy.add({ when: isGet, fault: { type: "reset" }, times: 2 });
          const faulty = await runCli(["prune", url, "--keep-last", "1", "--json"]);
          assertEquals(faulty.code, 0, faulty.stderr);
          // Timings and ages differ between two runs; the plan must not.
          const strip = (s: string) =>
            JSON.stringify(
              JSON.parse(s),
              (k, v) => (k === "seconds" || k === "ageSeconds" ? 0 : v),
            );
          assertEquals(strip(faulty.stdout), strip(plain.stdout));
        },
      );
    } finally {
      await proxy.stop();
      await server.stop();
    }
  });
});
