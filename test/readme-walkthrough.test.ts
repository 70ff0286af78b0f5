// The README's commands, run as written (issue 23, must show): the quick start, the offline recipe
// for the OCI layout it pushes, and the engine walkthrough, each shell block taken from README.md
// and run with bash. What `npm start` would start is started here on the embedded defaults, with
// only the address, data directory and socket moved to this test's own (the commands are rewritten
// to those, nothing else). `npx` resolves to the built programs, as it does in the repository.
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineProcess } from "./support/engine-process.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";

interface Block {
  heading: string;
  code: string;
}

/** Every ```sh block of the README with the heading it is under. */
function shellBlocks(readme: string): Block[] {
  const blocks: Block[] = [];
  let heading = "";
  const lines = readme.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const title = /^#{1,6} (.+)$/.exec(line);
    if (title) heading = title[1] as string;
    if (line.trim() !== "```sh") continue;
    const code: string[] = [];
    while (++i < lines.length && (lines[i] as string).trim() !== "```") code.push(lines[i] as string);
    blocks.push({ heading, code: code.join("\n") });
  }
  return blocks;
}

// Needs root, as every engine test: the OCI layout is made offline with minatod, as the README shows.
describe("README walkthrough", () => {
  let work: string;
  let registry: RegistryProcess;
  let engine: EngineProcess;
  let blocks: Block[];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-readme-"));
    blocks = shellBlocks(await readFile(join(ROOT, "README.md"), "utf8"));
    [registry, engine] = await Promise.all([RegistryProcess.start(), EngineProcess.start()]);
    // `npx PROGRAM` as in the repository: the built bins, on PATH through shims.
    const bin = join(work, "bin");
    await mkdir(bin);
    const shims: Record<string, string> = {
      npx: 'exec "$@"',
      minato: `exec "${process.execPath}" "${join(ROOT, "apps/cli/bin/minato.js")}" "$@"`,
      "minato-registry": `exec "${process.execPath}" "${join(ROOT, "apps/registry/bin/minato-registry.js")}" "$@"`,
    };
    for (const [name, body] of Object.entries(shims)) {
      await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`);
      await chmod(join(bin, name), 0o755);
    }
  });

  afterAll(async () => {
    await Promise.allSettled([registry?.dispose(), engine?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  /** Runs a README block with bash, stopping at the first failing command. */
  function run(block: Block): Promise<{ code: number; output: string }> {
    const script = block.code
      .replaceAll("127.0.0.1:5000", registry.authority)
      .replaceAll("unix:///run/minato/minato.sock", `unix://${engine.socket}`)
      .replaceAll("scripts/", `${ROOT}/scripts/`);
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_"))),
      PATH: `${join(work, "bin")}:${process.env.PATH}`,
      DOCKER_CONFIG: join(work, "docker-config"),
    };
    return new Promise((resolve) => {
      execFile(
        "bash",
        ["-c", `set -euxo pipefail\n${script}`],
        { cwd: work, env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
      );
    });
  }

  const block = (heading: string, index = 0): Block => {
    const found = blocks.filter((b) => b.heading === heading)[index];
    if (!found) throw new Error(`README.md has no shell block ${index} under "${heading}"`);
    return found;
  };

  it("the quick start starts the stack with npm start (started here on the same defaults)", () => {
    expect(block("Quick start").code).toMatch(/^npm start\b/m);
  });

  it("makes the OCI layout offline, pushes it as the quick start shows, and walks through the engine", { timeout: 600_000 }, async () => {
    const layout = await run(block("An OCI layout to push", 1));
    expect(layout.code, layout.output).toBe(0);

    const quick = await run(block("Quick start", 1));
    expect(quick.code, quick.output).toBe(0);
    expect(quick.output).toContain('"repositories":["team/app"]');
    expect(quick.output).toContain('"tags":["1.0"]');

    const engineBlock = await run(block("The engine"));
    expect(engineBlock.code, engineBlock.output).toBe(0);
    const catalog = await fetch(`${registry.url}/v2/_catalog`).then((r) => r.json());
    expect(catalog).toEqual({ repositories: ["library/busybox", "team/app"] });
  });
});
