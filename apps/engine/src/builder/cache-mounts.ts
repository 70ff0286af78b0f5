// `RUN --mount=type=cache` directories (reference: "RUN --mount=type=cache"): they persist across
// builds and daemon restarts under the data root, one per `id`. `sharing` decides what concurrent
// users get: `shared` the same directory, `locked` the same directory one at a time, `private` a
// directory of its own when the first instances are in use.
import { createHash } from "node:crypto";
import { chmod, chown, lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";

export interface CacheMountRequest {
  id: string;
  sharing: "shared" | "private" | "locked";
  mode: number;
  uid: number;
  gid: number;
  /** Fills a directory made for the first time (`from=`/`source=`). */
  seed?: ((dir: string) => Promise<void>) | undefined;
}

export interface CacheMountLease {
  dir: string;
  release(): void;
}

interface Instance {
  users: number;
  locked: boolean;
  waiters: (() => void)[];
  creating?: Promise<void> | undefined;
}

/** The cache mount directories under one data root; one per daemon process. */
export class CacheMounts {
  readonly #instances = new Map<string, Instance>();

  constructor(readonly root: string) {}

  #instance(dir: string): Instance {
    let instance = this.#instances.get(dir);
    if (!instance) {
      instance = { users: 0, locked: false, waiters: [] };
      this.#instances.set(dir, instance);
    }
    return instance;
  }

  async acquire(request: CacheMountRequest): Promise<CacheMountLease> {
    const base = join(this.root, createHash("sha256").update(request.id).digest("hex"));
    let n = 0;
    let dir = `${base}-0`;
    if (request.sharing === "private") {
      while ((this.#instances.get(dir)?.users ?? 0) > 0) dir = `${base}-${++n}`;
    }
    const instance = this.#instance(dir);
    if (request.sharing === "locked") {
      while (instance.users > 0) await new Promise<void>((resolve) => instance.waiters.push(resolve));
      instance.locked = true;
    } else {
      while (instance.locked) await new Promise<void>((resolve) => instance.waiters.push(resolve));
    }
    instance.users++;
    try {
      // Concurrent first users wait for one creation.
      instance.creating ??= this.#create(dir, request).finally(() => {
        instance.creating = undefined;
      });
      await instance.creating;
    } catch (error) {
      this.#leave(instance);
      throw error;
    }
    let released = false;
    return {
      dir,
      release: () => {
        if (released) return;
        released = true;
        this.#leave(instance);
      },
    };
  }

  async #create(dir: string, request: CacheMountRequest): Promise<void> {
    if (await lstat(dir).catch(() => undefined)) return;
    const fresh = `${dir}.new`;
    await rm(fresh, { recursive: true, force: true });
    await mkdir(fresh, { recursive: true });
    await request.seed?.(fresh);
    await chown(fresh, request.uid, request.gid);
    await chmod(fresh, request.mode);
    await rename(fresh, dir);
  }

  #leave(instance: Instance): void {
    instance.users--;
    if (instance.users === 0) instance.locked = false;
    for (const wake of instance.waiters.splice(0)) wake();
  }

  /** The cache mount directories there are, and whether a build uses each now (`docker system df`). */
  async list(): Promise<{ dir: string; inUse: boolean }[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    return names
      .filter((name) => !name.endsWith(".new"))
      .map((name) => join(this.root, name))
      .map((dir) => ({ dir, inUse: (this.#instances.get(dir)?.users ?? 0) > 0 }));
  }

  /** Removes every cache mount nobody uses (`builder prune`). */
  async prune(): Promise<void> {
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      const dir = join(this.root, name);
      if ((this.#instances.get(dir)?.users ?? 0) > 0) continue;
      await rm(dir, { recursive: true, force: true });
    }
  }
}

const byRoot = new Map<string, CacheMounts>();

export function cacheMounts(dataRoot: string): CacheMounts {
  const root = join(dataRoot, "builder", "cache-mounts");
  let mounts = byRoot.get(root);
  if (!mounts) {
    mounts = new CacheMounts(root);
    byRoot.set(root, mounts);
  }
  return mounts;
}
