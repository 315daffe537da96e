/**
 * Sets environment variables (removes those given as undefined) for the duration of `fn`
 * (in-process CLI runs read credentials from the environment), then restores what was there.
 */
export async function withEnv<T>(
  vars: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (k: string, v: string | undefined) =>
    v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  for (const [k, v] of Object.entries(vars)) apply(k, v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) apply(k, v);
  }
}
