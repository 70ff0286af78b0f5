import { join } from "node:path";
import { CredentialStore, dockerConfigPath } from "@minato/registry-client/credentials";
import { EngineClient, resolveHost } from "./client.js";

/** The streams a command reads and writes; the process's own unless a test passes others. */
export interface Io {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** Options given before the command: `minato -H unix:///… --config DIR <command>`. */
export interface GlobalOptions {
  host?: string;
  config?: string;
}

/**
 * What a command runs with: its streams and environment, the daemon client (created on first use
 * for the address from `--host` / `MINATO_HOST`) and the docker-compatible credential store.
 */
export class Context {
  #client: EngineClient | undefined;

  constructor(
    readonly io: Io,
    readonly env: NodeJS.ProcessEnv,
    readonly globals: GlobalOptions = {},
  ) {}

  get host(): string {
    return resolveHost(this.globals.host, this.env);
  }

  get client(): EngineClient {
    this.#client ??= new EngineClient(this.host);
    return this.#client;
  }

  /** `--config DIR` like docker's, else `$DOCKER_CONFIG`, else `~/.docker`. */
  get credentials(): CredentialStore {
    return new CredentialStore(this.globals.config ? join(this.globals.config, "config.json") : dockerConfigPath(this.env));
  }

  out(text: string): void {
    this.io.stdout.write(text);
  }

  err(text: string): void {
    this.io.stderr.write(text);
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }
}
