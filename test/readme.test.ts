// README.md says only what holds in a clone (issue 23 #5, #6, #9): its links resolve inside the
// repository or are public URLs, its benchmark tables are the ones in the committed reports they
// link, and its lists of commands and engine settings are the programs' own.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { SETTINGS as ENGINE_SETTINGS } from "../apps/engine/src/config.js";
import { ROOT } from "./support/registry-process.js";

let readme: string;
beforeAll(async () => {
  readme = await readFile(join(ROOT, "README.md"), "utf8");
});

function minato(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, "apps/cli/bin/minato.js"), ...args], (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
}

/** The command names a `--help` lists (two-space indented rows of its command sections). */
function commandsOf(help: string): string[] {
  return [...help.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1] as string);
}

describe("README.md", () => {
  it("links only to files of the repository or to public URLs", () => {
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
    expect(targets.length).toBeGreaterThan(5);
    for (const target of targets) {
      if (/^https:\/\//.test(target) || target.startsWith("#")) continue;
      expect(target, "a link out of the repository").not.toMatch(/^\.\.\//);
      expect(existsSync(join(ROOT, target.replace(/#.*$/, ""))), `${target} exists`).toBe(true);
    }
  });

  it("each benchmark table is the one in the committed report it links", async () => {
    const links = [...readme.matchAll(/\[(bench\/reports\/[^\]]+\.md)\]\(\1\)/g)];
    expect(links.length).toBeGreaterThanOrEqual(5);
    for (const link of links) {
      const report = await readFile(join(ROOT, link[1] as string), "utf8");
      expect(report).toMatch(/^- date: /m);
      expect(report).toMatch(/^- machine: /m);
      // The first table after the link in the README, row by row.
      const after = readme.slice((link.index ?? 0) + link[0].length);
      const table = after.slice(after.indexOf("\n|") + 1).split("\n");
      const rows = table.slice(
        0,
        table.findIndex((line) => !line.startsWith("|")),
      );
      expect(rows.length).toBeGreaterThan(2);
      for (const row of rows) expect(report, `${link[1]}: ${row}`).toContain(row);
    }
  });

  it("names every command minato --help lists", async () => {
    const commands = commandsOf(await minato(["--help"]));
    expect(commands).toContain("run");
    const section = readme.slice(readme.indexOf("`minato` covers"), readme.indexOf("explain each."));
    for (const command of commands) expect(section, `minato ${command}`).toContain(`\`${command}`);
  });

  it("the engine settings table names every minatod setting", () => {
    const table = readme.slice(readme.indexOf("Engine settings:"), readme.indexOf("The `minato` CLI reads"));
    for (const setting of ENGINE_SETTINGS) {
      expect(table).toContain(`\`--${setting.flag}\``);
      expect(table).toContain(`\`${setting.env}\``);
      if (setting.default) expect(table).toContain(`\`${setting.default}\``);
    }
  });
});
