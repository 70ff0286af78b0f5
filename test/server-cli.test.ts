// The server programs' command lines, run as a user runs them: minato-registry and minatod parse
// with commander (as minato does), so help, errors and switches behave alike (issues 13 #6, 23 #2, #3).
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SETTINGS as ENGINE_SETTINGS } from "../apps/engine/src/config.js";
import { SETTINGS as REGISTRY_SETTINGS } from "../apps/registry/src/config.js";
import { request } from "./support/http.js";
import { freePort, REGISTRY_BIN, RegistryProcess, ROOT } from "./support/registry-process.js";

const MINATOD_BIN = join(ROOT, "apps/engine/bin/minatod.js");

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; no MINATO_* variable leaks in from the test's environment. */
function run(bin: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_"))), ...options.env };
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: options.cwd ?? ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The error output is one line naming the program. */
function oneLine(ran: Ran, program: string): string {
  const lines = ran.stderr.trimEnd().split("\n");
  expect(lines, ran.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^${program}: `));
  return lines[0] as string;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "minato-server-cli-"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe("help", () => {
  it("minato-registry serve --help lists every setting with its variable", async () => {
    const ran = await run(REGISTRY_BIN, ["serve", "--help"]);
    expect(ran.code).toBe(0);
    for (const setting of REGISTRY_SETTINGS) {
      expect(ran.stdout).toContain(`--${setting.flag}`);
      expect(ran.stdout).toContain(setting.env);
    }
  });

  it("minato-registry --help lists serve and the administration commands", async () => {
    const ran = await run(REGISTRY_BIN, ["--help"]);
    expect(ran.code).toBe(0);
    for (const command of ["serve", "user", "group", "grant", "revoke", "grants", "public", "token", "key"]) {
      expect(ran.stdout).toMatch(new RegExp(`^ {2}${command}\\b`, "m"));
    }
    const sub = await run(REGISTRY_BIN, ["token", "create", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("--scope <pattern:actions>");
  });

  it("minatod --help lists every setting with its variable, MINATO_LOG_LEVEL included", async () => {
    const ran = await run(MINATOD_BIN, ["--help"]);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain("MINATO_LOG_LEVEL");
    for (const setting of ENGINE_SETTINGS) {
      expect(ran.stdout).toContain(`--${setting.flag}`);
      expect(ran.stdout).toContain(setting.env);
    }
  });
});

describe("errors: one line, exit 2, a suggestion for a mistyped command", () => {
  it("minato-registry", async () => {
    const typo = await run(REGISTRY_BIN, ["srve"]);
    expect(typo.code).toBe(2);
    expect(oneLine(typo, "minato-registry")).toMatch(/unknown command 'srve'.*Did you mean serve\?/);

    const flag = await run(REGISTRY_BIN, ["serve", "--no-such-flag"]);
    expect(flag.code).toBe(2);
    expect(oneLine(flag, "minato-registry")).toMatch(/unknown option '--no-such-flag'/);

    const missing = await run(REGISTRY_BIN, ["user", "add", "--data", join(work, "admin-data")]);
    expect(missing.code).toBe(2);
    expect(oneLine(missing, "minato-registry")).toMatch(/missing required argument 'name'; see 'minato-registry user add --help'$/);

    const bad = await run(REGISTRY_BIN, ["serve", "--deletes=maybe"]);
    expect(bad.code).toBe(2);
    expect(oneLine(bad, "minato-registry")).toMatch(/--deletes must be true or false/);
  });

  it("minatod", async () => {
    const flag = await run(MINATOD_BIN, ["--no-such-flag"]);
    expect(flag.code).toBe(2);
    expect(oneLine(flag, "minatod")).toMatch(/unknown option '--no-such-flag'/);

    const value = await run(MINATOD_BIN, ["--max-concurrent-downloads", "0"]);
    expect(value.code).toBe(2);
    expect(oneLine(value, "minatod")).toMatch(/--max-concurrent-downloads must be a positive integer/);

    const env = await run(MINATOD_BIN, [], { env: { MINATO_MAX_CONCURRENT_UPLOADS: "many" } });
    expect(env.code).toBe(2);
    expect(oneLine(env, "minatod")).toMatch(/--max-concurrent-uploads must be a positive integer, not "many"/);
  });
});

describe("switches (issue 23 #2), through the real registry", () => {
  const unknownBlob = `/v2/flags/test/blobs/sha256:${"0".repeat(64)}`;
  const deleteStatus = async (args: string[]) => {
    const registry = await RegistryProcess.start({ args });
    try {
      return (await request("DELETE", `${registry.url}${unknownBlob}`)).status;
    } finally {
      await registry.dispose();
    }
  };

  it("--deletes alone is on; --no-deletes and --deletes=false turn deletes off", async () => {
    // On: the blob is unknown (404); off: DELETE is unsupported (405). The bare switch is followed
    // by another flag, which it must not take as its value.
    expect(await deleteStatus(["--deletes", "--log-level", "warn"])).toBe(404);
    expect(await deleteStatus(["--no-deletes"])).toBe(405);
    expect(await deleteStatus(["--deletes=false"])).toBe(405);
    expect(await deleteStatus(["--deletes", "false"])).toBe(405);
  });

  it("--trust-proxy alone honours X-Forwarded-Host in the token realm; --trust-proxy=false does not", async () => {
    const realmFor = async (args: string[]) => {
      const registry = await RegistryProcess.start({ args: ["--auth", "token", "--admin-password", "correct-horse-battery", ...args] });
      try {
        const answer = await request("GET", `${registry.url}/v2/`, {
          headers: { "X-Forwarded-Host": "registry.example.test", "X-Forwarded-Proto": "https" },
        });
        expect(answer.status).toBe(401);
        return /realm="([^"]+)"/.exec(String(answer.headers["www-authenticate"]))?.[1];
      } finally {
        await registry.dispose();
      }
    };
    expect(await realmFor(["--trust-proxy"])).toBe("https://registry.example.test/token");
    expect(await realmFor(["--trust-proxy=false"])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/);
    expect(await realmFor(["--trust-proxy", "--no-trust-proxy"])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/);
  });
});

describe(".env in the working directory (issue 23 #3)", () => {
  it("minato-registry serves on the address .env names, and a flag still wins over it", async () => {
    const dir = await mkdtemp(join(work, "registry-"));
    const port = await freePort();
    await writeFile(
      join(dir, ".env"),
      `MINATO_REGISTRY_LISTEN=127.0.0.1:${port}\nMINATO_REGISTRY_DATA=${join(dir, "data")}\nMINATO_REGISTRY_LOG_LEVEL=warn\n`,
    );
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_")));
    const child = spawn(process.execPath, [REGISTRY_BIN], { cwd: dir, env, stdio: "ignore" });
    try {
      const deadline = Date.now() + 30_000;
      let status = 0;
      while (Date.now() < deadline && status !== 200) {
        status = await request("GET", `http://127.0.0.1:${port}/v2/`).then(
          (r) => r.status,
          () => 0,
        );
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
    // The flag wins: a bad flag value is reported although .env's value is good.
    const flagWins = await run(REGISTRY_BIN, ["serve", "--listen", "nowhere"], { cwd: dir });
    expect(oneLine(flagWins, "minato-registry")).toMatch(/--listen must be HOST:PORT, not "nowhere"/);
  });

  it("minatod reads .env the same way (a value from .env is applied and checked)", async () => {
    const dir = await mkdtemp(join(work, "engine-"));
    await writeFile(join(dir, ".env"), "MINATO_LOG_LEVEL=chatty\n");
    const ran = await run(MINATOD_BIN, [], { cwd: dir });
    expect(ran.code).toBe(2);
    expect(oneLine(ran, "minatod")).toMatch(/--log-level must be one of .*not "chatty"/);
    // The environment wins over .env, as for the registry.
    const overridden = await run(MINATOD_BIN, ["--max-concurrent-downloads", "x"], { cwd: dir, env: { MINATO_LOG_LEVEL: "info" } });
    expect(oneLine(overridden, "minatod")).toMatch(/--max-concurrent-downloads/);
  });
});
