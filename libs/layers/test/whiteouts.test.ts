import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { applyLayer, diffDirectory, LayerError, mount, unmount as unmountOverlay } from "../src/index.js";
import { native, S_IFCHR } from "../src/native.js";
import { buildTar, collect, listTar, requireRoot, snapshot, streamOf, tempDir } from "./helpers.js";

requireRoot();
const work = tempDir("whiteouts");
let counter = 0;
const fresh = (label: string) => join(work, `${label}-${++counter}`);

const opaque = (path: string) => native().lgetxattr(path, "trusted.overlay.opaque")?.toString() ?? null;
const isWhiteout = (path: string) => {
  const stats = lstatSync(path, { throwIfNoEntry: false });
  return stats?.isCharacterDevice() === true && stats.rdev === 0;
};
const allNames = (root: string): string[] => readdirSync(root, { recursive: true, encoding: "utf8" }).sort();

const mounts: string[] = [];
afterEach(async () => {
  for (const merged of mounts.splice(0).reverse()) await unmountOverlay(merged, { detach: true });
});

/** Mounts overlayfs with the given lower dirs (topmost first) and optional upper dir. */
async function mountOverlay(lower: string[], upper?: string): Promise<string> {
  const merged = fresh("merged");
  mkdirSync(merged);
  let options = `lowerdir=${lower.join(":")}`;
  if (upper) {
    const workdir = fresh("work");
    mkdirSync(workdir);
    options += `,upperdir=${upper},workdir=${workdir}`;
  }
  // The settings the engine must use for diffable upper dirs (see diffDirectory).
  options += ",redirect_dir=off,metacopy=off";
  await mount("overlay", merged, "overlay", options);
  mounts.push(merged);
  return merged;
}

async function unmount(merged: string): Promise<void> {
  await unmountOverlay(merged);
  mounts.splice(mounts.indexOf(merged), 1);
}

describe("applying whiteouts", () => {
  it("turns .wh. files into 0/0 character devices and .wh..wh..opq into the opaque xattr", async () => {
    const layer = await buildTar([
      { name: "etc/", type: "directory" },
      { name: "etc/.wh.config" },
      { name: ".wh.gone" },
      { name: "bin/", type: "directory" },
      { name: "bin/.wh..wh..opq" },
      { name: "bin/new", content: "new" },
      { name: "implicit/.wh..wh..opq" },
      { name: "deep/er/.wh.thing" },
    ]);
    const target = fresh("apply");
    await applyLayer(streamOf(layer), target);

    expect(isWhiteout(join(target, "etc/config"))).toBe(true);
    expect(isWhiteout(join(target, "gone"))).toBe(true);
    expect(lstatSync(join(target, "gone")).mode & 0o7777).toBe(0);
    expect(lstatSync(join(target, "gone")).mtimeMs).toBe(1_700_000_000_000);
    expect(opaque(join(target, "bin"))).toBe("y");
    expect(readFileSync(join(target, "bin/new"), "utf8")).toBe("new");
    expect(opaque(join(target, "implicit"))).toBe("y");
    expect(isWhiteout(join(target, "deep/er/thing"))).toBe(true);
    expect(opaque(join(target, "etc"))).toBeNull();
    expect(allNames(target).filter((name) => name.includes(".wh."))).toEqual([]);
  });

  it("never deletes what the same layer adds, and hides the lower dir when a deleted dir is recreated", async () => {
    const layer = await buildTar([
      // Docker's order: the whiteout first, then the new directory of the same name.
      { name: ".wh.dir" },
      { name: "dir/", type: "directory", mode: 0o750 },
      { name: "dir/b", content: "b" },
      // The other order.
      { name: "dir2/", type: "directory" },
      { name: "dir2/kept", content: "kept" },
      { name: ".wh.dir2" },
      // A file added and whited out in the same layer stays (only later layers can hide it).
      { name: "file", content: "stays" },
      { name: ".wh.file" },
      // Whited out, then recreated as a file: the file hides the lower entry on its own.
      { name: ".wh.was-dir" },
      { name: "was-dir", content: "now a file" },
      // Whited out, then a child appears without its directory entry.
      { name: ".wh.parent" },
      { name: "parent/child", content: "c" },
    ]);
    const target = fresh("same-layer");
    await applyLayer(streamOf(layer), target);

    expect(opaque(join(target, "dir"))).toBe("y");
    expect(lstatSync(join(target, "dir")).mode & 0o7777).toBe(0o750);
    expect(readdirSync(join(target, "dir"))).toEqual(["b"]);
    expect(opaque(join(target, "dir2"))).toBe("y");
    expect(readdirSync(join(target, "dir2"))).toEqual(["kept"]);
    expect(readFileSync(join(target, "file"), "utf8")).toBe("stays");
    expect(readFileSync(join(target, "was-dir"), "utf8")).toBe("now a file");
    expect(opaque(join(target, "parent"))).toBe("y");
    expect(readdirSync(join(target, "parent"))).toEqual(["child"]);
  });

  it("rejects a whiteout that names nothing, and skips AUFS metadata", async () => {
    const bad = await buildTar([{ name: "dir/.wh." }]);
    const error = await applyLayer(streamOf(bad), fresh("bad-whiteout")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LayerError);
    expect(error).toMatchObject({ code: "INVALID_ENTRY", message: expect.stringContaining("names nothing") });

    const aufs = await buildTar([
      { name: ".wh..wh.plnk/", type: "directory" },
      { name: ".wh..wh.plnk/123.456", content: "x" },
      { name: ".wh..wh.aufs" },
      { name: "real", content: "r" },
    ]);
    const target = fresh("aufs");
    await applyLayer(streamOf(aufs), target);
    expect(allNames(target)).toEqual(["real"]);
  });
});

describe("diffing an upper dir", () => {
  it("writes whiteouts as .wh. entries, opaque dirs with .wh..wh..opq after them, hard links and xattrs", async () => {
    const upper = fresh("upper");
    mkdirSync(join(upper, "etc"), { recursive: true });
    native().mknod(join(upper, "etc/removed"), S_IFCHR, 0, 0);
    mkdirSync(join(upper, "opaque"));
    native().lsetxattr(join(upper, "opaque"), "trusted.overlay.opaque", Buffer.from("y"));
    native().lsetxattr(join(upper, "opaque"), "trusted.overlay.origin", Buffer.from([0, 1, 2]));
    native().lsetxattr(join(upper, "opaque"), "user.kept", Buffer.from("k"));
    writeFileSync(join(upper, "opaque/inside"), "inside");
    writeFileSync(join(upper, "a"), "hard");
    linkSync(join(upper, "a"), join(upper, "z-second-name"));
    native().mknod(join(upper, "top-removed"), S_IFCHR, 0, 0);
    // Kernels link whiteouts to one shared inode: a whiteout with nlink > 1 is still a whiteout.
    linkSync(join(upper, "top-removed"), join(upper, "etc/also-removed"));

    const layer = await collect(diffDirectory(upper));
    const headers = await listTar(layer);
    expect(headers.map((header) => `${header.type} ${header.name}${header.linkname ? ` -> ${header.linkname}` : ""}`)).toEqual([
      "file a",
      "directory etc/",
      "file etc/.wh.also-removed",
      "file etc/.wh.removed",
      "directory opaque/",
      "file opaque/.wh..wh..opq",
      "file opaque/inside",
      "file .wh.top-removed",
      "link z-second-name -> a",
    ]);
    const opaqueDir = headers.find((header) => header.name === "opaque/");
    expect(opaqueDir?.pax).toEqual({ "SCHILY.xattr.user.kept": "k" });

    // Applying the diff reproduces the upper dir's overlay form.
    const applied = fresh("reapplied");
    await applyLayer(streamOf(layer), applied);
    const skipXattr = (name: string) => name === "trusted.overlay.origin";
    const expected = snapshot(upper, { skipXattr });
    // The whiteouts come back as separate devices (tar has no hard links between whiteouts).
    delete expected["top-removed"]?.inode;
    delete expected["etc/also-removed"]?.inode;
    expect(snapshot(applied, { skipXattr })).toEqual(expected);
  });

  it("refuses upper dirs that only make sense with their lowers (redirect_dir, metacopy)", async () => {
    const upper = fresh("redirect");
    mkdirSync(join(upper, "moved"), { recursive: true });
    native().lsetxattr(join(upper, "moved"), "trusted.overlay.redirect", Buffer.from("/original"));
    const error = await collect(diffDirectory(upper)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "UNSUPPORTED_UPPER", message: expect.stringContaining("redirect_dir=off") });
  });
});

describe("with a real overlayfs", () => {
  it("shows the merged view of layers applied into separate dirs, with deleted files gone", async () => {
    const base = fresh("l1");
    const change = fresh("l2");
    await applyLayer(
      streamOf(
        await buildTar([
          { name: "etc/", type: "directory" },
          { name: "etc/config", content: "old config" },
          { name: "etc/other", content: "other" },
          { name: "bin/", type: "directory" },
          { name: "bin/app", content: "app" },
          { name: "bin/tools/", type: "directory" },
          { name: "bin/tools/one", content: "1" },
          { name: "dir/", type: "directory" },
          { name: "dir/a", content: "a" },
          { name: "keep", content: "keep" },
          { name: "gone", content: "gone" },
        ]),
      ),
      base,
    );
    await applyLayer(
      streamOf(
        await buildTar([
          { name: "etc/", type: "directory" },
          { name: "etc/.wh.config" },
          { name: "bin/", type: "directory" },
          { name: "bin/.wh..wh..opq" },
          { name: "bin/new", content: "new" },
          { name: ".wh.dir" },
          { name: "dir/", type: "directory" },
          { name: "dir/b", content: "b" },
          { name: ".wh.gone" },
          { name: "file4", content: "4" },
        ]),
      ),
      change,
    );

    const merged = await mountOverlay([change, base]);
    expect(allNames(merged)).toEqual(["bin", "bin/new", "dir", "dir/b", "etc", "etc/other", "file4", "keep"]);
    expect(readFileSync(join(merged, "keep"), "utf8")).toBe("keep");
    expect(existsSync(join(merged, "gone"))).toBe(false);
  });

  it("diffs a container's upper dir into a layer that reproduces its merged view", async () => {
    const base = fresh("base");
    await applyLayer(
      streamOf(
        await buildTar([
          { name: "etc/", type: "directory" },
          { name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n" },
          { name: "etc/motd", content: "hello" },
          { name: "bin/", type: "directory" },
          { name: "bin/sh", content: "sh", mode: 0o755 },
          { name: "bin/ls", content: "ls", mode: 0o755 },
          { name: "var/", type: "directory" },
          { name: "var/cache/", type: "directory" },
          { name: "var/cache/a", content: "a" },
          { name: "var/cache/b", content: "b" },
        ]),
      ),
      base,
    );

    // A "container" changes the tree through overlayfs.
    const upper = fresh("container-upper");
    mkdirSync(upper);
    const rw = await mountOverlay([base], upper);
    unlinkSync(join(rw, "etc/motd"));
    rmSync(join(rw, "var/cache"), { recursive: true });
    mkdirSync(join(rw, "var/cache"));
    writeFileSync(join(rw, "var/cache/fresh"), "fresh");
    writeFileSync(join(rw, "etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n");
    chmodSync(join(rw, "bin/ls"), 0o4755);
    mkdirSync(join(rw, "app"));
    writeFileSync(join(rw, "app/run"), "run");
    linkSync(join(rw, "app/run"), join(rw, "app/run-again"));
    symlinkSync("/app/run", join(rw, "bin/run"));
    native().lsetxattr(join(rw, "app/run"), "user.note", Buffer.from([0xfe, 0xed]));
    native().mknod(join(rw, "app/pipe"), 0o010644, 0, 0);
    renameSync(join(rw, "bin/sh"), join(rw, "bin/dash"));
    const expected = snapshot(rw);
    await unmount(rw);

    const layer = await collect(diffDirectory(upper));
    const names = (await listTar(layer)).map((header) => header.name);
    expect(names).toContain("etc/.wh.motd");
    expect(names).toContain("bin/.wh.sh");
    expect(names).toContain("var/cache/.wh..wh..opq");
    expect(names).not.toContain("var/cache/a");

    const applied = fresh("container-layer");
    await applyLayer(streamOf(layer), applied);
    const merged = await mountOverlay([applied, base]);
    expect(snapshot(merged)).toEqual(expected);
    expect(allNames(merged)).toEqual([
      "app",
      "app/pipe",
      "app/run",
      "app/run-again",
      "bin",
      "bin/dash",
      "bin/ls",
      "bin/run",
      "etc",
      "etc/passwd",
      "var",
      "var/cache",
      "var/cache/fresh",
    ]);
  });
});

describe("mount and unmount (the engine's overlays, without exec'ing mount(8))", () => {
  it("report errors as fs-style errors and detach a busy mount lazily", async () => {
    const missing = fresh("missing");
    await expect(mount("overlay", missing, "overlay", `lowerdir=${work}`)).rejects.toMatchObject({
      code: "ENOENT",
      syscall: "mount",
      path: missing,
    });
    const notMounted = fresh("plain");
    mkdirSync(notMounted);
    await expect(unmountOverlay(notMounted)).rejects.toMatchObject({ code: "EINVAL", syscall: "umount2" });

    const lower = fresh("lower");
    mkdirSync(lower);
    writeFileSync(join(lower, "file"), "content");
    const base = fresh("base");
    mkdirSync(base);
    const merged = await mountOverlay([lower, base]);
    const busy = openSync(join(merged, "file"), "r");
    try {
      await expect(unmountOverlay(merged)).rejects.toMatchObject({ code: "EBUSY" });
      await unmountOverlay(merged, { detach: true });
      mounts.splice(mounts.indexOf(merged), 1);
      expect(existsSync(join(merged, "file"))).toBe(false);
      expect(readFileSync(busy, "utf8")).toBe("content");
    } finally {
      closeSync(busy);
    }
  });
});
