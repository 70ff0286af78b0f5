import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminCommand, adminHelp } from "../src/auth/admin-cli.js";
import { keysDir } from "../src/auth/index.js";
import { ADMIN, claimsOf, requestToken, startAuthRegistry, statusWith, tokenFor } from "./auth-helpers.js";
import type { TestRegistry } from "./harness.js";

/** The admin commands, run in-process on a live registry's data directory (as an operator would beside it). */
describe("admin commands", () => {
  let registry: TestRegistry;
  const admin = async (...args: string[]): Promise<string> => {
    const lines: string[] = [];
    const [command, ...rest] = args as [string, ...string[]];
    await adminCommand(command, ["--data", registry.dataDir, ...rest], (line) => lines.push(line));
    return lines.join("\n");
  };
  const passwordOf = (output: string) => /^password for \S+: (\S+)$/m.exec(output)?.[1] as string;

  beforeAll(async () => {
    registry = await startAuthRegistry();
  });
  afterAll(() => registry.destroy());

  it("user add generates a password once; user ls shows roles; user passwd replaces it; user rm removes", async () => {
    const added = await admin("user", "add", "erin");
    const password = passwordOf(added);
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(await admin("user", "ls")).toMatch(/^erin\s+user\s+-\s/m);
    expect((await requestToken(registry, { user: "erin", password }, [])).status).toBe(200);

    const changed = passwordOf(await admin("user", "passwd", "erin"));
    expect(changed).not.toBe(password);
    expect((await requestToken(registry, { user: "erin", password }, [])).status).toBe(401);
    expect((await requestToken(registry, { user: "erin", password: changed }, [])).status).toBe(200);

    await admin("user", "admin", "erin", "true");
    expect(await admin("user", "ls")).toMatch(/^erin\s+admin\s/m);
    expect(claimsOf(await tokenFor(registry, { user: "erin", password: changed }, "repository:any/repo:*")).access[0]?.actions).toEqual([
      "pull",
      "push",
      "delete",
    ]);
    await admin("user", "rm", "erin");
    expect(await admin("user", "ls")).not.toMatch(/^erin/m);
    expect((await requestToken(registry, { user: "erin", password: changed }, [])).status).toBe(401);
    await expect(admin("user", "add", "Bad Name")).rejects.toThrow(/invalid user name/);
    await expect(admin("user", "add", ADMIN.user)).rejects.toThrow(/exists/);
  });

  it("grant and revoke change what the next token holds; grants lists them", async () => {
    const password = passwordOf(await admin("user", "add", "frank"));
    const frank = { user: "frank", password };
    const actions = async () => claimsOf(await tokenFor(registry, frank, "repository:team-f/app:pull,push,delete")).access[0]?.actions;
    expect(await actions()).toEqual([]);
    expect(await admin("grant", "--user", "frank", "team-f/*", "pull")).toBe("user frank may pull on team-f/*");
    expect(await admin("grant", "--user", "frank", "team-f/*", "push,delete")).toBe("user frank may pull,push,delete on team-f/*");
    expect(await actions()).toEqual(["pull", "push", "delete"]);
    expect(await admin("grants", "--user", "frank")).toMatch(/user:frank\s+team-f\/\*\s+pull,push,delete/);
    expect(await admin("revoke", "--user", "frank", "team-f/*", "delete")).toBe("user frank may now pull,push on team-f/*");
    expect(await actions()).toEqual(["pull", "push"]);
    await admin("revoke", "--user", "frank", "team-f/*");
    expect(await actions()).toEqual([]);
    await expect(admin("grant", "--user", "frank", "team-f/*", "read")).rejects.toThrow(/unknown action/);
    await expect(admin("grant", "team-f/*", "pull")).rejects.toThrow(/--user NAME or --group NAME/);
  });

  it("groups: add, join, leave, rm", async () => {
    const password = passwordOf(await admin("user", "add", "gina"));
    await admin("group", "add", "ops");
    await admin("group", "join", "ops", "gina");
    await admin("grant", "--group", "ops", "ops/*", "pull");
    expect(await admin("group", "ls")).toMatch(/^ops\s+gina$/m);
    expect(claimsOf(await tokenFor(registry, { user: "gina", password }, "repository:ops/x:pull")).access[0]?.actions).toEqual(["pull"]);
    await admin("group", "leave", "ops", "gina");
    expect(claimsOf(await tokenFor(registry, { user: "gina", password }, "repository:ops/x:pull")).access[0]?.actions).toEqual([]);
    await admin("group", "rm", "ops");
    expect(await admin("grants", "--user", "gina")).not.toMatch(/ops/);
  });

  it("public add/rm opens and closes anonymous pull", async () => {
    await admin("public", "add", "open/*");
    expect(await admin("public", "ls")).toBe("open/*");
    expect(claimsOf(await tokenFor(registry, undefined, "repository:open/x:pull")).access[0]?.actions).toEqual(["pull"]);
    await admin("public", "rm", "open/*");
    expect(claimsOf(await tokenFor(registry, undefined, "repository:open/x:pull")).access[0]?.actions).toEqual([]);
  });

  it("token create prints the token once; token ls never shows it; revoke and expiry end it", async () => {
    await admin("user", "add", "robot", "--robot");
    await admin("grant", "--user", "robot", "ci/*", "pull,push");
    const created = await admin("token", "create", "--user", "robot", "--name", "deploy", "--scope", "ci/*:pull", "--expires", "30d");
    const token = /^(mnp_\S+)$/m.exec(created)?.[1] as string;
    const id = /^token ([0-9a-f]{16}) /m.exec(created)?.[1] as string;
    expect(created).toMatch(/ci\/\*:pull, until \d{4}-/);
    // A robot has no password: only its tokens log in.
    expect((await requestToken(registry, { user: "robot", password: "" }, [])).status).toBe(401);
    expect(
      claimsOf(await tokenFor(registry, { user: "robot", password: token }, "repository:ci/app:pull,push")).access[0]?.actions,
    ).toEqual(["pull"]);
    const listed = await admin("token", "ls", "--user", "robot");
    expect(listed).toMatch(new RegExp(`^${id}\\s+access\\s+robot\\s+deploy\\s+ci/\\*:pull\\s.*live$`, "m"));
    expect(listed).not.toContain(token.slice(21));
    expect(await admin("token", "revoke", id)).toBe(`revoked access token ${id}`);
    expect(await admin("token", "ls")).toMatch(new RegExp(`^${id}\\s.*revoked$`, "m"));
    expect((await requestToken(registry, { user: "robot", password: token }, [])).status).toBe(401);
    await expect(admin("token", "revoke", id)).rejects.toThrow(/no live token/);
    await expect(admin("token", "create", "--user", "robot", "--name", "x")).rejects.toThrow(/--scope/);
  });

  it("key rotate, ls and rm manage the signing keys (mode 0600)", async () => {
    const before = await admin("key", "ls");
    expect(before.split("\n")).toHaveLength(2);
    expect(before).toMatch(/ES256 .* signing$/m);
    const rotated = /new signing key (\S+);/.exec(await admin("key", "rotate"))?.[1] as string;
    const after = await admin("key", "ls");
    expect(after).toMatch(new RegExp(`^${rotated}\\s+ES256\\s.*signing$`, "m"));
    expect(after).toMatch(/trusted$/m);
    for (const file of await readdir(keysDir(registry.dataDir))) {
      expect((await stat(join(keysDir(registry.dataDir), file))).mode & 0o777).toBe(0o600);
    }
    const old = /^(\S+)\s+ES256\s.*trusted$/m.exec(after)?.[1] as string;
    // A thumbprint is base64url and may start with "-": `--` ends the flags, as for any CLI.
    await admin("key", "rm", "--", old);
    expect((await admin("key", "ls")).split("\n")).toHaveLength(2);
    await expect(admin("key", "rm", "--", rotated)).rejects.toThrow(/only signing key/);
    // The running registry keeps the keys it loaded until it restarts.
    expect(await statusWith(registry, "GET", "/v2/", await tokenFor(registry, ADMIN))).toBe(200);
  });

  it("explains each command with --help", () => {
    expect(adminHelp("token")).toMatch(/Usage: minato-registry token create \[options\]/);
    expect(adminHelp("token")).toMatch(/--scope <pattern:actions>/);
    expect(adminHelp("token")).toMatch(/--data <dir>/);
    expect(adminHelp("token")).not.toContain("grant (--user");
    expect(adminHelp("grant")).toContain("matching PATTERN");
  });
});
