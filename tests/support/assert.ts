/**
 * The few assertions the tests need. `@std/assert` is on JSR, which this network cannot reach,
 * so these wrap `node:assert` (built into Deno) behind Deno-style names.
 */
import assert from "node:assert/strict";
import { LitewardenError } from "../../src/errors.ts";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}
export { assert_ as assert };

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}

export function assertStringIncludes(actual: string, part: string, msg?: string): void {
  if (!actual.includes(part)) {
    throw new assert.AssertionError({
      message: msg ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(part)}`,
    });
  }
}

// deno-lint-ignore no-explicit-any -- constructor of any Error subclass
type ErrorClass<E extends Error> = new (...args: any[]) => E;

export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: ErrorClass<E>,
  includes?: string,
): E {
  try {
    fn();
  } catch (err) {
    check(err, cls, includes);
    return err as E;
  }
  throw new assert.AssertionError({ message: "expected function to throw" });
}

export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: ErrorClass<E>,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    check(err, cls, includes);
    return err as E;
  }
  throw new assert.AssertionError({ message: "expected promise to reject" });
}

function check(err: unknown, cls?: ErrorClass<Error>, includes?: string): void {
  if (cls && !(err instanceof cls)) {
    throw new assert.AssertionError({
      message: `expected ${cls.name}, got ${err instanceof Error ? err.name : typeof err}: ${err}`,
    });
  }
  if (includes && !(err instanceof Error && err.message.includes(includes))) {
    throw new assert.AssertionError({
      message: `expected error message to include ${JSON.stringify(includes)}, got ${
        err instanceof Error ? JSON.stringify(err.message) : String(err)
      }`,
    });
  }
}

/**
 * Awaits `p`, which must reject with a `LitewardenError` of `exitCode` whose one-line message
 * contains every fragment; returns the error.
 */
export async function expectLitewardenError(
  p: Promise<unknown>,
  exitCode: number,
  ...fragments: string[]
): Promise<LitewardenError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof LitewardenError)) throw err;
    assert.equal(err.exitCode, exitCode, `exit code of: ${err.message}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" lacks "${f}"`);
    assert.ok(!err.message.includes("\n"), "error messages are one line");
    return err;
  }
  throw new Error("expected an error");
}
