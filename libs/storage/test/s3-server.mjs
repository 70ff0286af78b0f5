#!/usr/bin/env node
// Test launcher: serves @20minutes/s3rver (an S3-compatible server storing objects as plain files)
// on a loopback port in its own process. Prints one JSON line {"port":N} once it accepts requests.
//   node s3-server.mjs --directory DIR [--port N] [--bucket NAME]...
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import S3rver from "@20minutes/s3rver";

const { values } = parseArgs({
  options: {
    directory: { type: "string" },
    port: { type: "string", default: "0" },
    bucket: { type: "string", multiple: true, default: [] },
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
