// Network namespaces as files: `unshare --net=FILE` bind-mounts a new namespace onto FILE, which
// keeps it alive without a process, so CNI can configure it before runc joins it by path. The
// directory is made a private mount of itself first: a namespace cannot be bind-mounted onto a
// shared mount (unshare(1), "--net"). The command unshare runs in the new namespace brings `lo` up,
// which is all CNI's loopback plugin would do, without a second process.
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { isMountPoint, unmount } from "../overlay.js";

const run = promisify(execFile);

export class NetnsStore {
  #ready: Promise<void> | undefined;
  /** Creations under way: a second `create` shares the first, a `remove` waits for it. */
  readonly #creating = new Map<string, Promise<string>>();

  constructor(readonly dir: string) {}

  path(id: string): string {
    return join(this.dir, id);
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
    try {
      await run("unshare", [`--net=${file}`, "ip", "link", "set", "lo", "up"]);
    } catch (error) {
      await rm(file, { force: true });
      throw new Error(`creating a network namespace: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
    }
    return file;
  }

  async remove(id: string): Promise<void> {
    await this.#creating.get(id)?.catch(() => undefined);
    const file = this.path(id);
    await unmount(file);
    await rm(file, { force: true });
  }
}
