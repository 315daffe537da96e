import { run } from "./src/cli/program.ts";

Deno.exit(await run(Deno.args));
