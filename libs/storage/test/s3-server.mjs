#!/usr/bin/env node
// Test launcher: serves @20minutes/s3rver (an S3-compatible server storing objects as plain files)
// on a loopback port in its own process. Prints one JSON line {"port":N} once it accepts requests.
// Exits on SIGTERM or SIGINT; with --exit-with-stdin also when its stdin ends, so that, started with
// a pipe as stdin, it goes away with the process that started it however that one ends.
//   node s3-server.mjs --directory DIR [--port N] [--bucket NAME]... [--exit-with-stdin]
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import S3rver from "@20minutes/s3rver";

const { values } = parseArgs({
  options: {
    directory: { type: "string" },
    port: { type: "string", default: "0" },
    bucket: { type: "string", multiple: true, default: [] },
    "exit-with-stdin": { type: "boolean", default: false },
  },
});
if (!values.directory) {
  process.stderr.write("s3-server: --directory is required\n");
  process.exit(2);
}
mkdirSync(values.directory, { recursive: true });

const server = new S3rver({
  address: "127.0.0.1",
  port: Number(values.port),
  directory: values.directory,
  silent: true,
  vhostBuckets: false,
  configureBuckets: values.bucket.map((name) => ({ name })),
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

const stop = () => server.close().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (values["exit-with-stdin"]) {
  process.stdin.on("end", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
}
