import { installInterruptHandlers } from "./src/cli/safe_output.ts";

// Past the file size limit (ulimit -f) the kernel kills a writer with SIGXFSZ, leaving a partial
// temp file; listening to it makes the write fail with EFBIG instead, reported like a full disk.
Deno.addSignalListener("SIGXFSZ", () => {});
// Signals first, then load the commands (the SDKs take a while): an interrupt at any moment exits 130.
installInterruptHandlers();
// `litewarden --version` is what a start-up probe runs: answer it without loading the commands.
if (Deno.args.length === 1 && (Deno.args[0] === "--version" || Deno.args[0] === "version")) {
  const { VERSION } = await import("./src/cli/version_string.ts");
  console.log(VERSION);
  Deno.exit(0);
}
const { run } = await import("./src/cli/program.ts");
Deno.exit(await run(Deno.args));
