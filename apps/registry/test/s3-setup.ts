// vitest globalSetup: with MINATO_TEST_STORAGE=s3, one S3-compatible server (s3rver, its own process
// on 127.0.0.1) for the whole run; the harness gives every test registry a fresh bucket on it.
import type { TestProject } from "vitest/node";
import { S3TestServer } from "../../../libs/storage/test/s3-server.js";

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (process.env.MINATO_TEST_STORAGE !== "s3") return undefined;
  const server = await S3TestServer.start([]);
  project.provide("minatoS3Endpoint", server.endpoint);
  return () => server.dispose();
}
