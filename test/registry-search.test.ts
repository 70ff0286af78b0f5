// Search and distribution inspect against a self-hosted minato-registry with token auth:
// `GET /v1/search` filtered by pull rights; `docker search` and `minato search` through minatod's
// `GET /images/search`; `GET /distribution/{name}/json` with the caller's credentials.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminCommand } from "../apps/registry/src/auth/admin-cli.js";
import { EngineProcess, registryAuth } from "./support/engine-process.js";
import { image, imageIndex, randomLayer, writeLayout } from "./support/oci-layout.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";
import { Skopeo } from "./support/skopeo.js";

const PASSWORD = "search-admin-password";
const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface SearchBody {
  num_results: number;
  query: string;
  page: number;
  page_size: number;
  num_pages: number;
  results: { name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }[];
}

const run = (command: string, args: string[], env: NodeJS.ProcessEnv, input?: string) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = execFile(command, args, { env }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
    });
    child.stdin?.end(input ?? "");
  });

describe("registry search and distribution inspect", () => {
  let registry: RegistryProcess;
  let engine: EngineProcess;
  let skopeo: Skopeo;
  let work: string;
  let host: string;
  let alicePassword: string;
  let env: NodeJS.ProcessEnv;
  let amdDigest: string;
  let indexDigest: string;

  /** A token from the registry's token service for `scope`, as `user`. */
  const token = async (user: string, password: string, scope: string) => {
    const url = `http://${host}/token?service=minato-registry&scope=${encodeURIComponent(scope)}`;
    const response = await request(url, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` } });
    return ((await response.body.json()) as { token: string }).token;
  };
  const search = async (query: string, bearer?: string) => {
    const response = await request(`http://${host}/v1/search?${query}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    return { status: response.statusCode, body: (await response.body.json()) as SearchBody };
  };

  beforeAll(async () => {
    registry = await RegistryProcess.start({ args: ["--auth", "token", "--admin-password", PASSWORD] });
    host = `127.0.0.1:${registry.port}`;
    engine = await EngineProcess.start();
    skopeo = await Skopeo.create();
    work = await mkdtemp(join(tmpdir(), "minato-search-"));
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };

    const amd = image({ architecture: "amd64", os: "linux" }, [randomLayer("amd")], "amd64");
    const arm = image({ architecture: "arm64", os: "linux" }, [randomLayer("arm")], "arm64");
    const index = imageIndex([amd, arm]);
    amdDigest = amd.manifest.descriptor.digest;
    indexDigest = index.index.descriptor.digest;
    const layout = join(work, "layout");
    await writeLayout(layout, [...amd.blobs, amd.manifest, ...arm.blobs, arm.manifest, index.index], {
      one: amd.manifest.descriptor,
      multi: index.index.descriptor,
    });
    const copy = (ref: string, target: string, all = false) =>
      skopeo.run([
        "copy",
        ...(all ? ["--all"] : []),
        "--dest-tls-verify=false",
        "--dest-creds",
        `admin:${PASSWORD}`,
        `oci:${layout}:${ref}`,
        `docker://${host}/${target}`,
      ]);
    await copy("one", "team/app:1");
    await copy("one", "team/web:1");
    await copy("one", "other/teamwork:1");
    await copy("multi", "team/multi:1", true);

    const lines: string[] = [];
    await adminCommand("user", ["add", "alice", "--data", registry.dataDir], (line) => lines.push(line));
    alicePassword = /^password for alice: (\S+)$/m.exec(lines.join("\n"))?.[1] as string;
    await adminCommand("grant", ["--data", registry.dataDir, "--user", "alice", "team/*", "pull"], () => undefined);
  });
  afterAll(async () => {
    await Promise.all([engine?.dispose(), registry?.dispose(), skopeo?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  it("GET /v1/search: the docker v1 shape, substring matches, only what the caller may pull, pages", async () => {
    expect((await search("q=team")).status).toBe(401);
    const admin = await token("admin", PASSWORD, "registry:catalog:*");
    const all = await search("q=team", admin);
    expect(all.status).toBe(200);
    expect(all.body.results.map((r) => r.name)).toEqual(["other/teamwork", "team/app", "team/multi", "team/web"]);
    expect(all.body).toMatchObject({ num_results: 4, query: "team", page: 1, page_size: 25, num_pages: 1 });
    expect(all.body.results[0]).toEqual({
      name: "other/teamwork",
      description: "",
      star_count: 0,
      is_official: false,
      is_automated: false,
    });

    const alice = await token("alice", alicePassword, "registry:catalog:*");
    const mine = await search("q=team", alice);
    expect(mine.body.results.map((r) => r.name)).toEqual(["team/app", "team/multi", "team/web"]);
    expect((await search("q=teamwork", alice)).body).toMatchObject({ num_results: 0, results: [] });

    const second = await search("q=team&n=2&page=2", alice);
    expect(second.body).toMatchObject({ num_results: 3, page: 2, page_size: 2, num_pages: 2 });
    expect(second.body.results.map((r) => r.name)).toEqual(["team/web"]);
    for (const bad of ["q=team&n=0", "q=team&n=101", "q=team&page=0", "q=team&n=x", `q=${"a".repeat(300)}`]) {
      const answer = await search(bad, alice);
      expect(answer.status, bad).toBe(400);
      expect((answer.body as unknown as { errors: { code: string }[] }).errors[0]?.code).toBe("UNSUPPORTED");
    }
  });

  it("docker search and minato search on the registry, as alice, through minatod", async () => {
    const login = await run("docker", ["login", "--username", "alice", "--password-stdin", host], env, alicePassword);
    expect(login.code, login.stderr).toBe(0);
    const found = await run("docker", ["search", `${host}/team`], env);
    expect(found.code, found.stderr).toBe(0);
    const rows = found.stdout.trim().split("\n");
    expect(rows[0]?.split(/\s{2,}/)).toEqual(["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]);
    expect(rows.slice(1).map((r) => r.split(/\s+/)[0])).toEqual(["team/app", "team/multi", "team/web"]);
    const limited = await run("docker", ["search", "--limit", "1", "--format", "{{.Name}}", `${host}/team`], env);
    expect(limited.stdout).toBe("team/app\n");

    const viaMinato = await run(process.execPath, [MINATO, "search", `${host}/team`], { ...env, MINATO_HOST: env.DOCKER_HOST });
    expect(viaMinato.code, viaMinato.stderr).toBe(0);
    expect(viaMinato.stdout).toBe(found.stdout);

    // The API's own checks.
    const auth = { "X-Registry-Auth": registryAuth("alice", alicePassword, host) };
    const api = await engine.json<unknown[]>("GET", `/images/search?term=${host}/team&filters=${encodeURIComponent('{"stars":["1"]}')}`, {
      headers: auth,
    });
    expect(api).toEqual({ status: 200, body: [] });
    for (const [query, message] of [
      [`term=${host}/team&limit=0`, "outside the range"],
      [`term=${host}/team&filters=${encodeURIComponent('{"color":["red"]}')}`, "invalid filter 'color'"],
      [`term=${host}/team&filters=${encodeURIComponent('{"is-official":["maybe"]}')}`, "invalid filter 'is-official=maybe'"],
      ["term=", "term is required"],
    ] as const) {
      const answer = await engine.json<{ message: string }>("GET", `/images/search?${query}`, { headers: auth });
      expect(answer.status, query).toBe(400);
      expect(answer.body.message).toContain(message);
    }
    const wrong = await engine.json<{ message: string }>("GET", `/images/search?term=${host}/team`, {
      headers: { "X-Registry-Auth": registryAuth("alice", "wrong", host) },
    });
    expect(wrong.status).toBe(401);
  });

  it("dockerode: searchImages and image.distribution with an authconfig", async () => {
    const docker = new Docker({ socketPath: engine.socket });
    const authconfig = { username: "alice", password: alicePassword, serveraddress: host };
    const found = (await docker.searchImages({ term: `${host}/team`, limit: 2, authconfig })) as { name: string }[];
    expect(found.map((r) => r.name)).toEqual(["team/app", "team/multi"]);
    const info = (await docker.getImage(`${host}/team/multi:1`).distribution({ authconfig })) as {
      Descriptor: { digest: string };
      Platforms: { architecture: string; os: string }[];
    };
    expect(info.Descriptor.digest).toBe(indexDigest);
    expect(info.Platforms.map((p) => `${p.os}/${p.architecture}`)).toEqual(["linux/amd64", "linux/arm64"]);
    await expect(
      docker.getImage(`${host}/team/app:1`).distribution({ authconfig: { ...authconfig, password: "wrong" } }),
    ).rejects.toMatchObject({
      statusCode: 401,
    });
  });

  it("GET /distribution/{name}/json: the descriptor and platforms, with the caller's credentials", async () => {
    const auth = { "X-Registry-Auth": registryAuth("alice", alicePassword, host) };
    const one = await engine.json<{ Descriptor: { mediaType: string; digest: string; size: number }; Platforms: unknown[] }>(
      "GET",
      `/distribution/${host}/team/app:1/json`,
      { headers: auth },
    );
    expect(one.status).toBe(200);
    expect(Object.keys(one.body).sort()).toEqual(["Descriptor", "Platforms"]);
    expect(one.body.Descriptor).toMatchObject({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amdDigest });
    expect(one.body.Platforms).toEqual([{ architecture: "amd64", os: "linux" }]);

    const multi = await engine.json<{ Descriptor: { digest: string }; Platforms: unknown[] }>(
      "GET",
      `/distribution/${host}/team/multi:1/json`,
      {
        headers: auth,
      },
    );
    expect(multi.body.Descriptor.digest).toBe(indexDigest);
    expect(multi.body.Platforms).toEqual([
      { architecture: "amd64", os: "linux" },
      { architecture: "arm64", os: "linux" },
    ]);
    const byDigest = await engine.json<{ Descriptor: { digest: string } }>("GET", `/distribution/${host}/team/app@${amdDigest}/json`, {
      headers: auth,
    });
    expect(byDigest.body.Descriptor.digest).toBe(amdDigest);

    // alice may not pull other/* (denied: 403); nobody is anonymous here (401); a missing tag is 404.
    expect((await engine.json("GET", `/distribution/${host}/other/teamwork:1/json`, { headers: auth })).status).toBe(403);
    expect((await engine.json("GET", `/distribution/${host}/team/app:1/json`)).status).toBe(401);
    expect((await engine.json("GET", `/distribution/${host}/team/app:nope/json`, { headers: auth })).status).toBe(404);
    expect((await engine.json("GET", "/distribution/UPPER//bad/json", { headers: auth })).status).toBe(400);
  });
});
