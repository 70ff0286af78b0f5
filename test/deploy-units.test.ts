// deploy/systemd (issue 23 #10): both units pass `systemd-analyze verify` without a warning, and the
// registry's data directory cannot be moved out of its writable StateDirectory by an environment file.
// What is verified here: unit syntax and directives (systemd-analyze, Debian's systemd package), and
// the settings the programs resolve from the unit's command line; the units are not started, as a
// test machine (a container) has no systemd running as PID 1.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig as engineConfig } from "../apps/engine/src/config.js";
import { loadConfig as registryConfig } from "../apps/registry/src/config.js";
import { ROOT } from "./support/registry-process.js";

const UNITS = ["minato-registry.service", "minatod.service"];
const hasAnalyze = await new Promise<boolean>((resolve) => execFile("systemd-analyze", ["--version"], (error) => resolve(!error)));

/** The unit's directives, `Key` → values in order. */
async function directives(unit: string): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>();
  for (const line of (await readFile(join(ROOT, "deploy/systemd", unit), "utf8")).split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) map.set(match[1] as string, [...(map.get(match[1] as string) ?? []), match[2] as string]);
  }
  return map;
}

/** .env.example as an environment, as if copied whole to the unit's EnvironmentFile. */
async function exampleEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(join(ROOT, ".env.example"), "utf8")).split("\n")) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

/** The flags ExecStart passes to the program (after node, the script and a command such as serve). */
function execArgs(unit: Map<string, string[]>): string[] {
  const args = (unit.get("ExecStart")?.[0] ?? "").split(/\s+/).slice(2);
  return args[0]?.startsWith("-") ? args : args.slice(1);
}

describe("deploy/systemd", () => {
  it.skipIf(!hasAnalyze)(
    "systemd-analyze verify accepts both units without a warning (skipped where the Debian package systemd is missing)",
    async () => {
      const result = await new Promise<{ code: number; output: string }>((resolve) =>
        execFile("systemd-analyze", ["verify", ...UNITS.map((u) => join(ROOT, "deploy/systemd", u))], (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
        ),
      );
      expect(result.code, result.output).toBe(0);
      expect(result.output.trim()).toBe("");
    },
  );

  it("the registry keeps its data in its StateDirectory even with .env.example as its environment file", async () => {
    const unit = await directives("minato-registry.service");
    const state = `/var/lib/${unit.get("StateDirectory")?.[0]}`;
    expect(unit.get("ReadWritePaths")).toEqual([state]);
    expect(unit.get("ProtectSystem")).toEqual(["strict"]);
    const config = registryConfig(execArgs(unit), await exampleEnv());
    expect(config.dataDir).toBe(state);
  });

  it("minatod runs as root, its roots on the command line, and containers survive a restart (KillMode=process)", async () => {
    const unit = await directives("minatod.service");
    expect(unit.has("User")).toBe(false);
    expect(unit.get("KillMode")).toEqual(["process"]);
    const config = engineConfig(execArgs(unit), await exampleEnv());
    expect(config.dataRoot).toBe(`/var/lib/${unit.get("StateDirectory")?.[0]}`);
    expect(config.socket).toBe("/run/minato/minato.sock");
  });
});
