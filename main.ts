import { installInterruptHandlers } from "./src/cli/safe_output.ts";

// Signals first, then load the commands (the SDKs take a while): an interrupt at any moment exits 130.
installInterruptHandlers();
const { run } = await import("./src/cli/program.ts");
Deno.exit(await run(Deno.args));
