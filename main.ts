import { installInterruptHandlers } from "./src/cli/safe_output.ts";

// Past the file size limit (ulimit -f) the kernel kills a writer with SIGXFSZ, leaving a partial
// temp file; listening to it makes the write fail with EFBIG instead, reported like a full disk.
Deno.addSignalListener("SIGXFSZ", () => {});
// Signals first, then load the commands (the SDKs take a while): an interrupt at any moment exits 130.
installInterruptHandlers();
const { run } = await import("./src/cli/program.ts");
Deno.exit(await run(Deno.args));
