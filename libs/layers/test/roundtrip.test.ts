import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { applyLayer, gzipLayer, packDirectory } from "../src/index.js";
import { collect, listTar, requireRoot, sha256, snapshot, streamOf, tempDir } from "./helpers.js";
import { FILE_CAPS, LONG_FILE, makeKitchenSink } from "./kitchen-sink.js";

requireRoot();
const work = tempDir("roundtrip");
const source = join(work, "source");

beforeAll(() => {
  mkdirSync(source);
  makeKitchenSink(source);
});

describe("directory → tar → directory", () => {
  it("keeps every file kind, owner, mode bit, mtime, xattr and hard link", async () => {
    const layer = await collect(packDirectory(source));
    const target = join(work, "plain");
    const result = await applyLayer(streamOf(layer), target);

    expect(result).toEqual({ diffId: sha256(layer), size: layer.length, compression: "none", warnings: [] });
    const expected = snapshot(source);
    const actual = snapshot(target);
    expect(actual).toEqual(expected);

    // Spot checks, so a bug shared by the snapshot and the code cannot hide.
    expect(actual["bin/su"]).toMatchObject({ type: "file", mode: "4755", inode: "bin/su" });
    expect(actual["usr/bin/su-link"]?.inode).toBe("bin/su");
    expect(actual["data/su-third-link"]?.inode).toBe("bin/su");
    expect(actual["bin/wall"]).toMatchObject({ mode: "2755", gid: 5 });
    expect(actual.tmp).toMatchObject({ type: "dir", mode: "1777" });
    expect(actual["home/user"]).toMatchObject({ mode: "700", uid: 1000, gid: 1000 });
    expect(actual["home/user/self"]).toMatchObject({ type: "symlink", link: "../user", uid: 1000 });
    expect(actual["usr/bin/ping"]?.xattrs["security.capability"]).toBe(FILE_CAPS.toString("hex"));
    expect(actual["data/xattrs"]?.xattrs).toEqual({
      "trusted.minato": Buffer.from("trusted value").toString("hex"),
      "user.binary": "00ff800a3d20",
      "user.empty": "",
      "user.text": Buffer.from("key=value\nline two").toString("hex"),
    });
    expect(actual.lib?.xattrs).toEqual({ "trusted.on-a-symlink": "73" });
    expect(actual["usr/lib-hardlinked-symlink"]).toMatchObject({ type: "symlink", inode: "lib" });
    expect(actual["dev/null"]).toMatchObject({ type: "char", rdev: (0x103).toString(16), mode: "666" });
    expect(actual["dev/sda"]).toMatchObject({ type: "block", gid: 6, mode: "660" });
    expect(actual["run/fifo-link"]).toMatchObject({ type: "fifo", inode: "run/fifo", mode: "620" });
    expect(actual["data/big-uid"]).toMatchObject({ uid: 3_000_000, gid: 3_000_001 });
    expect(actual[LONG_FILE]?.type).toBe("file");
    expect(actual["data/unicode-ñame-日本.txt"]?.type).toBe("file");
    expect(actual.etc?.mtime).toBe(snapshot(source).etc?.mtime);
  });

  it("gives the same tree and diffID through gzip", async () => {
    const blob = join(work, "layer.tar.gz");
    const digests = await gzipLayer(packDirectory(source), createWriteStream(blob));
    const target = join(work, "gzip");
    const result = await applyLayer(createReadStream(blob), target);
    expect(result.compression).toBe("gzip");
    expect(result.diffId).toBe(digests.diffId);
    expect(result.size).toBe(digests.diffSize);
    expect(snapshot(target)).toEqual(snapshot(source));
  });

  it("writes archives other readers understand: tar-stream lists them, GNU tar extracts them identically", async () => {
    const layer = await collect(packDirectory(source));
    const headers = await listTar(layer);
    const byName = new Map(headers.map((header) => [header.name, header]));
    expect(byName.get("bin/su")).toMatchObject({ type: "file", mode: 0o4755, uid: 0, gid: 0 });
    expect(byName.get("usr/bin/su-link")).toMatchObject({ type: "link", linkname: "bin/su" });
    expect(byName.get("dev/big-numbers")).toMatchObject({ type: "character-device", devmajor: 511, devminor: 70_000 });
    expect(byName.get(LONG_FILE)?.type).toBe("file");
    expect(byName.get("etc/")?.type).toBe("directory");
    expect(headers.every((header) => header.uname === "" && header.gname === "")).toBe(true);

    const target = join(work, "gnu-tar");
    mkdirSync(target);
    const gnu = spawnSync(
      "tar",
      ["--extract", "--xattrs", "--xattrs-include=*", "--same-owner", "--same-permissions", "--numeric-owner", "-C", target],
      { input: layer },
    );
    expect(gnu.stderr.toString()).toBe("");
    expect(gnu.status).toBe(0);
    expect(snapshot(target)).toEqual(snapshot(source));
  });

  it("applies what GNU tar writes (PAX xattrs, GNU long names, ./ prefixes)", async () => {
    const target = join(work, "from-gnu-tar");
    for (const format of ["posix", "gnu"]) {
      const archive = spawnSync(
        "tar",
        ["--create", `--format=${format}`, "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", source, "."],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      expect(archive.status).toBe(0);
      const dir = `${target}-${format}`;
      const result = await applyLayer(streamOf(archive.stdout, 10_000), dir);
      expect(result.diffId).toBe(sha256(archive.stdout));
      // GNU format cannot carry xattrs: compare everything else there. GNU tar stores each link of a
      // FIFO as a FIFO of its own, so those two differ only in sharing an inode.
      const skipXattr = format === "gnu" ? () => true : undefined;
      const expected = snapshot(source, { skipXattr });
      delete expected["run/fifo"]?.inode;
      delete expected["run/fifo-link"]?.inode;
      expect(snapshot(dir, { skipXattr })).toEqual(expected);
    }
  });
});
