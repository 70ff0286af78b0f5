// Layers written to escape the target: each is refused or neutralised, and nothing outside the
// target changes (a sentinel directory beside it is compared before and after).
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applyLayer, LayerError, type LayerErrorCode } from "../src/index.js";
import { buildTar, requireRoot, type Snapshot, snapshot, streamOf, type TestEntry, tempDir } from "./helpers.js";

requireRoot();
const work = tempDir("hostile");
let counter = 0;

/** A box holding the target and a sentinel dir; `outside()` snapshots everything but the target. */
function box() {
  const root = join(work, `box-${++counter}`);
  const target = join(root, "target");
  const sentinel = join(root, "sentinel");
  mkdirSync(sentinel, { recursive: true });
  writeFileSync(join(sentinel, "secret"), "do not touch");
  mkdirSync(join(sentinel, "sub"));
  const outside = (): Record<string, Snapshot> =>
    Object.fromEntries(Object.entries(snapshot(root)).filter(([path]) => path !== "target" && !path.startsWith("target/")));
  return { root, target, sentinel, outside, before: outside() };
}

async function expectRefused(entries: TestEntry[], code: LayerErrorCode, message: string | RegExp, b = box()) {
  const error = await applyLayer(streamOf(await buildTar(entries)), b.target).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(LayerError);
  expect(error).toMatchObject({ code });
  expect((error as Error).message).toMatch(message);
  expect(b.outside()).toEqual(b.before);
  return b;
}

async function expectApplied(entries: TestEntry[], b = box()) {
  await applyLayer(streamOf(await buildTar(entries)), b.target);
  expect(b.outside()).toEqual(b.before);
  return b;
}

describe("hostile layers", () => {
  it("refuses entries with .. components", async () => {
    await expectRefused([{ name: "../escaped", content: "x" }], "BREAKOUT", /"\.\.\/escaped" has a "\.\." component/);
    await expectRefused([{ name: "ok/../../escaped", content: "x" }], "BREAKOUT", /"\.\." component/);
    await expectRefused([{ name: "./../sentinel/secret", content: "x" }], "BREAKOUT", /"\.\." component/);
    // The PAX path is the entry's name: a harmless ustar name cannot hide it.
    await expectRefused([{ name: "harmless", content: "x", pax: { path: "../../escaped" } }], "BREAKOUT", /"\.\." component/);
    await expectRefused(
      [
        { name: "dir/", type: "directory" },
        { name: "dir/..", type: "directory" },
      ],
      "BREAKOUT",
      /"\.\." component/,
    );
  });

  it("takes absolute paths relative to the target", async () => {
    const b = box();
    await expectApplied(
      [
        // Absolute names that point into the box: were they followed, the box would change.
        { name: `${b.root}/abs-file`, content: "inside" },
        { name: `${b.sentinel}/secret`, content: "pwned" },
        { name: `/${b.root}/double-slash`, content: "d" },
      ],
      b,
    );
    expect(readFileSync(join(b.target, b.root, "abs-file"), "utf8")).toBe("inside");
    expect(readFileSync(join(b.target, b.sentinel, "secret"), "utf8")).toBe("pwned");
    expect(readFileSync(join(b.sentinel, "secret"), "utf8")).toBe("do not touch");
    expect(readFileSync(join(b.target, b.root, "double-slash"), "utf8")).toBe("d");
  });

  it("refuses to write through a symlinked parent, wherever the link points", async () => {
    // Every link points into the box, so even a regression could not touch the machine's own files.
    for (const pointsTo of ["../sentinel", "SENTINEL", "..", "../sentinel/sub/../..", "."]) {
      const b = box();
      const linkname = pointsTo === "SENTINEL" ? b.sentinel : pointsTo;
      await expectRefused(
        [
          { name: "a", type: "symlink", linkname },
          { name: "a/passwd", content: "pwned" },
        ],
        "BREAKOUT",
        /parent "a" is a symlink/,
        b,
      );
      expect(readlinkSync(join(b.target, "a"))).toBe(linkname);
      expect(existsSync(join(b.sentinel, "passwd"))).toBe(false);
    }
    // Through a chain of links, and a symlink deeper in the path.
    await expectRefused(
      [
        { name: "b", type: "symlink", linkname: "../sentinel" },
        { name: "a", type: "symlink", linkname: "b" },
        { name: "a/x", content: "x" },
      ],
      "BREAKOUT",
      /parent "a" is a symlink/,
    );
    await expectRefused(
      [
        { name: "d/", type: "directory" },
        { name: "d/l", type: "symlink", linkname: "../../sentinel" },
        { name: "d/l/sub/x", content: "x" },
      ],
      "BREAKOUT",
      /parent "d\/l" is a symlink/,
    );
    // A whiteout below a symlink would create a device outside.
    await expectRefused(
      [{ name: "w", type: "symlink", linkname: "../sentinel" }, { name: "w/.wh.secret" }],
      "BREAKOUT",
      /parent "w" is a symlink/,
    );
    await expectRefused(
      [{ name: "o", type: "symlink", linkname: "../sentinel" }, { name: "o/.wh..wh..opq" }],
      "BREAKOUT",
      /parent "o" is a symlink/,
    );
  });

  it("refuses hard links that leave the layer or go through symlinks", async () => {
    const b = box();
    await expectRefused([{ name: "h", type: "link", linkname: "../sentinel/secret" }], "BREAKOUT", /"\.\." component/, b);
    await expectRefused([{ name: "h", type: "link", linkname: `${b.sentinel}/secret` }], "HARDLINK_TARGET", /not an entry of this layer/);
    await expectRefused(
      [
        { name: "s", type: "symlink", linkname: "../sentinel" },
        { name: "h", type: "link", linkname: "s/secret" },
      ],
      "BREAKOUT",
      /"s" is a symlink/,
    );
    await expectRefused([{ name: "h", type: "link", linkname: "missing" }], "HARDLINK_TARGET", /not an entry of this layer/);
    await expectRefused(
      [
        { name: "d/", type: "directory" },
        { name: "h", type: "link", linkname: "d" },
      ],
      "HARDLINK_TARGET",
      /is a directory/,
    );
    await expectRefused([{ name: "h", type: "link", linkname: "/" }], "HARDLINK_TARGET", /layer root/);
    expect(lstatSync(join(b.sentinel, "secret")).nlink).toBe(1);
  });

  it("neutralises a symlink replaced by a directory entry: later entries land inside", async () => {
    const b = await expectApplied([
      { name: "a", type: "symlink", linkname: "../sentinel" },
      { name: "a/", type: "directory" },
      { name: "a/secret", content: "inside" },
    ]);
    expect(lstatSync(join(b.target, "a")).isDirectory()).toBe(true);
    expect(readFileSync(join(b.target, "a/secret"), "utf8")).toBe("inside");
    expect(readFileSync(join(b.sentinel, "secret"), "utf8")).toBe("do not touch");
  });

  it("replaces a symlink with a file or device instead of writing through it", async () => {
    const b = await expectApplied([
      { name: "f", type: "symlink", linkname: "../sentinel/secret" },
      { name: "f", content: "replaced" },
      { name: "d", type: "symlink", linkname: "../sentinel/sub" },
      { name: "d", type: "fifo" },
      { name: "h", type: "symlink", linkname: "../sentinel/secret" },
      { name: "h2", type: "link", linkname: "h" },
      { name: "h2", content: "not through the link" },
    ]);
    expect(readFileSync(join(b.target, "f"), "utf8")).toBe("replaced");
    expect(lstatSync(join(b.target, "d")).isFIFO()).toBe(true);
    expect(readlinkSync(join(b.target, "h"))).toBe("../sentinel/secret");
    expect(readFileSync(join(b.target, "h2"), "utf8")).toBe("not through the link");
  });

  it("stores symlinks verbatim without following them", async () => {
    const b = await expectApplied([
      { name: "abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "up", type: "symlink", linkname: "../../../../../etc" },
      { name: "up-outside", type: "symlink", linkname: "../sentinel/secret" },
    ]);
    expect(readlinkSync(join(b.target, "abs"))).toBe("/etc/passwd");
    expect(readlinkSync(join(b.target, "up"))).toBe("../../../../../etc");
    expect(readlinkSync(join(b.target, "up-outside"))).toBe("../sentinel/secret");
  });

  it("refuses whiteouts of . and .., and writing under a regular file", async () => {
    await expectRefused([{ name: ".wh.." }], "BREAKOUT", /refusing/);
    await expectRefused([{ name: "x/.wh..." }], "BREAKOUT", /refusing/);
    await expectRefused(
      [
        { name: "f", content: "file" },
        { name: "f/x", content: "x" },
      ],
      "INVALID_ENTRY",
      /parent "f" is not a directory/,
    );
    await expectRefused([{ name: "./", type: "symlink", linkname: "/" }], "INVALID_ENTRY", /root entry/);
  });

  it("drops overlay xattrs a layer tries to smuggle in", async () => {
    const b = box();
    const result = await applyLayer(
      streamOf(
        await buildTar([
          { name: "dir/", type: "directory", pax: { "SCHILY.xattr.trusted.overlay.redirect": "/elsewhere", "SCHILY.xattr.user.ok": "ok" } },
        ]),
      ),
      b.target,
    );
    expect(result.warnings).toEqual([`"dir/": dropped xattr trusted.overlay.redirect (overlay metadata comes from whiteouts only)`]);
    expect(snapshot(b.target).dir?.xattrs).toEqual({ "user.ok": Buffer.from("ok").toString("hex") });
  });
});
