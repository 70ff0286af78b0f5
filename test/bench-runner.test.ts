// `npm run bench:engine -- --quick` gives --quick to every script of the chain (issue 23 #4). The
// scripts run with --help as well, so each parses its flags (strictly) and stops before any benchmark.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./support/registry-process.js";

function node(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("bench/run.mjs", () => {
  it("npm run bench:engine passes its arguments to every script of the chain", async () => {
    const scripts = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
    const chain = /node bench\/run\.mjs ([a-z ]+)$/.exec(scripts["bench:engine"] as string)?.[1]?.split(" ") ?? [];
    expect(chain).toEqual(["engine", "containers", "networks"]);
    const ran = await node(["bench/run.mjs", ...chain, "--quick", "--help"]);
    expect(ran.code, ran.stderr).toBe(0);
    for (const script of chain) {
      expect(ran.stderr).toContain(`bench: ${script}.mjs --quick --help`);
      expect(ran.stdout).toMatch(new RegExp(`usage: node bench/${script}\\.mjs \\[--quick\\]`));
    }
  });

  it("gives a flag only to the scripts that take it and refuses one none takes", async () => {
    const ran = await node(["bench/run.mjs", "engine", "networks", "--cpu-prof", "--duration", "2", "--help"]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stderr).toContain("bench: engine.mjs --cpu-prof --help (--duration: not a flag of engine.mjs)");
    expect(ran.stderr).toContain("bench: networks.mjs --duration 2 --help (--cpu-prof: not a flag of networks.mjs)");
    const refused = await node(["bench/run.mjs", "engine", "--minato-only"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe("bench/run.mjs: no script of engine takes --minato-only");
  });

  it("knows every flag each script's usage lists", async () => {
    for (const script of ["registry", "engine", "containers", "networks", "build"]) {
      const usage = (await node([`bench/${script}.mjs`, "--help"])).stdout;
      const flags = [...usage.matchAll(/\[--([a-z-]+)( [A-Z]+)?\]/g)];
      expect(flags.length).toBeGreaterThan(0);
      for (const [, name, value] of flags) {
        const ran = await node(["bench/run.mjs", script, `--${name}`, ...(value ? ["1"] : []), "--help"]);
        expect(ran.code, `${script} --${name}: ${ran.stderr}`).toBe(0);
      }
    }
  });
});
