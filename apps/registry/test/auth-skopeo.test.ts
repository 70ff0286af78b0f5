import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestStorage, testStorage } from "./harness.js";

/**
 * The whole flow with a real client: skopeo pushes and pulls through the built-in token service of a
 * registry started as its own process (`minato-registry serve --auth token`), with users, grants,
 * public repositories and access tokens set up by the admin CLI. Needs the build (npm run build).
 */

const ROOT = resolve(import.meta.dirname, "../../..");
const BIN = join(ROOT, "apps/registry/bin/minato-registry.js");
const SKOPEO = "/usr/bin/skopeo";
const ADMIN_PASSWORD = "first-admin-password";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { env, cwd: tmpdir(), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
    // A child that exits without reading its input (skopeo refusing early) closes the pipe: EPIPE is
    // its answer, not the test's failure; the exit code and output say what happened.
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A one-file tar archive (ustar), enough for a layer. */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) =>
    header.write(value.padEnd(length, "\0").slice(0, length), offset, "latin1");
  field(0, 100, name);
  field(100, 8, "0000644\0");
  field(108, 8, "0000000\0");
  field(116, 8, "0000000\0");
  field(124, 12, `${content.length.toString(8).padStart(11, "0")}\0`);
  field(
    136,
    12,
    `${Math.floor(Date.UTC(2024, 0, 1) / 1000)
      .toString(8)
      .padStart(11, "0")}\0`,
  );
  field(148, 8, "        ");
  field(156, 1, "0");
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/** Writes an OCI image layout with one image (one gzip layer), tagged `tag`; returns the layer digest. */
async function writeLayout(dir: string, tag: string, text: string): Promise<{ layer: string; manifest: string }> {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer) => {
    const hex = sha256(data);
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const tar = tarOf("hello.txt", Buffer.from(text));
  const layer = await put(gzipSync(tar));
  const config = await put(
    Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [`sha256:${sha256(tar)}`] } }),
    ),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
      }),
    ),
  );
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        { mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": tag } },
      ],
    }),
  );
  return { layer: layer.digest, manifest: manifest.digest };
}

describe("skopeo through the token service", () => {
  let work: string;
  let dataDir: string;
  let layout: string;
  let image: { layer: string; manifest: string };
  let server: ChildProcess;
  let serverLog = "";
  let host: string;
  let skopeoEnv: NodeJS.ProcessEnv;
  let storage: TestStorage | undefined;
  const cliEnv = () => ({ PATH: process.env.PATH ?? "", HOME: work, MINATO_REGISTRY_DATA: dataDir });
  const passwords = { alice: "alice-pushes-123", reader: "reader-pulls-456" };
  let pat = "";
  let patId = "";

  /** The admin CLI against the data directory, asserting success. */
  async function admin(args: string[], input?: string): Promise<string> {
    const result = await run(process.execPath, [BIN, ...args], cliEnv(), input);
    expect(result.code, `minato-registry ${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  function skopeo(args: string[]): Promise<Run> {
    return run(SKOPEO, ["--policy", join(work, "policy.json"), ...args], skopeoEnv);
  }

  const push = (creds: string | undefined, repo: string) =>
    skopeo(["copy", "--dest-tls-verify=false", ...(creds ? ["--dest-creds", creds] : []), `oci:${layout}:v1`, `docker://${host}/${repo}`]);

  async function pull(creds: string | undefined, repo: string): Promise<{ result: Run; dir: string }> {
    const dir = join(work, `pulled-${Math.random().toString(36).slice(2)}`);
    const result = await skopeo([
      "copy",
      "--src-tls-verify=false",
      ...(creds ? ["--src-creds", creds] : ["--src-no-creds"]),
      `docker://${host}/${repo}`,
      `oci:${dir}:v1`,
    ]);
    return { result, dir };
  }

  /** A token from the registry's token service, to look at the API directly. */
  async function token(user: string, password: string, scope: string): Promise<string> {
    const res = await request(`http://${host}/token?service=minato-registry&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
    });
    expect(res.statusCode).toBe(200);
    return ((await res.body.json()) as { token: string }).token;
  }

  beforeAll(async () => {
    if (!existsSync(join(ROOT, "apps/registry/dist/cli.js"))) throw new Error("build first: npm run build");
    work = await mkdtemp(join(tmpdir(), "minato-auth-skopeo-"));
    dataDir = join(work, "data");
    layout = join(work, "layout");
    image = await writeLayout(layout, "v1", "hello from the auth test\n");
    await writeFile(join(work, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    await writeFile(join(work, "registries.conf"), "");
    // skopeo must not read or write the real user's credentials or configuration.
    skopeoEnv = {
      PATH: process.env.PATH ?? "",
      HOME: work,
      XDG_RUNTIME_DIR: work,
      XDG_CONFIG_HOME: join(work, ".config"),
      REGISTRY_AUTH_FILE: join(work, "auth.json"),
      CONTAINERS_REGISTRIES_CONF: join(work, "registries.conf"),
    };

    // Blobs on the filesystem, or in a bucket of their own on MINATO_TEST_STORAGE=s3.
    storage = await testStorage();
    server = spawn(
      process.execPath,
      [BIN, "serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--auth", "token", "--log-level", "debug", ...storage.args],
      {
        cwd: work,
        env: { ...cliEnv(), MINATO_REGISTRY_ADMIN_PASSWORD: ADMIN_PASSWORD },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    server.stdout?.on("data", (d) => {
      serverLog += d;
    });
    host = await new Promise<string>((done, fail) => {
      server.stderr?.on("data", (d) => {
        serverLog += d;
        const url = /"url":"http:\/\/([^"]+)"/.exec(serverLog)?.[1];
        if (url) done(url);
      });
      server.once("exit", (code) => fail(new Error(`registry exited with ${code}: ${serverLog}`)));
    });
    expect(serverLog).toContain(storage.config ? '"storage":"s3://' : '"storage":"filesystem:');

    // Users and grants, with the admin CLI on the live data directory.
    await admin(["user", "add", "alice", "--password-stdin"], `${passwords.alice}\n`);
    await admin(["user", "add", "reader", "--password-stdin"], `${passwords.reader}\n`);
    await admin(["user", "add", "ci", "--robot"]);
    await admin(["group", "add", "team"]);
    await admin(["group", "join", "team", "alice"]);
    await admin(["grant", "--group", "team", "team/*", "pull,push"]);
    await admin(["grant", "--user", "reader", "team/*", "pull"]);
    await admin(["grant", "--user", "ci", "ci/*", "pull,push"]);
    await admin(["public", "add", "pub/*"]);
    const created = await admin(["token", "create", "--user", "ci", "--name", "pipeline", "--scope", "ci/*:pull,push"]);
    pat = (/^(mnp_\S+)$/m.exec(created)?.[1] as string) ?? "";
    patId = /^token ([0-9a-f]+) /m.exec(created)?.[1] as string;
    expect(pat).toMatch(/^mnp_/);
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((done) => server.once("exit", done));
      server.kill("SIGTERM");
      await exited;
    }
    await storage?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("lists the users, grants and tokens the CLI made", async () => {
    const users = await admin(["user", "ls"]);
    expect(users).toMatch(/^admin\s+admin\s/m);
    expect(users).toMatch(/^alice\s+user\s+team\s/m);
    expect(users).toMatch(/^ci\s+robot\s/m);
    const grants = await admin(["grants"]);
    expect(grants).toMatch(/group:team\s+team\/\*\s+pull,push/);
    expect(grants).toMatch(/user:reader\s+team\/\*\s+pull/);
    const tokens = await admin(["token", "ls", "--user", "ci"]);
    expect(tokens).toContain(patId);
    expect(tokens).not.toContain(pat.slice(21));
    expect(await admin(["public", "ls"])).toBe("pub/*\n");
  });

  it("pushes with --dest-creds and pulls the same image back with --src-creds", async () => {
    const pushed = await push(`alice:${passwords.alice}`, "team/app:v1");
    expect(pushed.code, pushed.stderr).toBe(0);
    const { result, dir } = await pull(`alice:${passwords.alice}`, "team/app:v1");
    expect(result.code, result.stderr).toBe(0);
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(image.manifest);
    const layer = await readFile(join(dir, "blobs", "sha256", image.layer.slice(7)));
    expect(sha256(layer)).toBe(image.layer.slice(7));
    expect((await readdir(join(dir, "blobs", "sha256"))).sort()).toEqual((await readdir(join(layout, "blobs", "sha256"))).sort());
  });

  it("refuses a wrong password", async () => {
    const { result } = await pull("alice:not-her-password", "team/app:v1");
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/unable to retrieve auth token: invalid username\/password/);
  });

  it("anonymous clients pull a public repository, and cannot push", async () => {
    const published = await push("admin:" + ADMIN_PASSWORD, "pub/hello:v1");
    expect(published.code, published.stderr).toBe(0);
    const { result } = await pull(undefined, "pub/hello:v1");
    expect(result.code, result.stderr).toBe(0);

    const anonymousPush = await push(undefined, "pub/hello:v2");
    expect(anonymousPush.code).not.toBe(0);
    expect(anonymousPush.stderr).toMatch(/denied: requested access to the resource is denied/);
    // Nothing was tagged.
    const adminToken = await token("admin", ADMIN_PASSWORD, "repository:pub/hello:pull");
    const tags = await request(`http://${host}/v2/pub/hello/tags/list`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(((await tags.body.json()) as { tags: string[] }).tags).toEqual(["v1"]);
    // A private repository is not readable anonymously.
    const { result: denied } = await pull(undefined, "team/app:v1");
    expect(denied.code).not.toBe(0);
    // What skopeo shows says where to go next, as Docker does: no such repository, or log in.
    expect(denied.stderr).toMatch(/repository team\/app does not exist or may require 'minato login'/);
  });

  it("a pull-only user can pull but gets 403 on push", async () => {
    const { result } = await pull(`reader:${passwords.reader}`, "team/app:v1");
    expect(result.code, result.stderr).toBe(0);
    const refused = await push(`reader:${passwords.reader}`, "team/app:v2");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/denied: requested access to the resource is denied/);
    expect(refused.stderr).toMatch(/user reader may not push on repository team\/app \(ask an admin for a grant\)/);
    // The same, seen at the HTTP level: the token says pull, the push answers 403 DENIED.
    const readerToken = await token("reader", passwords.reader, "repository:team/app:pull,push");
    const res = await request(`http://${host}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      headers: { authorization: `Bearer ${readerToken}` },
    });
    expect(res.statusCode).toBe(403);
    expect(((await res.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("DENIED");
  });

  it("a personal access token works as the password, and stops working when revoked", async () => {
    const pushed = await push(`ci:${pat}`, "ci/app:v1");
    expect(pushed.code, pushed.stderr).toBe(0);
    const { result } = await pull(`ci:${pat}`, "ci/app:v1");
    expect(result.code, result.stderr).toBe(0);
    // Outside the token's scope: refused.
    const outside = await push(`ci:${pat}`, "team/app:ci");
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/403|denied/);

    expect(await admin(["token", "revoke", patId])).toMatch(/revoked access token/);
    const after = await pull(`ci:${pat}`, "ci/app:v1");
    expect(after.result.code).not.toBe(0);
    expect(after.result.stderr).toMatch(/unable to retrieve auth token: invalid username\/password/);
    const afterPush = await push(`ci:${pat}`, "ci/app:v2");
    expect(afterPush.code).not.toBe(0);
  });

  it("the server's logs hold none of the passwords or tokens", () => {
    expect(serverLog).toMatch(/issued token/);
    for (const secret of [ADMIN_PASSWORD, passwords.alice, passwords.reader, pat, pat.slice(21)]) {
      expect(serverLog.includes(secret)).toBe(false);
    }
  });
});
