// A CNI invoker (CNI spec 1.0.0, "Execution Protocol"): each plugin is a binary run with
// CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH in its environment and its network
// configuration on stdin; ADD prints a result, DEL prints nothing. A chain (a "conflist") runs its
// plugins in order for ADD, each getting the previous result as `prevResult`, and in reverse for DEL.
import { execFile } from "node:child_process";
import { join } from "node:path";

export const CNI_VERSION = "1.0.0";
/** Where Debian's containernetworking-plugins puts the plugins. */
export const DEFAULT_CNI_PATH = "/usr/lib/cni";

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: { interface?: number; address: string; gateway?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: unknown;
}

/** One plugin's configuration: `type` names the binary; everything else is the plugin's own. */
export type PluginConfig = { type: string } & Record<string, unknown>;

export interface CniRuntime {
  containerId: string;
  netns: string;
  ifname: string;
}

export class CniError extends Error {
  constructor(
    readonly plugin: string,
    message: string,
  ) {
    super(`${plugin}: ${message}`);
  }
}

export class CniInvoker {
  constructor(readonly path = DEFAULT_CNI_PATH) {}

  /** Runs one plugin; resolves with its parsed stdout (ADD) or undefined (DEL). */
  exec(command: "ADD" | "DEL" | "CHECK", config: PluginConfig & { name: string }, rt: CniRuntime): Promise<CniResult | undefined> {
    const env = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifname,
      CNI_PATH: this.path,
    };
    const stdin = JSON.stringify({ cniVersion: CNI_VERSION, ...config });
    return new Promise((resolve, reject) => {
      const child = execFile(join(this.path, config.type), { env, maxBuffer: 4 * 1024 * 1024 }, (error, stdout) => {
        if (error) {
          // Errors are a JSON object on stdout: {"code": N, "msg": "...", "details": "..."}.
          let message = error.message;
          try {
            const parsed = JSON.parse(stdout) as { msg?: string; details?: string };
            if (parsed.msg) message = parsed.details ? `${parsed.msg}: ${parsed.details}` : parsed.msg;
          } catch {
            // not JSON: keep the exec error
          }
          reject(new CniError(config.type, message));
          return;
        }
        if (command !== "ADD" || stdout.trim() === "") resolve(undefined);
        else resolve(JSON.parse(stdout) as CniResult);
      });
      child.stdin?.end(stdin);
    });
  }

  /** ADD through a chain; on a failure the plugins that succeeded are deleted again before it throws. */
  async add(name: string, plugins: PluginConfig[], rt: CniRuntime): Promise<CniResult> {
    let result: CniResult | undefined;
    const done: PluginConfig[] = [];
    try {
      for (const plugin of plugins) {
        result = (await this.exec("ADD", { ...plugin, name, ...(result ? { prevResult: result } : {}) }, rt)) ?? result;
        done.push(plugin);
      }
    } catch (error) {
      await this.del(name, done, rt, result).catch(() => undefined);
      throw error;
    }
    if (!result) throw new CniError(plugins[0]?.type ?? "cni", "no result");
    return result;
  }

  /** DEL through a chain in reverse, every plugin even when one fails (the first error is thrown at the end). */
  async del(name: string, plugins: PluginConfig[], rt: CniRuntime, prevResult?: CniResult): Promise<void> {
    let first: unknown;
    for (const plugin of [...plugins].reverse()) {
      try {
        await this.exec("DEL", { ...plugin, name, ...(prevResult ? { prevResult } : {}) }, rt);
      } catch (error) {
        first ??= error;
      }
    }
    if (first) throw first;
  }
}
