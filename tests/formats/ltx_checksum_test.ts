import { assertEquals } from "../support/assert.ts";
import { crc64 } from "../../src/formats/crc64.ts";
import {
  DatabaseChecksum,
  databaseChecksum,
  pageChecksum,
} from "../../src/formats/ltx_checksum.ts";
import { LTX_FIXTURES, readFixture } from "./helpers.ts";

/** README point 4: the rolling checksum of each state. */
const STATES: [string, number, bigint][] = [
  ["S1", 4096, 0x8e2e53a80d2fe384n],
  ["S2", 4096, 0x99951877ce1a0148n],
  ["S3", 4096, 0xc92f9892078403e5n],
  ["S4", 4096, 0xc738a9aeecb4d8e1n],
  ["small", 1024, 0xb4dc77bc4960b76bn],
];

const state = (name: string) => readFixture(LTX_FIXTURES, `states/${name}.db`);

Deno.test("databaseChecksum: the README values of every state", () => {
  for (const [name, pageSize, want] of STATES) {
    assertEquals(databaseChecksum(state(name), pageSize), want, name);
  }
});

Deno.test("pageChecksum: bit 63 | CRC-64/ISO(u32be(pgno) ‖ data)", () => {
  const page = state("S1").subarray(4096, 8192);
  const input = new Uint8Array(4 + page.length);
  input.set([0, 0, 0, 2]);
  input.set(page, 4);
  assertEquals(pageChecksum(2, page), crc64(input) | 0x8000000000000000n);
  // The page number is part of the hash.
  assertEquals(pageChecksum(2, page) === pageChecksum(3, page), false);
});

Deno.test("DatabaseChecksum: incremental updates reproduce every next state", () => {
  const pageSize = 4096;
  for (let i = 0; i < 3; i++) {
    const [fromName, , fromSum] = STATES[i];
    const [toName, , toSum] = STATES[i + 1];
    const from = state(fromName), to = state(toName);
    const sum = new DatabaseChecksum(fromSum);
    const pages = Math.max(from.length, to.length) / pageSize;
    for (let p = 1; p <= pages; p++) {
      const a = from.subarray((p - 1) * pageSize, p * pageSize);
      const b = to.subarray((p - 1) * pageSize, p * pageSize);
      if (a.length && b.length && a.every((x, k) => x === b[k])) continue;
      if (a.length) sum.remove(p, a); // Changed or dropped (S3→S4 shrinks 12 → 4 pages).
      if (b.length) sum.add(p, b);
    }
    assertEquals(sum.value(), toSum, `${fromName} → ${toName}`);
  }
});

Deno.test("DatabaseChecksum: empty is 0, everything removed again is bit 63", () => {
  const sum = new DatabaseChecksum();
  assertEquals(sum.value(), 0n);
  assertEquals(databaseChecksum(new Uint8Array(0), 4096), 0n);
  const page = state("S1").subarray(0, 4096);
  sum.add(1, page);
  assertEquals(sum.value(), pageChecksum(1, page));
  sum.remove(1, page);
  assertEquals(sum.value(), 0x8000000000000000n);
});
