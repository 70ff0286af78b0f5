// The `minato` process: the entry point that bin/minato.js runs, bundled as dist/minato.cjs.
import { main } from "./cli.js";

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
