import { spawn } from "node:child_process";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

/** What a registry login yields: a user and password, or an identity (refresh) token. */
export type Credentials = { username: string; password: string } | { identityToken: string; username?: string };

/** Docker Hub's key in config.json, kept for compatibility with the docker CLI. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

interface AuthEntry {
  auth?: string;
  identitytoken?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

function configKey(registry: string): string {
  return registry === "docker.io" ? DOCKER_HUB_KEY : registry;
}

/** The docker CLI's config location: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

/**
 * Credentials kept the way the docker CLI keeps them, so `minato login` and `docker login` share them:
 * base64 `auth` entries in config.json, or an external `docker-credential-<helper>` named by
 * `credHelpers[registry]` or `credsStore`.
 */
export class CredentialStore {
  constructor(readonly path: string = dockerConfigPath()) {}

  async #read(): Promise<DockerConfig> {
    try {
      return JSON.parse(await readFile(this.path, "utf8")) as DockerConfig;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new Error(`cannot read ${this.path}: ${(error as Error).message}`);
    }
  }

  async #write(config: DockerConfig): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const temporary = `${this.path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(config, null, "\t")}\n`, { mode: 0o600 });
    await rename(temporary, this.path);
  }

  #helper(config: DockerConfig, registry: string): string | undefined {
    return config.credHelpers?.[configKey(registry)] ?? config.credsStore;
  }

  async get(registry: string): Promise<Credentials | undefined> {
    const config = await this.#read();
    const helper = this.#helper(config, registry);
    if (helper) {
      const output = await runHelper(helper, "get", configKey(registry)).catch(() => undefined);
      if (!output) return undefined;
      const { Username, Secret } = JSON.parse(output) as { Username: string; Secret: string };
      return Username === "<token>" ? { identityToken: Secret } : { username: Username, password: Secret };
    }
    const entry = config.auths?.[configKey(registry)];
    if (!entry) return undefined;
    if (entry.identitytoken) return { identityToken: entry.identitytoken };
    if (!entry.auth) return undefined;
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon === -1) return undefined;
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }

  async store(registry: string, credentials: Credentials): Promise<void> {
    const config = await this.#read();
    const helper = this.#helper(config, registry);
    const username = "identityToken" in credentials ? "<token>" : credentials.username;
    const secret = "identityToken" in credentials ? credentials.identityToken : credentials.password;
    if (helper) {
      await runHelper(helper, "store", JSON.stringify({ ServerURL: configKey(registry), Username: username, Secret: secret }));
      config.auths = { ...config.auths, [configKey(registry)]: {} };
    } else {
      const entry: AuthEntry =
        "identityToken" in credentials
          ? { identitytoken: credentials.identityToken }
          : { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64") };
      config.auths = { ...config.auths, [configKey(registry)]: entry };
    }
    await this.#write(config);
  }

  /** Forgets a registry's credentials; false when there were none. */
  async erase(registry: string): Promise<boolean> {
    const config = await this.#read();
    const helper = this.#helper(config, registry);
    if (helper) await runHelper(helper, "erase", configKey(registry)).catch(() => undefined);
    if (!config.auths || !(configKey(registry) in config.auths)) return Boolean(helper);
    delete config.auths[configKey(registry)];
    await this.#write(config);
    return true;
  }
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin (the helpers' protocol). */
function runHelper(helper: string, action: "get" | "store" | "erase", input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", (error) => reject(new Error(`credential helper docker-credential-${helper}: ${error.message}`)));
    child.on("close", (code) => {
      if (code === 0) resolve(stdout.trim());
      else reject(new Error(`docker-credential-${helper} ${action} failed: ${(stderr || stdout).trim()}`));
    });
    child.stdin.end(input);
  });
}
