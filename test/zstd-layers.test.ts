// zstd layers end to end on Node 20: skopeo recompresses an image to zstd (`--dest-compress-format
// zstd`) on a loopback registry; a second minatod pulls it, unpacks the same tree as the gzip twin
// the first one has, and runs it. `minato push --compression zstd` sends zstd layers that skopeo
// reads back as the same image. `minato commit`/`build --compression zstd` store the image's new
// layers as zstd: the image runs, push sends them as they are, skopeo copies them, save/load keeps them.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess, streamError } from "./support/engine-process.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";
import { Skopeo } from "./support/skopeo.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");
const ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd";
const GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Inspect {
  Id: string;
  Descriptor?: { mediaType: string; digest: string };
  RootFS: { Layers: string[] };
  GraphDriver: { Data: { LowerDir: string } };
}

interface Manifest {
  mediaType?: string;
  layers: { mediaType: string; digest: string }[];
}

/** A tree as path → type, mode, owner and content hash. */
async function describeTree(root: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, prefix))).sort()) {
    const path = join(prefix, name);
    const info = await lstat(join(root, path));
    const base = `${info.mode.toString(8)} ${info.uid}:${info.gid}`;
    if (info.isDirectory()) {
      out[path] = `dir ${base}`;
      Object.assign(out, await describeTree(root, path));
    } else if (info.isSymbolicLink()) out[path] = `link ${base} -> ${await readlink(join(root, path))}`;
    else
      out[path] = `file ${base} ${createHash("sha256")
        .update(await readFile(join(root, path)))
        .digest("hex")}`;
  }
  return out;
}

const run = (command: string, args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    execFile(command, args, { env }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
    });
  });

describe("zstd layers: skopeo ⇄ registry ⇄ minatod", () => {
  let registry: RegistryProcess;
  let a: EngineProcess;
  let b: EngineProcess;
  let skopeo: Skopeo;
  let work: string;
  let host: string;
  const envOf = (engine: EngineProcess): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: work,
    DOCKER_CONFIG: join(work, "docker"),
    DOCKER_HOST: `unix://${engine.socket}`,
    MINATO_HOST: `unix://${engine.socket}`,
  });

  beforeAll(async () => {
    registry = await RegistryProcess.start();
    host = `127.0.0.1:${registry.port}`;
    [a, b] = await Promise.all([EngineProcess.start(), EngineProcess.start()]);
    skopeo = await Skopeo.create();
    work = await mkdtemp(join(tmpdir(), "minato-zstd-"));
    const imported = await run(
      "docker",
      ["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), `${host}/zstd/busybox:gzip`],
      envOf(a),
    );
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([a?.dispose(), b?.dispose(), registry?.dispose(), skopeo?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  const manifestOf = async (reference: string) =>
    JSON.parse((await skopeo.run(["inspect", "--raw", "--tls-verify=false", `docker://${reference}`])).stdout) as Manifest;

  it("an image skopeo recompressed to zstd pulls, unpacks to the gzip twin's tree, and runs", async () => {
    const pushed = await run("docker", ["push", `${host}/zstd/busybox:gzip`], envOf(a));
    expect(pushed.code, pushed.stderr).toBe(0);
    // skopeo 1.9 compresses uncompressed layers in the format asked but leaves gzip ones as they are:
    // through a directory of plain tars first, then a skopeo whose blob-info cache does not know the
    // gzip twin (it would reuse it).
    const plain = join(work, "plain");
    await skopeo.run(["copy", "--src-tls-verify=false", "--dest-decompress", `docker://${host}/zstd/busybox:gzip`, `dir:${plain}`]);
    const fresh = await Skopeo.create();
    await fresh.run([
      "copy",
      "--dest-tls-verify=false",
      "--format",
      "oci",
      "--dest-compress-format",
      "zstd",
      `dir:${plain}`,
      `docker://${host}/zstd/busybox:zstd`,
    ]);
    await fresh.dispose();
    const manifest = await manifestOf(`${host}/zstd/busybox:zstd`);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([ZSTD_LAYER]);

    const pulled = await b.messages("POST", `/images/create?fromImage=${host}/zstd/busybox&tag=zstd`);
    expect(streamError(pulled)).toBeUndefined();
    const twin = (await a.json<Inspect>("GET", `/images/${host}/zstd/busybox:gzip/json`)).body;
    const zstd = (await b.json<Inspect>("GET", `/images/${host}/zstd/busybox:zstd/json`)).body;
    // Same uncompressed layers, same config: the same image ID; and the same files on disk.
    expect(zstd.RootFS.Layers).toEqual(twin.RootFS.Layers);
    expect(zstd.Id).toBe(twin.Id);
    expect(await describeTree(zstd.GraphDriver.Data.LowerDir)).toEqual(await describeTree(twin.GraphDriver.Data.LowerDir));

    const ran = await run("docker", ["run", "--rm", `${host}/zstd/busybox:zstd`, "sh", "-c", "echo ran from zstd"], envOf(b));
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe("ran from zstd\n");
  });

  it("docker save of the zstd image and docker load elsewhere: zstd layers in an archive load; a zstd rootfs imports", async () => {
    const archive = join(work, "zstd.tar");
    const saved = await run("docker", ["save", "-o", archive, `${host}/zstd/busybox:zstd`], envOf(b));
    expect(saved.code, saved.stderr).toBe(0);
    const c = await EngineProcess.start();
    try {
      const loaded = await run("docker", ["load", "-i", archive], envOf(c));
      expect(loaded.code, loaded.stderr).toBe(0);
      const twin = (await a.json<Inspect>("GET", `/images/${host}/zstd/busybox:gzip/json`)).body;
      const image = (await c.json<Inspect & { Descriptor?: unknown }>("GET", `/images/${host}/zstd/busybox:zstd/json`)).body;
      expect(image.Id).toBe(twin.Id);
      expect(await describeTree(image.GraphDriver.Data.LowerDir)).toEqual(await describeTree(twin.GraphDriver.Data.LowerDir));
      const ran = await run("docker", ["run", "--rm", `${host}/zstd/busybox:zstd`, "echo", "loaded"], envOf(c));
      expect(ran.stdout).toBe("loaded\n");

      // A root filesystem tar compressed with zstd imports as the plain one does.
      const rootfs = await busyboxRootfs(work);
      const zstdRootfs = join(work, "rootfs.tar.zst");
      await run("zstd", ["-q", "-f", rootfs, "-o", zstdRootfs], envOf(c));
      const imported = await run("docker", ["import", zstdRootfs, "from-zstd:1"], envOf(c));
      expect(imported.code, imported.stderr).toBe(0);
      const fromZstd = (await c.json<Inspect>("GET", "/images/from-zstd:1/json")).body;
      expect(fromZstd.RootFS.Layers).toEqual(twin.RootFS.Layers);
    } finally {
      await c.dispose();
    }
  });

  it("minato push --compression zstd sends OCI zstd layers that skopeo and another engine read back", async () => {
    const tagged = await run("docker", ["tag", `${host}/zstd/busybox:gzip`, `${host}/zstd/mine:1`], envOf(a));
    expect(tagged.code, tagged.stderr).toBe(0);
    const pushed = await run(process.execPath, [MINATO, "push", "--compression", "zstd", `${host}/zstd/mine:1`], envOf(a));
    expect(pushed.code, pushed.stderr).toBe(0);
    const manifest = await manifestOf(`${host}/zstd/mine:1`);
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([ZSTD_LAYER]);
    // skopeo decompresses and checks every layer against its digest on the way to a directory.
    await skopeo.run(["copy", "--src-tls-verify=false", "--dest-decompress", `docker://${host}/zstd/mine:1`, `dir:${join(work, "mine")}`]);

    const pulled = await b.messages("POST", `/images/create?fromImage=${host}/zstd/mine&tag=1`);
    expect(streamError(pulled)).toBeUndefined();
    const twin = (await a.json<Inspect>("GET", `/images/${host}/zstd/busybox:gzip/json`)).body;
    expect((await b.json<Inspect>("GET", `/images/${host}/zstd/mine:1/json`)).body.Id).toBe(twin.Id);

    const bad = await run(process.execPath, [MINATO, "push", "--compression", "lz4", `${host}/zstd/mine:1`], envOf(a));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("lz4");
  });

  const minato = (engine: EngineProcess, ...args: string[]) => run(process.execPath, [MINATO, ...args], envOf(engine));
  const inspect = async (engine: EngineProcess, name: string) => (await engine.json<Inspect>("GET", `/images/${name}/json`)).body;

  /** The image's own manifest, as `minato save` writes it (an OCI layout: blobs by digest). */
  async function savedManifest(engine: EngineProcess, name: string, label: string): Promise<{ manifest: Manifest; archive: string }> {
    const archive = join(work, `${label}.tar`);
    const saved = await minato(engine, "save", "-o", archive, name);
    expect(saved.code, saved.stderr).toBe(0);
    const dir = join(work, label);
    await mkdir(dir);
    await run("tar", ["-C", dir, "-xf", archive], envOf(engine));
    const descriptor = (await inspect(engine, name)).Descriptor;
    expect(descriptor?.mediaType).toBe(OCI_MANIFEST);
    const hex = descriptor?.digest.replace("sha256:", "") ?? "";
    return { manifest: JSON.parse(await readFile(join(dir, "blobs/sha256", hex), "utf8")) as Manifest, archive };
  }

  /** Pushes as stored, checks the registry has the same manifest, and has skopeo copy it (verifying every blob) to an OCI layout. */
  async function pushAndCopy(engine: EngineProcess, reference: string, layers: string[], label: string): Promise<void> {
    const pushed = await minato(engine, "push", reference);
    expect(pushed.code, pushed.stderr).toBe(0);
    const raw = (await skopeo.run(["inspect", "--raw", "--tls-verify=false", `docker://${reference}`])).stdout;
    expect((JSON.parse(raw) as Manifest).layers.map((l) => l.mediaType)).toEqual(layers);
    expect(`sha256:${createHash("sha256").update(raw).digest("hex")}`).toBe((await inspect(engine, reference)).Descriptor?.digest);
    const layout = join(work, `${label}-layout`);
    await skopeo.run(["copy", "--src-tls-verify=false", `docker://${reference}`, `oci:${layout}:copied`]);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const copied = JSON.parse(
      await readFile(join(layout, "blobs/sha256", (index.manifests[0]?.digest ?? "").replace("sha256:", "")), "utf8"),
    ) as Manifest;
    expect(copied.layers.map((l) => l.mediaType)).toEqual(layers);
  }

  it("minato commit --compression zstd stores the new layer as zstd: it runs, pushes as is, skopeo copies it, save/load keep it", async () => {
    const made = await run(
      "docker",
      ["run", "--name", "to-commit", `${host}/zstd/busybox:gzip`, "sh", "-c", "echo committed > /hello"],
      envOf(a),
    );
    expect(made.code, made.stderr).toBe(0);
    const committed = await minato(a, "commit", "--compression", "zstd", "to-commit", `${host}/zstd/committed:1`);
    expect(committed.code, committed.stderr).toBe(0);
    const image = await inspect(a, `${host}/zstd/committed:1`);
    expect(committed.stdout.trim()).toBe(image.Id);
    const { manifest, archive } = await savedManifest(a, `${host}/zstd/committed:1`, "committed");
    // The base image's layer stays gzip; the committed one is zstd.
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([GZIP_LAYER, ZSTD_LAYER]);
    const ran = await run("docker", ["run", "--rm", `${host}/zstd/committed:1`, "cat", "/hello"], envOf(a));
    expect(ran.stdout, ran.stderr).toBe("committed\n");

    await pushAndCopy(a, `${host}/zstd/committed:1`, [GZIP_LAYER, ZSTD_LAYER], "committed");

    // The archive loads elsewhere with the same manifest, and runs there.
    const loaded = await minato(b, "load", "-i", archive);
    expect(loaded.code, loaded.stderr).toBe(0);
    const there = await inspect(b, `${host}/zstd/committed:1`);
    expect([there.Id, there.Descriptor?.digest]).toEqual([image.Id, image.Descriptor?.digest]);
    const ranThere = await run("docker", ["run", "--rm", `${host}/zstd/committed:1`, "cat", "/hello"], envOf(b));
    expect(ranThere.stdout, ranThere.stderr).toBe("committed\n");

    // --compression gzip (the default, said out loud) gives gzip layers only.
    const gzip = await minato(a, "commit", "--compression", "gzip", "to-commit", `${host}/zstd/committed:gzip`);
    expect(gzip.code, gzip.stderr).toBe(0);
    expect((await savedManifest(a, `${host}/zstd/committed:gzip`, "committed-gzip")).manifest.layers.map((l) => l.mediaType)).toEqual([
      GZIP_LAYER,
      GZIP_LAYER,
    ]);

    // Anything else: a one-line CLI error before any request, and a 400 naming the option from the API.
    const bad = await minato(a, "commit", "--compression", "lz4", "to-commit", `${host}/zstd/committed:bad`);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain('invalid argument "lz4" for "--compression" flag');
    const refused = await a.json<{ message: string }>("POST", "/commit?container=to-commit&repo=committed-bad&compression=lz4");
    expect(refused.status).toBe(400);
    expect(refused.body.message).toBe('unsupported compression "lz4": use gzip or zstd');
    expect((await a.api("GET", "/images/committed-bad/json")).status).toBe(404);
    const removed = await run("docker", ["rm", "to-commit"], envOf(a));
    expect(removed.code, removed.stderr).toBe(0);
  });

  it("minato build --compression zstd stores the build's new layers as zstd, cached steps included", async () => {
    const context = join(work, "build-context");
    await mkdir(context);
    // The RUN step writes random bytes: the same bytes in both images show the zstd build used the cache.
    await writeFile(
      join(context, "Dockerfile"),
      `FROM ${host}/zstd/busybox:gzip\nRUN head -c 12 /dev/urandom | od -An -tx1 > /built\nCOPY note.txt /note.txt\n`,
    );
    await writeFile(join(context, "note.txt"), "copied\n");
    const contentOf = async (engine: EngineProcess, reference: string) => {
      const ran = await run("docker", ["run", "--rm", reference, "cat", "/built", "/note.txt"], envOf(engine));
      expect(ran.code, ran.stderr).toBe(0);
      return ran.stdout;
    };
    // A gzip build first: the zstd build then takes both steps from the cache and still stores zstd.
    const first = await minato(a, "build", "-q", "-t", `${host}/zstd/built:gzip`, context);
    expect(first.code, first.stderr).toBe(0);
    const gzipContent = await contentOf(a, `${host}/zstd/built:gzip`);
    expect(gzipContent).toMatch(/^( [0-9a-f]{2}){12}\ncopied\n$/);
    const built = await minato(a, "build", "--compression", "zstd", "-t", `${host}/zstd/built:1`, context);
    expect(built.code, built.stderr).toBe(0);
    expect(await contentOf(a, `${host}/zstd/built:1`)).toBe(gzipContent);
    const { manifest } = await savedManifest(a, `${host}/zstd/built:1`, "built");
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([GZIP_LAYER, ZSTD_LAYER, ZSTD_LAYER]);

    await pushAndCopy(a, `${host}/zstd/built:1`, [GZIP_LAYER, ZSTD_LAYER, ZSTD_LAYER], "built");
    const pulled = await b.messages("POST", `/images/create?fromImage=${host}/zstd/built&tag=1`);
    expect(streamError(pulled)).toBeUndefined();
    expect(await contentOf(b, `${host}/zstd/built:1`)).toBe(gzipContent);

    // The image keeps the gzip blobs the cache names: after a garbage collection the steps still hit it.
    expect((await a.api("POST", "/images/prune")).status).toBe(200);
    const again = await minato(a, "build", "-q", "--compression", "zstd", "-t", `${host}/zstd/built:again`, context);
    expect(again.code, again.stderr).toBe(0);
    expect(await contentOf(a, `${host}/zstd/built:again`)).toBe(gzipContent);

    const bad = await minato(a, "build", "--compression", "xz", context);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain('invalid argument "xz" for "--compression" flag');
    const refused = await a.api("POST", "/build?compression=xz", {
      body: Buffer.alloc(1024),
      headers: { "Content-Type": "application/x-tar" },
    });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body.toString()).message).toBe('unsupported compression "xz": use gzip or zstd');
  });
});
