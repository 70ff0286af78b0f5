// The `minato` process: the entry point that bin/minato.js runs, bundled as dist/minato.mjs.
import { main } from "./cli.js";

process.exitCode = await main(process.argv.slice(2));
