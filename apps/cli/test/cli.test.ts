import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CredentialStore } from "@minato/registry-client";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram, normalizeArgv } from "../src/command.js";
import { COMMAND_GROUPS } from "../src/commands/index.js";
import { UsageError } from "../src/errors.js";
import { runCli } from "./support/io.js";

let dir: string;
let env: NodeJS.ProcessEnv;
let noDaemon: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "minato-cli-"));
  noDaemon = `unix://${join(dir, "absent.sock")}`;
  // No daemon at the default socket either: every call must fail before reaching one.
  env = { HOME: dir, DOCKER_CONFIG: join(dir, "docker"), MINATO_HOST: noDaemon };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("help", () => {
  it("lists the commands and exits 0", async () => {
    const { code, stdout, stderr } = await runCli(["--help"], { env });
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toMatch(/^Usage: minato \[OPTIONS\] COMMAND/);
    expect(stdout).toContain("Management Commands:");
    for (const command of [
      "image",
      "system",
      "login",
      "logout",
      "pull",
      "push",
      "tag",
      "images",
      "rmi",
      "history",
      "save",
      "load",
      "import",
      "version",
      "info",
    ]) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
  });

  it.each([
    [
      ["images"],
      "minato images [OPTIONS] [REPOSITORY[:TAG]]",
      ["-a, --all", "--digests", "-f, --filter", "--format", "--no-trunc", "-q, --quiet"],
    ],
    [["image", "ls"], "minato image ls|list [OPTIONS] [REPOSITORY[:TAG]]", ["--digests", "-q, --quiet"]],
    [["rmi"], "minato rmi [OPTIONS] IMAGE [IMAGE...]", ["-f, --force", "--no-prune"]],
    [["image", "rm"], "minato image rm|remove [OPTIONS] IMAGE [IMAGE...]", ["-f, --force", "--no-prune"]],
    [["pull"], "minato pull [OPTIONS] NAME[:TAG|@DIGEST]", ["--platform", "-q, --quiet"]],
    [["push"], "minato push [OPTIONS] NAME[:TAG]", ["-q, --quiet"]],
    [["tag"], "minato tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", []],
    [["image", "inspect"], "minato image inspect [OPTIONS] IMAGE [IMAGE...]", ["-f, --format"]],
    [["history"], "minato history [OPTIONS] IMAGE", ["-H, --human", "--no-trunc", "-q, --quiet", "--format"]],
    [["save"], "minato save [OPTIONS] IMAGE [IMAGE...]", ["-o, --output"]],
    [["load"], "minato load [OPTIONS]", ["-i, --input", "-q, --quiet"]],
    [["import"], "minato import [OPTIONS] file|- [REPOSITORY[:TAG]]", ["-c, --change", "-m, --message", "--platform"]],
    [["image", "prune"], "minato image prune [OPTIONS]", ["-a, --all", "-f, --force", "--filter"]],
    [["login"], "minato login [OPTIONS] [SERVER]", ["-u, --username", "-p, --password", "--password-stdin"]],
    [["logout"], "minato logout [SERVER]", []],
    [["version"], "minato version [OPTIONS]", ["-f, --format"]],
    [["info"], "minato info [OPTIONS]", ["-f, --format"]],
    [["system", "info"], "minato system info [OPTIONS]", ["-f, --format"]],
  ])("%j --help shows docker's usage and flags", async (command, usage, flags) => {
    const { code, stdout } = await runCli([...command, "--help"], { env });
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: ${usage}\n`);
    for (const flag of flags) expect(stdout).toContain(flag);
  });

  it("shows a group's commands for the bare group name", async () => {
    const { code, stdout } = await runCli(["image"], { env });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: minato image COMMAND/);
    expect(stdout).toMatch(/^ {2}prune +Remove unused images$/m);
  });

  it("prints the version with -v", async () => {
    const { code, stdout } = await runCli(["-v"], { env });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Minato version \d+\.\d+\.\d+\n$/);
  });
});

describe("usage errors exit 125 with one line", () => {
  it.each([
    [["images", "--bogus"], "unknown flag: --bogus. See 'minato images --help'."],
    [["images", "-z"], "unknown shorthand flag: 'z' in -z. See 'minato images --help'."],
    [["save", "-o"], "flag needs an argument: --output. See 'minato save --help'."],
    [["tag", "busybox"], `"minato tag" requires exactly 2 arguments. See 'minato tag --help'.`],
    [["image", "ls", "a", "b"], `"minato image ls" accepts at most 1 argument. See 'minato image ls --help'.`],
    [["rmi"], `"minato rmi" requires at least 1 argument. See 'minato rmi --help'.`],
    [["import"], `"minato import" requires at least 1 and at most 2 arguments. See 'minato import --help'.`],
    [["version", "extra"], `"minato version" accepts no arguments. See 'minato version --help'.`],
    [["history", "--human=maybe", "x"], `invalid argument "maybe" for "--human" flag: strconv.ParseBool: parsing "maybe": invalid syntax`],
    [["frobnicate"], "minato: 'frobnicate' is not a minato command. See 'minato --help'."],
    [["lgos"], "minato: 'lgos' is not a minato command. (Did you mean logs?) See 'minato --help'."],
    [["image", "frobnicate"], "minato image: 'frobnicate' is not a minato image command. See 'minato image --help'."],
  ])("%j", async (argv, line) => {
    const { code, stdout, stderr } = await runCli(argv, { env });
    expect(stderr).toBe(`${line}\n`);
    expect(stdout).toBe("");
    expect(code).toBe(125);
  });
});

describe("Go-style flags", () => {
  const program = buildProgram(
    new Command("minato").enablePositionalOptions().option("-H, --host <string>"),
    COMMAND_GROUPS,
    { writeOut: () => undefined, writeErr: () => undefined },
    () => undefined,
  );

  it("rewrites --flag=false, -f=false and -o=FILE for commander, reading each token against its command", () => {
    expect(normalizeArgv(program, ["-H", "unix:///x.sock", "history", "-H=false", "img"])).toEqual([
      "-H",
      "unix:///x.sock",
      "history",
      "--no-human",
      "img",
    ]);
    expect(normalizeArgv(program, ["history", "--human=true", "img"])).toEqual(["history", "--human", "img"]);
    expect(normalizeArgv(program, ["images", "--digests=true", "--no-trunc=false"])).toEqual(["images", "--digests"]);
    expect(normalizeArgv(program, ["save", "-o=out.tar", "busybox"])).toEqual(["save", "--output", "out.tar", "busybox"]);
    expect(normalizeArgv(program, ["image", "ls", "-aq", "--format", "{{.ID}}"])).toEqual(["image", "ls", "-aq", "--format", "{{.ID}}"]);
    // A value that looks like a command name is not a command.
    expect(normalizeArgv(program, ["-H", "images", "tag", "images", "x"])).toEqual(["-H", "images", "tag", "images", "x"]);
    expect(() => normalizeArgv(program, ["rmi", "--force=perhaps", "x"])).toThrow(UsageError);
  });

  it("parses --human=false into raw history output flags", async () => {
    // Reaches the daemon, so fails to connect; the flags parsed, which is what is checked.
    const { code, stderr } = await runCli(["history", "--human=false", "--no-trunc", "busybox"], { env });
    expect(stderr).toBe(`Cannot connect to the Minato daemon at ${noDaemon}. Is minatod running?\n`);
    expect(code).toBe(1);
  });
});

describe("daemon address", () => {
  it("says the daemon is not running, naming the address from MINATO_HOST", async () => {
    const { code, stdout, stderr } = await runCli(["images"], { env });
    expect(stdout).toBe("");
    expect(stderr).toBe(`Cannot connect to the Minato daemon at ${noDaemon}. Is minatod running?\n`);
    expect(code).toBe(1);
  });

  it("prefers --host over MINATO_HOST", async () => {
    const other = `unix://${join(dir, "other.sock")}`;
    const { code, stderr } = await runCli(["--host", other, "image", "inspect", "busybox"], { env });
    expect(stderr).toBe(`Cannot connect to the Minato daemon at ${other}. Is minatod running?\n`);
    expect(code).toBe(1);
  });

  it("defaults to unix:///run/minato/minato.sock", async () => {
    const { stderr } = await runCli(["info", "--format", "{{.ID}}"], { env: { HOME: dir } });
    expect(stderr).toMatch(
      /^(Cannot connect to the Minato daemon at unix:\/\/\/run\/minato\/minato\.sock\. Is minatod running\?|permission denied while trying to connect to the Minato daemon socket at unix:\/\/\/run\/minato\/minato\.sock)\n$|^$/,
    );
  });

  it("refuses addresses that are not unix sockets", async () => {
    const { code, stderr } = await runCli(["-H", "tcp://127.0.0.1:2375", "images"], { env });
    expect(stderr).toBe(
      'unsupported protocol scheme "tcp" in daemon address tcp://127.0.0.1:2375: minatod listens on a unix socket (unix:///path/to/minato.sock)\n',
    );
    expect(code).toBe(1);
  });

  it("prints the client half of version and info before the connection error", async () => {
    const version = await runCli(["version"], { env });
    expect(version.code).toBe(1);
    expect(version.stdout).toMatch(/^Client:\n Version: {11}\d+\.\d+\.\d+\n API version: {7}1\.\d+\n Node version: {6}v\d+/);
    expect(version.stdout).not.toContain("Server:");
    expect(version.stderr).toBe(`Cannot connect to the Minato daemon at ${noDaemon}. Is minatod running?\n`);
    const info = await runCli(["info"], { env });
    expect(info.code).toBe(1);
    expect(info.stdout).toMatch(/^Client:\n Version: {4}\d+\.\d+\.\d+\n Context: {4}default\n Debug Mode: false\n\nServer:\n$/);
    expect(info.stderr).toBe(`ERROR: Cannot connect to the Minato daemon at ${noDaemon}. Is minatod running?\n`);
  });
});

describe("client-side checks, before any daemon call", () => {
  it.each([
    [["save", "busybox"], { stdoutTTY: true }, "cowardly refusing to save to a terminal. Use the -o flag or redirect"],
    [
      ["save", "-o", "/nonexistent-dir/x.tar", "busybox"],
      {},
      'failed to save image: invalid output path: directory "/nonexistent-dir" does not exist',
    ],
    [["load"], { stdinTTY: true }, "requested load from stdin, but stdin is empty"],
    [["load", "-i", "/nonexistent.tar"], {}, "open /nonexistent.tar: no such file or directory"],
    [
      ["import", "https://example.com/rootfs.tar"],
      {},
      "importing from a URL is not supported (https://example.com/rootfs.tar): download it and pass the file, or - for standard input",
    ],
    [["import", "/nonexistent.tar", "x:1"], {}, "open /nonexistent.tar: no such file or directory"],
    [
      ["import", "-", "x@sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79"],
      {},
      "refusing to create a tag with a digest reference",
    ],
    [
      ["tag", "busybox", "busybox@sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79"],
      {},
      "refusing to create a tag with a digest reference",
    ],
    [["pull", "Busybox"], {}, 'invalid reference format: "Busybox" (repository names must be lowercase)'],
    [["images", "--filter", "dangling"], {}, "bad format of filter (expected name=value)"],
    [["login", "--password-stdin"], {}, "Must provide --username with --password-stdin"],
    [["login", "-u", "u", "-p", "p", "--password-stdin"], {}, "--password and --password-stdin are mutually exclusive"],
    [["login", "127.0.0.1:5000"], {}, "Cannot perform an interactive login from a non TTY device"],
  ])("%j fails with one line and status 1", async (argv, options, line) => {
    const { code, stderr } = await runCli(argv, { env, ...options });
    expect(stderr).toBe(`${line}\n`);
    expect(code).toBe(1);
  });
});

describe("templates", () => {
  it("reports a template that does not parse with status 64, as docker does", async () => {
    const { code, stdout, stderr } = await runCli(["version", "--format", "{{.Client.Version"], { env });
    expect(stdout).toBe("");
    expect(stderr).toBe("template parsing error: template: unclosed action\n");
    expect(code).toBe(64);
  });

  it("formats the client half of version without a daemon", async () => {
    const { code, stdout } = await runCli(["version", "--format", "{{.Client.Os}}/{{.Client.Arch}} {{.Client.Context}}"], { env });
    expect(stdout).toMatch(/^linux\/\w+ default\n$/);
    expect(code).toBe(1);
  });
});

describe("logout", () => {
  it("erases stored credentials from config.json, and says so when there were none", async () => {
    const config = join(dir, "logout");
    const store = new CredentialStore(join(config, "config.json"));
    await store.store("127.0.0.1:5000", { username: "alice", password: "secret" });
    await store.store("docker.io", { username: "bob", password: "hub" });

    const first = await runCli(["--config", config, "logout", "127.0.0.1:5000"], { env });
    expect(first).toEqual({ code: 0, stdout: "Removing login credentials for 127.0.0.1:5000\n", stderr: "" });
    const again = await runCli(["--config", config, "logout", "http://127.0.0.1:5000/v2/"], { env });
    expect(again).toEqual({ code: 0, stdout: "Not logged in to 127.0.0.1:5000\n", stderr: "" });
    const stored = JSON.parse(await readFile(join(config, "config.json"), "utf8"));
    expect(Object.keys(stored.auths)).toEqual(["https://index.docker.io/v1/"]);

    const hub = await runCli(["logout"], { env: { ...env, DOCKER_CONFIG: config } });
    expect(hub.stdout).toBe("Removing login credentials for https://index.docker.io/v1/\n");
    expect(await store.get("docker.io")).toBeUndefined();
  });
});
