import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FilesystemBlobStore } from "@minato/storage";
import { blobStoreContract } from "./contract.js";

blobStoreContract("filesystem", async () => {
  const root = await mkdtemp(join(tmpdir(), "minato-contract-fs-"));
  return {
    store: await FilesystemBlobStore.open(root),
    reopen: () => FilesystemBlobStore.open(root),
    uploadLeftovers: async () => (await readdir(join(root, "uploads"))).map((name) => `uploads/${name}`),
    dispose: () => rm(root, { recursive: true, force: true }),
  };
});
