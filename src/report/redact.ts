/**
 * The one choke point for "never print credentials": everything the CLI writes (stdout, stderr,
 * the ping body, the metrics file) passes through `redact`. It removes two things:
 *
 * - every secret the tool learned (config keys, URL userinfo, the environment, the ping URL),
 *   registered here when the target and flags are parsed;
 * - the userinfo of anything URL-shaped (`scheme://USER:PASS@host`), whether or not it was
 *   registered, so a URL that was never parsed (a typo, a config value echoed in an error) cannot
 *   leak either. The userinfo runs to the last `@` before the host part ends, so a secret with an
 *   unencoded `/` (common in AWS secret keys) is hidden whole.
 *
 * Primary protection is still not putting secrets into messages at all.
 */
const secrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  // Very short values would redact ordinary words; real keys are long.
  if (!value || value.length < 6) return;
  secrets.add(value);
  // The same secret as it appears inside a URL (percent-encoded), e.g. `abc%2Fdef`.
  const encoded = encodeURIComponent(value);
  if (encoded !== value) secrets.add(encoded);
}

/**
 * `scheme://` then the longest run without whitespace, quotes, `?` or `#` that ends in `@`: the
 * userinfo, however many `/` or `@` it holds. Over-redacting an odd key name that contains `@` is
 * the safe failure.
 */
const URL_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s"'<>`?#]*@/g;

export function redactUrlUserinfo(text: string): string {
  return text.replace(URL_USERINFO, "$1***@");
}

export function redact(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another one is removed whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join("***");
  return redactUrlUserinfo(out);
}
