/**
 * Shared by the bundle checks: runs `litewarden list --json TARGET` from the bundle with a bare
 * `deno run` (no npm, no config, no network) and returns the newest TXID it reports.
 */
export async function bundleNewestTxid(
  bundle: string,
  target: string,
  env: Record<string, string>,
): Promise<{ txid?: string; report: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-remote", "--no-npm", "--no-config", "-A", bundle, "list", "--json", target],
    env: { ...env, NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const txid = out.code === 0
    ? (JSON.parse(text) as { newest?: { txid?: string } }).newest?.txid
    : undefined;
  return { txid, report: `exit ${out.code}\n${text}${new TextDecoder().decode(out.stderr)}` };
}
