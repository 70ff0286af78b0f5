// .env.example is the list of settings (issue 23 #9): every variable it lists is read by the program
// whose section lists it, every variable the code reads is listed, and each program's --help names
// its variables.
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SETTINGS as ENGINE_SETTINGS, resolveConfig as engineConfig } from "../apps/engine/src/config.js";
import { SETTINGS as REGISTRY_SETTINGS, resolveConfig as registryConfig } from "../apps/registry/src/config.js";
import { ROOT } from "./support/registry-process.js";

type Program = "registry" | "engine" | "cli";

/** The variables of .env.example by section: `# ── Registry…`, `# ── Engine (minatod)…`, `# ── minato CLI…`. */
async function exampleSections(): Promise<Map<Program, Map<string, string>>> {
  const sections = new Map<Program, Map<string, string>>([
    ["registry", new Map()],
    ["engine", new Map()],
    ["cli", new Map()],
  ]);
  let current: Program | undefined;
  for (const line of (await readFile(join(ROOT, ".env.example"), "utf8")).split("\n")) {
    const heading = /^# ── (\S+)/.exec(line)?.[1];
    if (heading)
      current = heading === "Registry:" ? "registry" : heading === "Engine" ? "engine" : heading === "minato" ? "cli" : undefined;
    const variable = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!variable) continue;
    if (!current) throw new Error(`${variable[1]} is outside a known section of .env.example`);
    sections.get(current)?.set(variable[1] as string, variable[2] as string);
  }
  return sections;
}

/** The environment variables `load` reads, recorded by a proxy around the environment it is given. */
function variablesRead(load: (env: NodeJS.ProcessEnv) => unknown, base: Record<string, string>): Set<string> {
  const read = new Set<string>();
  const env = new Proxy(base as NodeJS.ProcessEnv, {
    get(target, key) {
      if (typeof key === "string") read.add(key);
      return target[key as string];
    },
  });
  load(env);
  return read;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The text of every source file of apps/ and libs/ (not tests, not builds). */
async function sources(): Promise<string> {
  const texts: string[] = [];
  for (const group of ["apps", "libs"]) {
    for (const project of await readdir(join(ROOT, group))) {
      const src = join(ROOT, group, project, "src");
      for (const file of await sourceFiles(src).catch(() => [])) texts.push(await readFile(file, "utf8"));
    }
  }
  return texts.join("\n");
}

function help(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, bin), ...args], { cwd: ROOT }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

describe(".env.example", () => {
  it("lists each server's settings table, with the table's defaults", async () => {
    const sections = await exampleSections();
    for (const [program, settings] of [
      ["registry", REGISTRY_SETTINGS],
      ["engine", ENGINE_SETTINGS],
    ] as const) {
      const listed = sections.get(program) as Map<string, string>;
      expect([...listed.keys()].sort()).toEqual(settings.map((s) => s.env).sort());
      for (const setting of settings) expect(listed.get(setting.env), setting.env).toBe(setting.default);
    }
  });

  it("every variable listed is read by its program", async () => {
    const sections = await exampleSections();
    // The registry reads storage and auth settings when they apply: every branch is taken once.
    const registryReads = new Set<string>();
    for (const base of [
      {},
      { MINATO_REGISTRY_STORAGE: "s3", MINATO_REGISTRY_S3_BUCKET: "b", MINATO_REGISTRY_S3_ENDPOINT: "http://127.0.0.1:9" },
      { MINATO_REGISTRY_AUTH: "token" },
    ]) {
      for (const name of variablesRead((env) => registryConfig({}, env), base)) registryReads.add(name);
    }
    for (const name of sections.get("registry")?.keys() ?? []) expect(registryReads, name).toContain(name);

    const engineReads = variablesRead((env) => engineConfig({}, env), {});
    for (const name of sections.get("engine")?.keys() ?? []) expect(engineReads, name).toContain(name);

    // The client reads its variables from the environment it is given (cli.ts, client.ts).
    const cli =
      (await readFile(join(ROOT, "apps/cli/src/cli.ts"), "utf8")) + (await readFile(join(ROOT, "apps/cli/src/client.ts"), "utf8"));
    for (const name of sections.get("cli")?.keys() ?? []) expect(cli, name).toMatch(new RegExp(`\\benv\\.${name}\\b`));
  });

  it("lists every MINATO_ variable the code of apps/ and libs/ names", async () => {
    const sections = await exampleSections();
    const listed = new Set([...sections.values()].flatMap((section) => [...section.keys()]));
    const named = new Set((await sources()).match(/\bMINATO_[A-Z0-9_]*[A-Z0-9]\b/g));
    expect(named.size).toBeGreaterThan(40);
    for (const name of named) expect(listed, `${name} is read but not in .env.example`).toContain(name);
  });

  it("the code reads no other variable from process.env than these, which are not Minato settings", async () => {
    const text = await sources();
    const read = new Set([...text.matchAll(/process\.env(?:\.([A-Za-z_]\w*)|\[["'](\w+)["']\])/g)].map((m) => m[1] ?? m[2]));
    const others = [...read].filter((name) => !name?.startsWith("MINATO_")).sort();
    // PATH: where runc, conmon and CNI find programs; AWS_REGION: the AWS SDK's own variable (README,
    // S3 storage); npm_package_version: set by npm for the User-Agent.
    expect(others).toEqual(["AWS_REGION", "PATH", "npm_package_version"]);
  });
});

describe("--help names each program's variables", () => {
  it("minato-registry serve --help, minatod --help and minato --help", async () => {
    const sections = await exampleSections();
    const texts: Record<Program, string> = {
      registry: await help("apps/registry/bin/minato-registry.js", ["serve", "--help"]),
      engine: await help("apps/engine/bin/minatod.js", ["--help"]),
      cli: await help("apps/cli/bin/minato.js", ["--help"]),
    };
    for (const [program, variables] of sections) {
      for (const name of variables.keys()) expect(texts[program], `${name} in ${program} --help`).toContain(name);
    }
    expect(texts.cli).toContain("MINATO_HOST");
    expect(texts.cli).toContain("DOCKER_CONFIG");
  });
});
