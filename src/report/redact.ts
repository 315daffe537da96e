/**
 * Last line of defence for "never print credentials": every secret the tool learns (config keys,
 * URL userinfo, environment) is registered here, and every message written by the CLI passes
 * through `redact`. Primary protection is not putting secrets into messages at all.
 */
const secrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  // Very short values would redact ordinary words; real keys are long.
  if (value && value.length >= 6) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("***");
  return out;
}
