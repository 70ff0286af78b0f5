import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { END_OF_ARCHIVE, encodeHeader, padding } from "@minato/layers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineProcess, registryAuth, streamError } from "./support/engine-process.js";
import { blob, digestOf, gzipLayer, image, imageIndex, OCI, randomLayer, writeLayout } from "./support/oci-layout.js";
import { RegistryProcess } from "./support/registry-process.js";
import { Skopeo } from "./support/skopeo.js";

const PASSWORD = "engine-e2e-admin-password";

interface Inspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  RootFS: { Layers: string[] };
  GraphDriver: { Data: { LowerDir: string } };
  Descriptor?: { mediaType: string; digest: string };
}

/** A tree as path → type, mode, owner and content hash, to compare two unpacked images. */
async function describeTree(root: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, prefix))).sort()) {
    const path = join(prefix, name);
    const info = await lstat(join(root, path));
    const base = `${info.mode.toString(8)} ${info.uid}:${info.gid}`;
    if (info.isDirectory()) {
      out[path] = `dir ${base}`;
      Object.assign(out, await describeTree(root, path));
    } else if (info.isSymbolicLink()) {
      out[path] = `link ${base} -> ${await readlink(join(root, path))}`;
    } else {
      out[path] = `file ${base} ${createHash("sha256")
        .update(await readFile(join(root, path)))
        .digest("hex")}`;
    }
  }
  return out;
}

/** The merged view of an image's layers is what containers see; compare layer by layer instead. */
async function layerTrees(inspect: Inspect): Promise<Record<string, string>[]> {
  return Promise.all(inspect.GraphDriver.Data.LowerDir.split(":").map((dir) => describeTree(dir)));
}

function tarDirectory(dir: string): Buffer {
  return execFileSync("tar", ["--sort=name", "-C", dir, "-cf", "-", "."], { maxBuffer: 256 * 1024 * 1024 });
}

/** A gzip layer built from raw tar headers, for entries the fixtures' tar writer cannot express. */
function craftedLayer(entries: { name: string; type: "file" | "symlink" | "directory"; linkname?: string; content?: Buffer }[]) {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content = entry.content ?? Buffer.alloc(0);
    parts.push(
      encodeHeader({
        name: entry.name,
        type: entry.type,
        mode: entry.type === "directory" ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        size: content.byteLength,
        mtime: 0,
        linkname: entry.linkname ?? "",
        devmajor: 0,
        devminor: 0,
        xattrs: new Map(),
      }),
      content,
      padding(content.byteLength),
    );
  }
  parts.push(END_OF_ARCHIVE);
  const tar = Buffer.concat(parts);
  const layer = blob(OCI.layerGzip, gzipSync(tar));
  return { ...layer, diffId: digestOf(tar) };
}

describe("engine ⇄ registry (token auth), engine ⇄ skopeo", () => {
  let registry: RegistryProcess;
  let a: EngineProcess;
  let b: EngineProcess;
  let skopeo: Skopeo;
  let work: string;
  let host: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    registry = await RegistryProcess.start({ args: ["--auth", "token", "--admin-password", PASSWORD] });
    host = `127.0.0.1:${registry.port}`;
    auth = { "X-Registry-Auth": registryAuth("admin", PASSWORD, host) };
    [a, b] = await Promise.all([EngineProcess.start(), EngineProcess.start()]);
    skopeo = await Skopeo.create();
    work = await mkdtemp(join(tmpdir(), "minato-engine-e2e-"));
  });
  afterAll(async () => {
    await Promise.all([a?.dispose(), b?.dispose(), registry?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  it("engine A pushes a multi-layer image; engine B pulls the same digests and the same trees", async () => {
    const fixture = image(
      { architecture: "amd64", os: "linux" },
      [randomLayer("one"), randomLayer("two", 2), randomLayer("three", 4)],
      "round-trip",
    );
    const layout = join(work, "round-trip");
    await writeLayout(layout, [...fixture.blobs, fixture.manifest], { "1.0": fixture.manifest.descriptor });
    const loaded = await a.messages("POST", "/images/load?quiet=1", {
      body: tarDirectory(layout),
      headers: { "Content-Type": "application/x-tar" },
    });
    expect(streamError(loaded)).toBeUndefined();
    const id = fixture.config.descriptor.digest;
    expect(loaded.map((m) => m.stream).join("")).toContain(`Loaded image ID: ${id}`);

    const name = `${host}/team/app`;
    expect((await a.api("POST", `/images/${id}/tag?repo=${name}&tag=1.0`)).status).toBe(201);
    const pushed = await a.messages("POST", `/images/${encodeURIComponent(name)}/push?tag=1.0`, { headers: auth });
    expect(streamError(pushed)).toBeUndefined();
    const digest = pushed.find((m) => m.aux?.Digest)?.aux?.Digest as string;
    // The manifest the load kept is pushed byte for byte: its digest survives.
    expect(digest).toBe(fixture.manifest.descriptor.digest);
    expect(pushed.filter((m) => m.status === "Pushed")).toHaveLength(3);

    const pulled = await b.messages("POST", `/images/create?fromImage=${encodeURIComponent(name)}&tag=1.0`, { headers: auth });
    expect(streamError(pulled)).toBeUndefined();
    expect(pulled.map((m) => m.status)).toContain(`Digest: ${digest}`);
    const inA = (await a.json<Inspect>("GET", `/images/${encodeURIComponent(`${name}:1.0`)}/json`)).body;
    const inB = (await b.json<Inspect>("GET", `/images/${encodeURIComponent(`${name}:1.0`)}/json`)).body;
    expect(inB.Id).toBe(inA.Id);
    expect(inB.RootFS.Layers).toEqual(inA.RootFS.Layers);
    expect(inB.Descriptor?.digest).toBe(digest);
    expect(inB.RepoDigests).toContain(`${name}@${digest}`);
    expect(await layerTrees(inB)).toEqual(await layerTrees(inA));
    // The layers hold what the fixture wrote.
    const trees = await layerTrees(inB);
    expect(trees.flatMap((tree) => Object.keys(tree))).toEqual(
      expect.arrayContaining(["one/file-0.bin", "two/file-1.bin", "three/file-3.bin"]),
    );

    // Pulling again changes nothing and says so.
    const again = await b.messages("POST", `/images/create?fromImage=${encodeURIComponent(name)}&tag=1.0`, { headers: auth });
    expect(again.map((m) => m.status)).toContain(`Status: Image is up to date for ${name}:1.0`);
  });

  it("an image the engine pushed passes skopeo inspect and copies to an OCI layout byte for byte", async () => {
    const name = `${host}/team/app:1.0`;
    const creds = `admin:${PASSWORD}`;
    const inspected = JSON.parse((await skopeo.run(["inspect", "--tls-verify=false", "--creds", creds, `docker://${name}`])).stdout) as {
      Digest: string;
      Layers: string[];
    };
    const inB = (await b.json<Inspect>("GET", `/images/${encodeURIComponent(name)}/json`)).body;
    expect(inspected.Digest).toBe(inB.Descriptor?.digest);
    expect(inspected.Layers).toHaveLength(3);
    const out = join(work, "skopeo-out");
    await skopeo.run(["copy", "--src-tls-verify=false", "--src-creds", creds, `docker://${name}`, `oci:${out}:copy`]);
    const index = JSON.parse(await readFile(join(out, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(inspected.Digest);
  });

  it("pulls and unpacks what skopeo pushes: OCI, Docker schema2, and a two-platform index", async () => {
    const creds = `admin:${PASSWORD}`;
    const amd = image({ architecture: "amd64", os: "linux" }, [randomLayer("amd")], "amd64");
    const arm = image({ architecture: "arm64", os: "linux" }, [randomLayer("arm")], "arm64");
    const index = imageIndex([amd, arm]);
    const layout = join(work, "skopeo-in");
    await writeLayout(layout, [...amd.blobs, amd.manifest, ...arm.blobs, arm.manifest, index.index], {
      oci: amd.manifest.descriptor,
      multi: index.index.descriptor,
    });
    await skopeo.run(["copy", "--dest-tls-verify=false", "--dest-creds", creds, `oci:${layout}:oci`, `docker://${host}/interop/oci:1`]);
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      creds,
      "--format",
      "v2s2",
      `oci:${layout}:oci`,
      `docker://${host}/interop/v2s2:1`,
    ]);
    await skopeo.run([
      "copy",
      "--all",
      "--dest-tls-verify=false",
      "--dest-creds",
      creds,
      `oci:${layout}:multi`,
      `docker://${host}/interop/multi:1`,
    ]);

    for (const [repo, mediaType] of [
      ["interop/oci", OCI.manifest],
      ["interop/v2s2", "application/vnd.docker.distribution.manifest.v2+json"],
    ] as const) {
      const pulled = await b.messages("POST", `/images/create?fromImage=${host}/${repo}&tag=1`, { headers: auth });
      expect(streamError(pulled), repo).toBeUndefined();
      const inspect = (await b.json<Inspect>("GET", `/images/${encodeURIComponent(`${host}/${repo}:1`)}/json`)).body;
      expect(inspect.Descriptor?.mediaType).toBe(mediaType);
      expect(Object.keys(await describeTree(inspect.GraphDriver.Data.LowerDir))).toContain("amd/file-2.bin");
    }

    const native = await b.messages("POST", `/images/create?fromImage=${host}/interop/multi&tag=1&platform=linux/amd64`, { headers: auth });
    expect(streamError(native)).toBeUndefined();
    const other = await b.messages("POST", `/images/create?fromImage=${host}/interop/multi&tag=1&platform=linux/arm64`, { headers: auth });
    expect(streamError(other)).toBeUndefined();
    const inspect = (await b.json<Inspect>("GET", `/images/${encodeURIComponent(`${host}/interop/multi:1`)}/json`)).body;
    // The tag follows the last pull: the arm64 image, whose layer is its own.
    expect(inspect.Architecture).toBe("arm64");
    expect(inspect.Id).toBe(arm.config.descriptor.digest);
    expect(Object.keys(await describeTree(inspect.GraphDriver.Data.LowerDir))).toContain("arm/file-0.bin");
    expect((await b.json<Inspect>("GET", `/images/${amd.config.descriptor.digest}/json`)).body.Architecture).toBe("amd64");
    // The index digest is the repo digest both were pulled by.
    expect(inspect.RepoDigests).toContain(`${host}/interop/multi@${index.index.descriptor.digest}`);
  });

  it("answers unknown images with 404 and a clear message, and wrong passwords with 401", async () => {
    const missing = await b.json<{ message: string }>("GET", "/images/no-such-image/json");
    expect(missing).toEqual({ status: 404, body: { message: "No such image: no-such-image" } });
    const pull = await b.messages("POST", `/images/create?fromImage=${host}/nobody/nothing&tag=1`, { headers: auth });
    expect(streamError(pull)).toMatch(/MANIFEST_UNKNOWN|NAME_UNKNOWN|not found|unknown/i);
    const login = await b.json<{ message: string }>("POST", "/auth", {
      body: JSON.stringify({ username: "admin", password: "wrong", serveraddress: host }),
      headers: { "Content-Type": "application/json" },
    });
    expect(login.status).toBe(401);
    expect(login.body.message).toMatch(/incorrect username or password/);
    const ok = await b.json<{ Status: string }>("POST", "/auth", {
      body: JSON.stringify({ username: "admin", password: PASSWORD, serveraddress: host }),
      headers: { "Content-Type": "application/json" },
    });
    expect(ok).toEqual({ status: 200, body: { Status: "Login Succeeded", IdentityToken: "" } });
  });

  it("refuses layers that escape their snapshot, writing nothing outside it", async () => {
    const sentinel = join(work, "sentinel");
    await mkdir(sentinel);
    const creds = `admin:${PASSWORD}`;
    const cases = {
      dotdot: craftedLayer([{ name: "../../../../../../escaped-dotdot", type: "file", content: Buffer.from("x") }]),
      symlink: craftedLayer([
        { name: "door", type: "symlink", linkname: sentinel },
        { name: "door/escaped-symlink", type: "file", content: Buffer.from("x") },
      ]),
    };
    for (const [label, layer] of Object.entries(cases)) {
      const hostile = image({ architecture: "amd64", os: "linux" }, [layer], label);
      const layout = join(work, `hostile-${label}`);
      await writeLayout(layout, [...hostile.blobs, hostile.manifest], { evil: hostile.manifest.descriptor });
      await skopeo.run([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        `oci:${layout}:evil`,
        `docker://${host}/hostile/${label}:1`,
      ]);
      const pulled = await b.messages("POST", `/images/create?fromImage=${host}/hostile/${label}&tag=1`, { headers: auth });
      expect(streamError(pulled), label).toMatch(/layer|escape|\.\.|symlink|breakout/i);
      expect((await b.api("GET", `/images/${encodeURIComponent(`${host}/hostile/${label}:1`)}/json`)).status).toBe(404);
    }
    expect(await readdir(sentinel)).toEqual([]);
    await expect(stat("/escaped-dotdot")).rejects.toThrow(/ENOENT/);
    const snapshots = await readdir(join(b.dataRoot, "snapshots"));
    expect(snapshots.filter((name) => name.startsWith("tmp-"))).toEqual([]);
  });

  it("keeps nothing from a registry whose blob does not match its digest", async () => {
    const layer = gzipLayer([{ path: "good.txt", content: Buffer.from("the real layer") }]);
    const fixture = image({ architecture: "amd64", os: "linux" }, [layer], "liar");
    const served = new Map<string, Buffer>([
      [fixture.manifest.descriptor.digest, fixture.manifest.bytes],
      [fixture.config.descriptor.digest, fixture.config.bytes],
      // Same length, other bytes.
      [layer.descriptor.digest, randomBytes(layer.bytes.byteLength)],
    ]);
    const liar: Server = createServer((req, res) => {
      const match = /\/(manifests|blobs)\/([^/?]+)$/.exec(req.url ?? "");
      const key = match?.[2] === "1" ? fixture.manifest.descriptor.digest : match?.[2];
      const body = key ? served.get(key) : undefined;
      if (req.url === "/v2/") return void res.writeHead(200).end("{}");
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, {
        "Content-Type": match?.[1] === "manifests" ? OCI.manifest : "application/octet-stream",
        "Content-Length": body.byteLength,
      });
      res.end(body);
    });
    await new Promise<void>((resolve) => liar.listen(0, "127.0.0.1", resolve));
    try {
      const liarHost = `127.0.0.1:${(liar.address() as AddressInfo).port}`;
      const pulled = await b.messages("POST", `/images/create?fromImage=${liarHost}/x/y&tag=1`);
      expect(streamError(pulled)).toMatch(/digest mismatch/);
      expect((await b.api("GET", `/images/${encodeURIComponent(`${liarHost}/x/y:1`)}/json`)).status).toBe(404);
      await expect(stat(join(b.dataRoot, "content", "blobs", "sha256", layer.descriptor.digest.slice(7)))).rejects.toThrow(/ENOENT/);
      await expect(stat(join(b.dataRoot, "content", "ingest", `sha256-${layer.descriptor.digest.slice(7)}`))).rejects.toThrow(/ENOENT/);
    } finally {
      await new Promise<void>((resolve) => liar.close(() => resolve()));
    }
  });

  it("stores a shared layer once and frees blobs and snapshots only when no image uses them", async () => {
    const shared = randomLayer("shared");
    const first = image({ architecture: "amd64", os: "linux" }, [shared, randomLayer("first")], "first");
    const second = image({ architecture: "amd64", os: "linux" }, [shared, randomLayer("second")], "second");
    const layout = join(work, "shared");
    await writeLayout(layout, [...first.blobs, first.manifest, ...second.blobs, second.manifest], {
      first: first.manifest.descriptor,
      second: second.manifest.descriptor,
    });
    const c = await EngineProcess.start();
    try {
      const loaded = await c.messages("POST", "/images/load?quiet=1", { body: tarDirectory(layout) });
      expect(streamError(loaded)).toBeUndefined();
      const blobs = () => readdir(join(c.dataRoot, "content", "blobs", "sha256"));
      const snapshots = () => readdir(join(c.dataRoot, "snapshots"));
      const hex = (d: string) => d.slice("sha256:".length);
      // Two configs, two manifests, three distinct layers; three snapshots (the shared base once).
      expect((await blobs()).sort()).toEqual(
        [first.config, first.manifest, second.config, second.manifest, shared, first.layers[1], second.layers[1]]
          .map((b) => hex((b as { descriptor: { digest: string } }).descriptor.digest))
          .sort(),
      );
      expect(await snapshots()).toHaveLength(3);

      const removed = await c.json<{ Deleted?: string }[]>("DELETE", `/images/${first.config.descriptor.digest}`);
      expect(removed.body).toContainEqual({ Deleted: first.config.descriptor.digest });
      const left = await blobs();
      expect(left).toContain(hex(shared.descriptor.digest));
      expect(left).not.toContain(hex((first.layers[1] as typeof shared).descriptor.digest));
      expect(left).not.toContain(hex(first.manifest.descriptor.digest));
      expect(await snapshots()).toHaveLength(2);

      await c.json("DELETE", `/images/${second.config.descriptor.digest}`);
      expect(await blobs()).toEqual([]);
      expect(await snapshots()).toEqual([]);
    } finally {
      await c.dispose();
    }
  });

  it("finishes a pull that a killed daemon left half done, with verified content", async () => {
    const big = gzipLayer([{ path: "big.bin", content: randomBytes(48 * 1024 * 1024) }]);
    const fixture = image({ architecture: "amd64", os: "linux" }, [big, randomLayer("small")], "interrupted");
    const layout = join(work, "interrupted");
    await writeLayout(layout, [...fixture.blobs, fixture.manifest], { big: fixture.manifest.descriptor });
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      `admin:${PASSWORD}`,
      `oci:${layout}:big`,
      `docker://${host}/big/app:1`,
    ]);
    const c = await EngineProcess.start();
    try {
      const ingest = join(c.dataRoot, "content", "ingest", `sha256-${big.descriptor.digest.slice(7)}`);
      const pull = c.messages("POST", `/images/create?fromImage=${host}/big/app&tag=1`, { headers: auth }).catch((error: Error) => error);
      // Kill the daemon once part of the big layer has arrived.
      for (let i = 0; i < 2000; i++) {
        const size = await stat(ingest).then(
          (s) => s.size,
          () => 0,
        );
        if (size > 0) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      await c.kill("SIGKILL");
      expect(await pull).toBeInstanceOf(Error);
      await c.restart();
      expect((await c.api("GET", `/images/${encodeURIComponent(`${host}/big/app:1`)}/json`)).status).toBe(404);
      const again = await c.messages("POST", `/images/create?fromImage=${host}/big/app&tag=1`, { headers: auth });
      expect(streamError(again)).toBeUndefined();
      const inspect = (await c.json<Inspect>("GET", `/images/${encodeURIComponent(`${host}/big/app:1`)}/json`)).body;
      expect(inspect.Id).toBe(fixture.config.descriptor.digest);
      const tree = await describeTree(inspect.GraphDriver.Data.LowerDir.split(":").at(-1) as string);
      expect(Object.keys(tree)).toEqual(["big.bin"]);
      expect((await readFile(join(c.dataRoot, "content", "blobs", "sha256", big.descriptor.digest.slice(7)))).equals(big.bytes)).toBe(true);
    } finally {
      await c.dispose();
    }
  });
});
