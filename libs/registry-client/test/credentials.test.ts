import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CredentialStore, dockerConfigPath } from "../src/credentials.js";

describe("CredentialStore", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "minato-creds-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("honours $DOCKER_CONFIG", () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: "/x/y" })).toBe("/x/y/config.json");
  });

  it("stores, reads and erases base64 auth entries the docker CLI can read, with mode 0600", async () => {
    const store = new CredentialStore(join(dir, "config.json"));
    expect(await store.get("127.0.0.1:5000")).toBeUndefined();
    await store.store("127.0.0.1:5000", { username: "alice", password: "s3cr:et" });
    const config = JSON.parse(await readFile(store.path, "utf8"));
    expect(config.auths["127.0.0.1:5000"].auth).toBe(Buffer.from("alice:s3cr:et").toString("base64"));
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    expect(await store.get("127.0.0.1:5000")).toEqual({ username: "alice", password: "s3cr:et" });
    expect(await store.erase("127.0.0.1:5000")).toBe(true);
    expect(await store.get("127.0.0.1:5000")).toBeUndefined();
    expect(await store.erase("127.0.0.1:5000")).toBe(false);
  });

  it("keeps Docker Hub under its legacy key and preserves unrelated settings", async () => {
    const path = join(dir, "config.json");
    await writeFile(path, JSON.stringify({ psFormat: "table {{.ID}}", auths: {} }));
    const store = new CredentialStore(path);
    await store.store("docker.io", { identityToken: "refresh-me" });
    const config = JSON.parse(await readFile(path, "utf8"));
    expect(config.psFormat).toBe("table {{.ID}}");
    expect(config.auths["https://index.docker.io/v1/"]).toEqual({ identitytoken: "refresh-me" });
    expect(await store.get("docker.io")).toEqual({ identityToken: "refresh-me" });
  });

  it("talks to a docker-credential helper named by credHelpers", async () => {
    // A real helper executable speaking the docker-credential protocol, keeping secrets in a file.
    const bin = join(dir, "bin");
    const secrets = join(dir, "secrets.json");
    await writeFile(secrets, "{}");
    const helper = join(bin, "docker-credential-test");
    await mkdir(bin);
    await writeFile(
      helper,
      `#!/usr/bin/env node
const fs = require("node:fs");
const file = ${JSON.stringify(secrets)};
const db = JSON.parse(fs.readFileSync(file, "utf8"));
let input = "";
process.stdin.on("data", (c) => (input += c)).on("end", () => {
  const action = process.argv[2];
  if (action === "store") { const e = JSON.parse(input); db[e.ServerURL] = e; fs.writeFileSync(file, JSON.stringify(db)); }
  else if (action === "get") { const e = db[input.trim()]; if (!e) { process.stdout.write("credentials not found in native keychain"); process.exit(1); } process.stdout.write(JSON.stringify(e)); }
  else if (action === "erase") { delete db[input.trim()]; fs.writeFileSync(file, JSON.stringify(db)); }
});
`,
    );
    await chmod(helper, 0o755);
    const path = join(dir, "config.json");
    await writeFile(path, JSON.stringify({ credHelpers: { "registry.test:5000": "test" } }));
    const previousPath = process.env.PATH;
    process.env.PATH = `${bin}:${previousPath}`;
    try {
      const store = new CredentialStore(path);
      await store.store("registry.test:5000", { username: "bob", password: "hunter2" });
      expect(JSON.parse(await readFile(secrets, "utf8"))["registry.test:5000"]).toMatchObject({ Username: "bob", Secret: "hunter2" });
      // The secret lives in the helper, never in config.json.
      expect(await readFile(path, "utf8")).not.toContain("hunter2");
      expect(await store.get("registry.test:5000")).toEqual({ username: "bob", password: "hunter2" });
      await store.erase("registry.test:5000");
      expect(await store.get("registry.test:5000")).toBeUndefined();
    } finally {
      process.env.PATH = previousPath;
    }
  });
});
