import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** skopeo's path: the first executable `skopeo` on $PATH. */
export function findSkopeo(): string {
  for (const dir of (process.env.PATH ?? "/usr/bin").split(delimiter)) {
    const candidate = join(dir, "skopeo");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error("skopeo is required by the interop tests but was not found on PATH. Install it, e.g. `apt-get install skopeo`.");
}

export interface SkopeoResult {
  stdout: string;
  stderr: string;
}

/**
 * skopeo with its configuration isolated in a temporary directory: its own HOME and XDG dirs, an
 * empty auth file, an empty registries.conf, an accept-anything trust policy, and its own blob-info
 * cache, so a test neither reads nor writes the user's (or the system's) container configuration.
 */
export class Skopeo {
  private constructor(
    readonly binary: string,
    readonly dir: string,
    readonly env: NodeJS.ProcessEnv,
    readonly policy: string,
  ) {}

  static async create(): Promise<Skopeo> {
    const binary = findSkopeo();
    const dir = await mkdtemp(join(tmpdir(), "minato-skopeo-"));
    const home = join(dir, "home");
    const runtime = join(dir, "run");
    await mkdir(home, { recursive: true });
    await mkdir(runtime, { recursive: true, mode: 0o700 });
    const authFile = join(dir, "auth.json");
    const registriesConf = join(dir, "registries.conf");
    const policy = join(dir, "policy.json");
    await writeFile(authFile, JSON.stringify({ auths: {} }));
    await writeFile(registriesConf, "# isolated for minato tests\n");
    await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      XDG_DATA_HOME: join(home, ".local", "share"),
      XDG_CACHE_HOME: join(home, ".cache"),
      XDG_RUNTIME_DIR: runtime,
      REGISTRY_AUTH_FILE: authFile,
      CONTAINERS_REGISTRIES_CONF: registriesConf,
      // containers/image keeps its blob-info cache in /var/lib/containers/cache when run as root and
      // under $XDG_DATA_HOME otherwise; declaring a non-root uid keeps it inside this directory.
      _CONTAINERS_ROOTLESS_UID: "1000",
      TMPDIR: dir,
    };
    return new Skopeo(binary, dir, env, policy);
  }

  /** Runs `skopeo --policy <isolated> <args…>`; rejects with skopeo's stderr when it fails. */
  run(args: string[]): Promise<SkopeoResult> {
    const argv = ["--policy", this.policy, ...args];
    return new Promise((resolve, reject) => {
      execFile(this.binary, argv, { env: this.env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`skopeo ${argv.join(" ")} failed (${error.code ?? error.signal}):\n${stderr || stdout}`));
        } else {
          resolve({ stdout, stderr });
        }
      });
    });
  }

  async json<T>(args: string[]): Promise<T> {
    const { stdout } = await this.run(args);
    return JSON.parse(stdout) as T;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
