// What the engine says when a registry refuses it (issue 13 #5): a push without push rights fails
// before any layer line, with the registry's message; an anonymous pull of a private repository says
// what Docker says (the repository does not exist or may require a login). A real minato-registry
// with token authentication on loopback, its users and grants made with its admin CLI.
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineProcess, registryAuth, streamError } from "./support/engine-process.js";
import { image, randomLayer, writeLayout } from "./support/oci-layout.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";

const PASSWORD = "access-admin-password";
const READER_PASSWORD = "reader-only-pulls-1";
const BIN = join(ROOT, "apps/registry/bin/minato-registry.js");
const root = process.getuid?.() === 0;

const tarDirectory = (dir: string) => execFileSync("tar", ["--sort=name", "-C", dir, "-cf", "-", "."], { maxBuffer: 64 * 1024 * 1024 });

describe.skipIf(!root)("engine ⇄ registry access errors (token auth; needs root for minatod)", () => {
  let registry: RegistryProcess;
  let engine: EngineProcess;
  let work: string;
  let host: string;

  const admin = (args: string[], input?: string) =>
    new Promise<void>((resolve, reject) => {
      const child = execFile(
        process.execPath,
        [BIN, ...args],
        { env: { PATH: process.env.PATH ?? "", HOME: work, MINATO_REGISTRY_DATA: registry.dataDir } },
        (error, _stdout, stderr) => (error ? reject(new Error(`minato-registry ${args.join(" ")}: ${stderr}`)) : resolve()),
      );
      child.stdin?.end(input ?? "");
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-access-"));
    registry = await RegistryProcess.start({ args: ["--auth", "token", "--admin-password", PASSWORD] });
    host = `127.0.0.1:${registry.port}`;
    await admin(["user", "add", "reader", "--password-stdin"], `${READER_PASSWORD}\n`);
    await admin(["grant", "--user", "reader", "team/*", "pull"]);
    engine = await EngineProcess.start();
    // An image in the private repository team/app, pushed by the admin; the same image loaded locally.
    const fixture = image({ architecture: "amd64", os: "linux" }, [randomLayer("access-one"), randomLayer("access-two", 2)], "access");
    const layout = join(work, "layout");
    await writeLayout(layout, [...fixture.blobs, fixture.manifest], { "1": fixture.manifest.descriptor });
    const loaded = await engine.messages("POST", "/images/load?quiet=1", {
      body: tarDirectory(layout),
      headers: { "Content-Type": "application/x-tar" },
    });
    expect(streamError(loaded)).toBeUndefined();
    const id = fixture.config.descriptor.digest;
    expect((await engine.api("POST", `/images/${id}/tag?repo=${host}/team/app&tag=1`)).status).toBe(201);
    expect((await engine.api("POST", `/images/${id}/tag?repo=${host}/team/app&tag=2`)).status).toBe(201);
    const pushed = await engine.messages("POST", `/images/${encodeURIComponent(`${host}/team/app`)}/push?tag=1`, {
      headers: { "X-Registry-Auth": registryAuth("admin", PASSWORD, host) },
    });
    expect(streamError(pushed)).toBeUndefined();
  });

  afterAll(async () => {
    await Promise.all([engine?.dispose(), registry?.dispose()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("a user with pull rights only is refused at the start of a push, before any layer line, with the registry's message", async () => {
    // The layers are all in the repository already: before, each gave "Layer already exists".
    const messages = await engine.messages("POST", `/images/${encodeURIComponent(`${host}/team/app`)}/push?tag=2`, {
      headers: { "X-Registry-Auth": registryAuth("reader", READER_PASSWORD, host) },
    });
    const error = streamError(messages);
    expect(error).toMatch(/push to team\/app: (DENIED|UNAUTHORIZED)/);
    expect(messages.filter((m) => m.status === "Layer already exists" || m.status === "Pushed" || m.status === "Preparing")).toEqual([]);
    expect(messages[0]?.status).toBe(`The push refers to repository [${host}/team/app]`);
    // The admin still can, and the tag the reader tried does not exist.
    const tags = await fetch(`http://${host}/v2/team/app/tags/list`);
    expect(tags.status).toBe(401);
    expect((await engine.api("GET", "/_ping")).status).toBe(200);
  });

  it("an anonymous pull of a private repository says it may not exist or may require 'minato login'", async () => {
    const messages = await engine.messages("POST", `/images/create?fromImage=${encodeURIComponent(`${host}/team/app`)}&tag=1`);
    expect(streamError(messages)).toMatch(
      new RegExp(
        `^pull access denied for ${host.replace(/\./g, "\\.")}/team/app, repository does not exist or may require 'minato login': (denied|unauthorized): `,
      ),
    );
    // With the reader's pull rights it works.
    const pulled = await engine.messages("POST", `/images/create?fromImage=${encodeURIComponent(`${host}/team/app`)}&tag=1`, {
      headers: { "X-Registry-Auth": registryAuth("reader", READER_PASSWORD, host) },
    });
    expect(streamError(pulled)).toBeUndefined();
  });
});
