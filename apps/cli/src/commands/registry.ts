import type { Credentials } from "@minato/registry-client";
import { authConfigOf, registryOfServer, serverAddress } from "../auth.js";
import { type CommandGroup, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { CliError, DaemonError } from "../errors.js";
import { ask, readAll } from "../prompt.js";

/** swagger `SystemAuthResponse`. */
interface AuthResponse {
  Status?: string;
  IdentityToken?: string;
}

/** Asks the daemon (`POST /auth`) to log in to the registry with these credentials. */
async function verify(context: Context, registry: string, credentials: Credentials): Promise<AuthResponse> {
  return context.client.json<AuthResponse>("POST", "/auth", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(authConfigOf(registry, credentials)),
  });
}

const login = defineCommand<{ username?: string; password?: string; passwordStdin?: boolean }>({
  name: "login",
  usage: "[OPTIONS] [SERVER]",
  description: "Log in to a registry.\nIf no server is specified, Docker Hub is used.",
  args: { max: 1 },
  options: (command) =>
    command
      .option("-u, --username <string>", "Username")
      .option("-p, --password <string>", "Password or Personal Access Token (PAT)")
      .option("--password-stdin", "Take the Password or Personal Access Token (PAT) from stdin"),
  async run(context, [server], options) {
    let { username, password } = options;
    if (password !== undefined && options.passwordStdin) throw new CliError("--password and --password-stdin are mutually exclusive");
    if (options.passwordStdin) {
      if (!username) throw new CliError("Must provide --username with --password-stdin");
      password = (await readAll(context.io.stdin)).replace(/\n$/, "").replace(/\r$/, "");
    } else if (password !== undefined) {
      context.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
    }
    const registry = registryOfServer(server);
    const store = context.credentials;

    if (username === undefined && password === undefined) {
      // As docker does: try what is stored before asking.
      const stored = await store.get(registry);
      if (stored) {
        context.out("Authenticating with existing credentials...\n");
        try {
          await verify(context, registry, stored);
          context.out("Login Succeeded\n");
          return 0;
        } catch (error) {
          if (!(error instanceof DaemonError)) throw error;
          context.err(`Login did not succeed, error: ${error.display}\n`);
        }
      }
    }
    if (!username || password === undefined) {
      if (!context.io.stdin.isTTY) throw new CliError("Cannot perform an interactive login from a non TTY device");
      username ||= await ask(context, "Username: ");
      if (!username) throw new CliError("Username is required");
      if (password === undefined) password = await ask(context, "Password: ", true);
    }
    if (!password) throw new CliError("Password is required");

    const response = await verify(context, registry, { username, password });
    await store.store(registry, response.IdentityToken ? { identityToken: response.IdentityToken, username } : { username, password });
    context.out(`${response.Status || "Login Succeeded"}\n`);
    return 0;
  },
});

const logout = defineCommand({
  name: "logout",
  usage: "[SERVER]",
  description: "Log out from a registry.\nIf no server is specified, Docker Hub is used.",
  args: { max: 1 },
  async run(context, [server]) {
    const registry = registryOfServer(server);
    const shown = serverAddress(registry);
    if (await context.credentials.erase(registry)) context.out(`Removing login credentials for ${shown}\n`);
    else context.out(`Not logged in to ${shown}\n`);
    return 0;
  },
});

/** `minato login` / `minato logout`: registry credentials, kept as the docker CLI keeps them. */
export const registryGroup: CommandGroup = { commands: [login, logout] };
