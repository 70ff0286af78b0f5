// A tree with one of everything a layer must carry: every file kind, owners, special mode bits,
// large ids and device numbers, long and non-ASCII names, binary xattrs and hard links.
import { chmodSync, chownSync, lchownSync, linkSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from "../src/native.js";

/** A VFS_CAP_REVISION_2 security.capability value (cap_setuid + cap_net_raw effective): binary, not UTF-8. */
export const FILE_CAPS = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const LONG_DIR = `${"deeply-nested-directory-name/".repeat(4)}and-more`;
export const LONG_FILE = `${LONG_DIR}/${"a-file-name-that-alone-is-longer-than-one-hundred-bytes-".repeat(2)}.txt`;

export function makeKitchenSink(root: string): void {
  const dir = (rel: string, mode: number, uid = 0, gid = 0) => {
    mkdirSync(join(root, rel), { recursive: true });
    chownSync(join(root, rel), uid, gid);
    chmodSync(join(root, rel), mode);
  };
  const file = (rel: string, content: string | Buffer, mode = 0o644, uid = 0, gid = 0) => {
    writeFileSync(join(root, rel), content);
    chownSync(join(root, rel), uid, gid);
    chmodSync(join(root, rel), mode);
  };
  const ops = native();

  dir("etc", 0o755);
  dir("tmp", 0o1777);
  dir("bin", 0o755);
  dir("usr/bin", 0o755);
  dir("usr/lib", 0o755);
  dir("dev", 0o755);
  dir("run", 0o755);
  dir("data", 0o750, 0, 4);
  dir("home/user", 0o700, 1000, 1000);
  dir("empty", 0o711);
  dir(LONG_DIR, 0o755);

  file("etc/hostname", "minato\n");
  file("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 0, 42);
  file("bin/su", "#!/bin/sh\necho su\n", 0o4755);
  file("bin/wall", "wall\n", 0o2755, 0, 5);
  file("usr/bin/ping", "ping binary\n", 0o755);
  ops.lsetxattr(join(root, "usr/bin/ping"), "security.capability", FILE_CAPS);
  file("home/user/.profile", "export PS1='$ '\n", 0o600, 1000, 1000);
  file("home/user/empty-file", "", 0o644, 1000, 1000);
  file("data/unicode-ñame-日本.txt", "ünïcödé\n", 0o644);
  file("data/with spaces & symbols!", "x", 0o644);
  file("data/big-uid", "owned by a high uid\n", 0o644, 3_000_000, 3_000_001);
  file(LONG_FILE, "long path\n");
  const big = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  file("data/big.bin", big, 0o644);
  file("data/xattrs", "xattrs\n");
  ops.lsetxattr(join(root, "data/xattrs"), "user.binary", Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d, 0x20]));
  ops.lsetxattr(join(root, "data/xattrs"), "user.empty", Buffer.alloc(0));
  ops.lsetxattr(join(root, "data/xattrs"), "user.text", Buffer.from("key=value\nline two"));
  ops.lsetxattr(join(root, "data/xattrs"), "trusted.minato", Buffer.from("trusted value"));
  ops.lsetxattr(join(root, "data"), "user.on-a-dir", Buffer.from("dir xattr"));

  symlinkSync("usr/lib", join(root, "lib"));
  symlinkSync("/usr/share/zoneinfo/UTC", join(root, "etc/localtime"));
  symlinkSync("../user", join(root, "home/user/self"));
  lchownSync(join(root, "home/user/self"), 1000, 1000);
  ops.lsetxattr(join(root, "lib"), "trusted.on-a-symlink", Buffer.from("s"));

  linkSync(join(root, "bin/su"), join(root, "usr/bin/su-link"));
  linkSync(join(root, "bin/su"), join(root, "data/su-third-link"));
  linkSync(join(root, "lib"), join(root, "usr/lib-hardlinked-symlink"));

  ops.mknod(join(root, "dev/null"), S_IFCHR | 0o666, 1, 3);
  ops.mknod(join(root, "dev/sda"), S_IFBLK | 0o660, 8, 0);
  chownSync(join(root, "dev/sda"), 0, 6);
  ops.mknod(join(root, "dev/big-numbers"), S_IFCHR | 0o600, 511, 70_000);
  ops.mknod(join(root, "run/fifo"), S_IFIFO | 0o620, 0, 0);
  chmodSync(join(root, "dev/null"), 0o666);
  chmodSync(join(root, "dev/sda"), 0o660);
  chmodSync(join(root, "run/fifo"), 0o620);
  linkSync(join(root, "run/fifo"), join(root, "run/fifo-link"));

  // Distinct mtimes everywhere, directories last (creating entries changes their mtime).
  let t = 1_600_000_000;
  const stamp = (rel: string) => {
    t += 3607;
    lutimesSync(join(root, rel), t, t);
  };
  for (const rel of [
    "etc/hostname",
    "etc/shadow",
    "bin/su",
    "bin/wall",
    "usr/bin/ping",
    "home/user/.profile",
    "home/user/empty-file",
    "data/unicode-ñame-日本.txt",
    "data/with spaces & symbols!",
    "data/big-uid",
    "data/big.bin",
    "data/xattrs",
    LONG_FILE,
    "lib",
    "etc/localtime",
    "home/user/self",
    "dev/null",
    "dev/sda",
    "dev/big-numbers",
    "run/fifo",
  ]) {
    stamp(rel);
  }
  for (const rel of ["etc", "tmp", "bin", "usr/bin", "usr/lib", "usr", "dev", "run", "data", "home/user", "home", "empty", LONG_DIR])
    stamp(rel);
  for (let rel = LONG_DIR; rel.includes("/"); ) {
    rel = rel.slice(0, rel.lastIndexOf("/"));
    stamp(rel);
  }
}
