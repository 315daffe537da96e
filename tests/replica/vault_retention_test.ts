/**
 * The vault's files in the prune plan (retention.ts `vaultCandidates`): which bodies and which key
 * and settings versions go, for given kept points, stored objects and references.
 */
import { assertEquals } from "../support/assert.ts";
import { vaultCandidates } from "../../src/replica/retention.ts";
import type { RetentionPoint, VaultFiles } from "../../src/replica/retention.ts";
import { FILES_BASE, versionKey } from "../../src/replica/vault_files.ts";
import type { SecretName, VersionObject } from "../../src/replica/vault_files.ts";
import type { ObjectInfo } from "../../src/storage/storage.ts";

const DAY = 86_400_000;
const T0 = new Date("2026-11-01T00:00:00Z");
const day = (n: number) => new Date(T0.getTime() + n * DAY);

function point(n: number, kept: boolean): RetentionPoint {
  return {
    point: { format: "v0.3", generation: "1111111111111111", index: n, time: day(n) },
    key: `snap-${n}`,
    kept,
    reasons: kept ? ["last"] : [],
  };
}

function body(rel: string, time: Date): [string, ObjectInfo] {
  return [rel, { key: `${FILES_BASE}${rel}`, size: 100, modified: time }];
}

function version(name: SecretName, time: Date): VersionObject {
  return {
    name,
    time,
    digest: "0123456789abcdef",
    encrypted: false,
    key: `${FILES_BASE}${versionKey(name, time, "0123456789abcdef", false)}`,
    size: 10,
  };
}

const points = [point(3, true), point(2, true), point(1, false), point(0, false)];
const objects = new Map([
  body("attachments/c/old-unreferenced", day(0)),
  body("attachments/c/old-referenced", day(0)),
  body("attachments/c/after-oldest-kept", new Date(day(2).getTime() + 1000)),
]);
const versions = new Map<SecretName, VersionObject[]>([
  ["rsa_key.pem", [
    version("rsa_key.pem", day(0)),
    version("rsa_key.pem", day(1)),
    version("rsa_key.pem", day(2.5)),
  ]],
  ["config.json", [version("config.json", day(2.5))]],
]);

const planned = (vault: VaultFiles) =>
  vaultCandidates(points, vault).map((c) => [c.reason, c.objects.map((o) => o.key)]);

Deno.test("vault files in the plan: unreferenced bodies stored before the oldest kept point go", () => {
  assertEquals(
    planned({ objects, versions, referenced: new Set(["attachments/c/old-referenced"]) }),
    [
      [{ kind: "vault-files" }, [`${FILES_BASE}attachments/c/old-unreferenced`]],
      // The version in effect at the oldest kept point (day 1) stays, and every later one.
      [{ kind: "vault-versions", name: "rsa_key.pem" }, [versions.get("rsa_key.pem")![0].key]],
      // No config.json version at or before the oldest kept point: none goes.
    ],
  );
});

Deno.test("vault files in the plan: unknown references keep every body; versions still go", () => {
  assertEquals(planned({ objects, versions, referenced: undefined }), [
    [{ kind: "vault-versions", name: "rsa_key.pem" }, [versions.get("rsa_key.pem")![0].key]],
  ]);
});

Deno.test("vault files in the plan: without a kept point nothing goes", () => {
  assertEquals(
    vaultCandidates(points.map((p) => ({ ...p, kept: false })), {
      objects,
      versions,
      referenced: new Set(),
    }),
    [],
  );
});
