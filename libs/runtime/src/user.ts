// USER resolution as Docker does it (moby/sys/user GetExecUser semantics): `name`, `uid`, `uid:gid`,
// `name:group`, `uid:group`, `name:gid`, resolved against the rootfs's /etc/passwd and /etc/group.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "./errors.js";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: those listing the user as a member (when no group was given) plus `additionalGroups`. */
  additionalGids: number[];
  /** The matched passwd entry's name and home, when there was one. */
  name?: string;
  home: string;
}

const MAX_ID = 2147483647;

function parseId(value: string): number | undefined {
  if (!/^[0-9]+$/.test(value)) return undefined;
  const n = Number(value);
  if (n > MAX_ID) throw new RuntimeError("INVALID_OPTION", `uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

/** Parses /etc/passwd text; malformed lines and comments are skipped as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const f = trimmed.split(":");
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f.length < 4 || !Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === "" || f[3] === "") continue;
    entries.push({ name: f[0] ?? "", uid, gid, home: f[5] ?? "", shell: f[6] ?? "" });
  }
  return entries;
}

/** Parses /etc/group text. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const f = trimmed.split(":");
    const gid = Number(f[2]);
    if (f.length < 3 || f[2] === "" || !Number.isInteger(gid)) continue;
    const members = (f[3] ?? "").split(",").filter((m) => m !== "");
    entries.push({ name: f[0] ?? "", gid, members });
  }
  return entries;
}

/**
 * Resolves a USER spec. `passwd`/`group` are the file contents, or undefined when the file is absent.
 * Errors are Docker's: "unable to find user X: no matching entries in passwd file".
 */
export function resolveUser(
  spec: string,
  passwd: string | undefined,
  group: string | undefined,
  additionalGroups: string[] = [],
): ResolvedUser {
  const colon = spec.indexOf(":");
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  const groupArg = colon < 0 ? "" : spec.slice(colon + 1);
  const result: ResolvedUser = { uid: 0, gid: 0, additionalGids: [], home: "/" };
  const users = passwd === undefined ? [] : parsePasswd(passwd);
  const groups = group === undefined ? [] : parseGroup(group);

  const uidNumber = parseId(userArg);
  let matchedName: string | undefined;
  if (userArg !== "") {
    const match = users.find((u) => (uidNumber !== undefined ? u.uid === uidNumber : u.name === userArg));
    if (match) {
      result.uid = match.uid;
      result.gid = match.gid;
      result.home = match.home;
      result.name = match.name;
      matchedName = match.name;
    } else if (uidNumber !== undefined) {
      result.uid = uidNumber;
    } else {
      throw new RuntimeError("UNKNOWN_USER", `unable to find user ${userArg}: no matching entries in passwd file`);
    }
  } else {
    // An empty user part means root (uid 0), looked up so that root's groups apply.
    const root = users.find((u) => u.uid === 0);
    if (root) {
      result.home = root.home;
      result.name = root.name;
      matchedName = root.name;
    }
  }

  if (groupArg !== "") {
    const gidNumber = parseId(groupArg);
    const match = groups.find((g) => (gidNumber !== undefined ? g.gid === gidNumber : g.name === groupArg));
    if (match) result.gid = match.gid;
    else if (gidNumber !== undefined) result.gid = gidNumber;
    else throw new RuntimeError("UNKNOWN_USER", `unable to find group ${groupArg}: no matching entries in group file`);
  } else if (matchedName !== undefined) {
    for (const g of groups)
      if (g.members.includes(matchedName) && !result.additionalGids.includes(g.gid)) result.additionalGids.push(g.gid);
  }

  // --group-add: names or numbers; Docker resolves names against the container's /etc/group.
  for (const extra of additionalGroups) {
    const gidNumber = parseId(extra);
    let gid = gidNumber;
    if (gid === undefined) {
      const match = groups.find((g) => g.name === extra);
      if (!match) throw new RuntimeError("UNKNOWN_USER", `unable to find group ${extra}: no matching entries in group file`);
      gid = match.gid;
    }
    if (!result.additionalGids.includes(gid)) result.additionalGids.push(gid);
  }
  return result;
}

/** A file's text, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Resolves a USER spec against `<rootfs>/etc/passwd` and `<rootfs>/etc/group`. */
export async function resolveUserInRootfs(rootfs: string, spec: string, additionalGroups: string[] = []): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all([readOptional(join(rootfs, "etc/passwd")), readOptional(join(rootfs, "etc/group"))]);
  return resolveUser(spec, passwd, group, additionalGroups);
}
