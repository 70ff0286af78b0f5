// Network namespaces as files: `unshare --net=FILE` bind-mounts a new namespace onto FILE, which
// keeps it alive without a process, so CNI can configure it before runc joins it by path. The
// directory is made a private mount of itself first: a namespace cannot be bind-mounted onto a
// shared mount (unshare(1), "--net"). The command unshare runs in the new namespace brings `lo` up,
// which is all CNI's loopback plugin would do, without a second process.
import { execFile, spawn } from "node:child_process";
import { mkdir, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { isMountPoint, unmount } from "../overlay.js";

const run = promisify(execFile);

/** A user namespace's single id range (what `unshare --map-users` takes). */
export interface NetnsUserMapping {
  uid: { containerID: number; hostID: number; size: number };
  gid: { containerID: number; hostID: number; size: number };
}

export class NetnsStore {
  #ready: Promise<void> | undefined;
  /**
   * The user namespace a container runs in (`--userns-remap`), if any: its network namespace must be
   * owned by it, or runc, having joined the user namespace, could not join the network one (exec).
   */
  userns?: (id: string) => NetnsUserMapping | undefined;
  /** Creations under way: a second `create` shares the first, a `remove` waits for it. */
  readonly #creating = new Map<string, Promise<string>>();

  constructor(readonly dir: string) {}

  path(id: string): string {
    return join(this.dir, id);
  }

  /** The user namespace that owns a container's network namespace (under --userns-remap). */
  userPath(netnsPath: string): string {
    return `${netnsPath}.user`;
  }

  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
      if (!(await isMountPoint(this.dir))) await run("mount", ["--bind", this.dir, this.dir]);
      await run("mount", ["--make-private", this.dir]);
    })().catch((error) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  create(id: string): Promise<string> {
    let creating = this.#creating.get(id);
    if (!creating) {
      creating = this.#create(id).finally(() => this.#creating.delete(id));
      this.#creating.set(id, creating);
    }
    return creating;
  }

  async #create(id: string): Promise<string> {
    await this.#prepare();
    const file = this.path(id);
    if (await isMountPoint(file)) return file;
    await writeFile(file, "", { mode: 0o644 });
    const mapping = this.userns?.(id);
    try {
      if (mapping) await this.#createOwned(file, mapping);
      else await run("unshare", [`--net=${file}`, "ip", "link", "set", "lo", "up"]);
    } catch (error) {
      await rm(file, { force: true });
      if (mapping) {
        await unmount(this.userPath(file)).catch(() => undefined);
        await rm(this.userPath(file), { force: true });
      }
      throw new Error(`creating a network namespace: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
    }
    return file;
  }

  /**
   * A network namespace owned by a new user namespace with `mapping`: a process unshares both and
   * waits while minatod (root in the parent namespace, so free to map any ids — no newuidmap) writes
   * its id maps and binds both namespaces to files, which keep them after the process is gone.
   */
  async #createOwned(file: string, mapping: NetnsUserMapping): Promise<void> {
    const userFile = this.userPath(file);
    // A user namespace still bound here (kept by a teardown that did not finish, e.g. across a daemon
    // restart) is let go first: the file of a bound namespace cannot be opened for writing (EPERM).
    await unmount(userFile).catch(() => undefined);
    await writeFile(userFile, "", { mode: 0o644 });
    const child = spawn("unshare", ["--user", "--net", "--", "sh", "-c", "read -r _"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    try {
      const pid = child.pid;
      if (pid === undefined) throw new Error("unshare did not start");
      const own = await readlink("/proc/self/ns/user");
      for (let i = 0; (await readlink(`/proc/${pid}/ns/user`).catch(() => own)) === own; i++) {
        if (child.exitCode !== null || i > 400) throw new Error(`unshare --user --net failed: ${stderr.trim()}`);
        await sleep(5);
      }
      const line = (m: NetnsUserMapping["uid"]) => `${m.containerID} ${m.hostID} ${m.size}\n`;
      await writeFile(`/proc/${pid}/uid_map`, line(mapping.uid));
      await writeFile(`/proc/${pid}/gid_map`, line(mapping.gid));
      await run("mount", ["--bind", `/proc/${pid}/ns/user`, userFile]);
      await run("mount", ["--bind", `/proc/${pid}/ns/net`, file]);
      await run("nsenter", [`--net=${file}`, "ip", "link", "set", "lo", "up"]);
    } finally {
      child.stdin?.end();
      await exited;
    }
  }

  async remove(id: string): Promise<void> {
    await this.#creating.get(id)?.catch(() => undefined);
    const file = this.path(id);
    await unmount(file);
    await rm(file, { force: true });
    const userFile = this.userPath(file);
    await unmount(userFile).catch(() => undefined);
    await rm(userFile, { force: true });
  }
}
