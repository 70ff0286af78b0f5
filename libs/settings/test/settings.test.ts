import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { addSettings, ConfigError, parseBoolean, quietErrors, type Setting, settingReader } from "../src/index.js";

const SETTINGS: Setting[] = [
  { flag: "listen", env: "T_LISTEN", default: "127.0.0.1:1", help: "address" },
  { flag: "deletes", env: "T_DELETES", default: "true", kind: "boolean", help: "deletes" },
  { flag: "insecure-registry", env: "T_INSECURE", default: "", kind: "list", help: "plain HTTP" },
  { flag: "host", short: "-H", env: "T_HOST", default: "", help: "socket" },
];

function read(argv: string[], env: NodeJS.ProcessEnv = {}): (flag: string) => string {
  const command = addSettings(quietErrors(new Command("t")), SETTINGS);
  command.parse(argv, { from: "user" });
  return settingReader(SETTINGS, command.opts(), env);
}

describe("settings tables", () => {
  it("flags win over the environment, which wins over defaults; an empty variable is unset", () => {
    expect(read([])("listen")).toBe("127.0.0.1:1");
    expect(read([], { T_LISTEN: "" })("listen")).toBe("127.0.0.1:1");
    expect(read([], { T_LISTEN: "127.0.0.1:2" })("listen")).toBe("127.0.0.1:2");
    expect(read(["--listen", "127.0.0.1:3"], { T_LISTEN: "127.0.0.1:2" })("listen")).toBe("127.0.0.1:3");
    expect(read(["-H", "unix:///x"])("host")).toBe("unix:///x");
  });

  it("a switch is true alone, false with --no- or =false, and keeps a value given with it", () => {
    expect(read(["--deletes"], { T_DELETES: "false" })("deletes")).toBe("true");
    expect(read(["--no-deletes"])("deletes")).toBe("false");
    expect(read(["--deletes=false"])("deletes")).toBe("false");
    expect(read(["--deletes", "--listen", "127.0.0.1:4"])("listen")).toBe("127.0.0.1:4");
    expect(() => parseBoolean("deletes", read(["--deletes=maybe"])("deletes"))).toThrow(ConfigError);
  });

  it("a list flag repeats; its variable is comma-separated", () => {
    expect(read(["--insecure-registry", "a:1", "--insecure-registry", "b"])("insecure-registry")).toBe("a:1,b");
    expect(read([], { T_INSECURE: "c,d" })("insecure-registry")).toBe("c,d");
  });

  it("help names each variable and default", () => {
    const help = addSettings(new Command("t"), SETTINGS).helpInformation();
    expect(help).toContain("[T_LISTEN; default 127.0.0.1:1]");
    expect(help).toContain("--deletes [bool]");
    expect(help).not.toContain("--no-deletes");
  });
});
