import { describe, expect, it } from "vitest";
import { authConfigOf, encodeAuthConfig, registryOfServer, serverAddress } from "../src/auth.js";
import { DEFAULT_HOST, queryString, resolveHost, socketPathOf } from "../src/client.js";
import { checkArity } from "../src/command.js";
import { filtersParam, imagePath } from "../src/commands/common.js";
import { CliError, DaemonError, describeError } from "../src/errors.js";
import { ellipsis, shortId } from "../src/output/text.js";

describe("daemon address", () => {
  it("comes from --host, else MINATO_HOST, else the default socket", () => {
    expect(resolveHost("unix:///a.sock", { MINATO_HOST: "unix:///b.sock" })).toBe("unix:///a.sock");
    expect(resolveHost(undefined, { MINATO_HOST: "unix:///b.sock" })).toBe("unix:///b.sock");
    expect(resolveHost(undefined, {})).toBe(DEFAULT_HOST);
    expect(DEFAULT_HOST).toBe("unix:///run/minato/minato.sock");
  });

  it("is a unix socket path", () => {
    expect(socketPathOf("unix:///run/minato/minato.sock")).toBe("/run/minato/minato.sock");
    expect(() => socketPathOf("tcp://127.0.0.1:2375")).toThrow(/unsupported protocol scheme "tcp"/);
    expect(() => socketPathOf("/run/minato/minato.sock")).toThrow(/invalid daemon address/);
    expect(() => socketPathOf("unix://")).toThrow(CliError);
  });
});

describe("query strings and paths", () => {
  it("repeats array keys, leaves undefined out, sends booleans as 1/0", () => {
    expect(queryString({ names: ["a:1", "b"], all: true, quiet: false, tag: undefined })).toBe("?names=a%3A1&names=b&all=1&quiet=0");
    expect(queryString({})).toBe("");
  });

  it("keeps slashes, colons and @ of image names in paths", () => {
    expect(imagePath("127.0.0.1:5000/tools/busybox:1", "/json")).toBe("/images/127.0.0.1:5000/tools/busybox:1/json");
    expect(imagePath("busybox@sha256:abc")).toBe("/images/busybox@sha256:abc");
    expect(imagePath("odd?name#x")).toBe("/images/odd%3Fname%23x");
  });

  it("turns --filter flags into the filters JSON", () => {
    expect(filtersParam(["dangling=true", "reference=busybox", "reference=alpine:*"])).toBe(
      '{"dangling":["true"],"reference":["busybox","alpine:*"]}',
    );
    expect(filtersParam(undefined, { dangling: ["false"] })).toBe('{"dangling":["false"]}');
    expect(filtersParam([])).toBeUndefined();
    expect(() => filtersParam(["=x"])).toThrow("bad format of filter (expected name=value)");
  });
});

describe("registry auth", () => {
  it("names registries as docker's ConvertToHostname does", () => {
    expect(registryOfServer(undefined)).toBe("docker.io");
    expect(registryOfServer("https://index.docker.io/v1/")).toBe("docker.io");
    expect(registryOfServer("registry-1.docker.io")).toBe("docker.io");
    expect(registryOfServer("http://127.0.0.1:5000/v2/")).toBe("127.0.0.1:5000");
    expect(registryOfServer("registry.example.com")).toBe("registry.example.com");
    expect(serverAddress("docker.io")).toBe("https://index.docker.io/v1/");
  });

  it("encodes X-Registry-Auth as URL-safe base64 JSON with padding", () => {
    const config = authConfigOf("127.0.0.1:5000", { username: "u?>", password: "p~~" });
    expect(config).toEqual({ username: "u?>", password: "p~~", serveraddress: "127.0.0.1:5000" });
    const encoded = encodeAuthConfig(config);
    expect(encoded).not.toMatch(/[+/]/);
    expect(JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"))).toEqual(config);
    expect(encodeAuthConfig(authConfigOf("docker.io", undefined))).toBe("e30=");
    expect(authConfigOf("docker.io", { identityToken: "tok" })).toEqual({
      identitytoken: "tok",
      serveraddress: "https://index.docker.io/v1/",
    });
  });
});

describe("errors and text", () => {
  it("prints daemon errors as docker does, other errors as their message", () => {
    expect(describeError(new DaemonError(404, "No such image: x"))).toEqual({
      line: "Error response from daemon: No such image: x",
      exitCode: 1,
    });
    expect(describeError(Object.assign(new Error("x"), { code: "ENOENT", path: "/a.tar" }))).toEqual({
      line: "open /a.tar: no such file or directory",
      exitCode: 1,
    });
    expect(describeError(new Error("plain"))).toEqual({ line: "plain", exitCode: 1 });
  });

  it("checks argument counts with docker's wording", () => {
    expect(() => checkArity("minato tag", { args: { min: 2 } }, 2)).not.toThrow();
    expect(() => checkArity("minato rmi", { args: { min: 1, max: Number.POSITIVE_INFINITY } }, 5)).not.toThrow();
    expect(() => checkArity("minato load", {}, 1)).toThrow(`"minato load" accepts no arguments. See 'minato load --help'.`);
  });

  it("shortens IDs and long text", () => {
    expect(shortId("sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824")).toBe("a416a98b71e2");
    expect(shortId("a416a98b71e224a31ee9")).toBe("a416a98b71e2");
    expect(ellipsis("abcdef", 4)).toBe("abc…");
    expect(ellipsis("abc", 4)).toBe("abc");
  });
});
