import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./registry-process.js";

/** bcrypt, which Distribution's htpasswd wants, from the C library through python3's crypt module. */
function bcrypt(password: string): string {
  const script = "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))";
  return execFileSync("python3", ["-W", "ignore", "-c", script, password], { encoding: "utf8" }).trim();
}

export interface Distribution {
  registry: string;
  stop(): Promise<void>;
}

/**
 * CNCF Distribution (Debian `docker-registry`) on a loopback port with filesystem storage, optionally
 * behind htpasswd Basic authentication: the reference peer for interop tests.
 */
export async function startDistribution(options: { users?: Record<string, string> } = {}): Promise<Distribution> {
  const dir = await mkdtemp(join(tmpdir(), "minato-distribution-"));
  const port = await freePort();
  let auth = "";
  if (options.users) {
    const htpasswd = join(dir, "htpasswd");
    await writeFile(
      htpasswd,
      Object.entries(options.users)
        .map(([user, password]) => `${user}:${bcrypt(password)}\n`)
        .join(""),
    );
    auth = `auth:\n  htpasswd:\n    realm: minato-test\n    path: ${htpasswd}\n`;
  }
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "data")}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`,
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (let i = 0; ; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/v2/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    registry: `127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
