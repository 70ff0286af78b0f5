import { describe, expect, it } from "vitest";
import { digestOf } from "../src/digest.js";
import type { Descriptor } from "../src/manifest.js";
import { formatPlatform, parsePlatform, selectPlatform } from "../src/platform.js";
import { familiarName, formatImageReference, ImageReferenceError, parseImageReference } from "../src/reference.js";

describe("parseImageReference (docker reference grammar)", () => {
  it.each([
    ["busybox", { registry: "docker.io", repository: "library/busybox", tag: "latest" }],
    ["busybox:1.36", { registry: "docker.io", repository: "library/busybox", tag: "1.36" }],
    ["team/app", { registry: "docker.io", repository: "team/app", tag: "latest" }],
    ["index.docker.io/library/alpine:3", { registry: "docker.io", repository: "library/alpine", tag: "3" }],
    ["localhost/app", { registry: "localhost", repository: "app", tag: "latest" }],
    ["127.0.0.1:5000/team/app:v1", { registry: "127.0.0.1:5000", repository: "team/app", tag: "v1" }],
    ["registry.example.com/a/b/c", { registry: "registry.example.com", repository: "a/b/c", tag: "latest" }],
    ["[::1]:5000/app", { registry: "[::1]:5000", repository: "app", tag: "latest" }],
  ])("%s", (input, expected) => {
    expect(parseImageReference(input)).toEqual(expected);
  });

  it("parses digests, with or without a tag, and gives no default tag with a digest", () => {
    const digest = digestOf("x");
    expect(parseImageReference(`app@${digest}`)).toEqual({ registry: "docker.io", repository: "library/app", digest });
    expect(parseImageReference(`host:5000/app:1@${digest}`)).toEqual({ registry: "host:5000", repository: "app", tag: "1", digest });
    expect(parseImageReference("app", { defaultTag: false })).toEqual({ registry: "docker.io", repository: "library/app" });
  });

  it.each(["", "UPPER/case", "app:bad tag", "app@sha256:123", "a//b", "-app", `${"a".repeat(256)}`])("refuses %j", (input) => {
    expect(() => parseImageReference(input)).toThrow(ImageReferenceError);
  });

  it("formats full and familiar names as docker prints them", () => {
    expect(formatImageReference(parseImageReference("busybox"))).toBe("docker.io/library/busybox:latest");
    expect(familiarName(parseImageReference("busybox"))).toBe("busybox");
    expect(familiarName(parseImageReference("team/app"))).toBe("team/app");
    expect(familiarName(parseImageReference("127.0.0.1:5000/team/app"))).toBe("127.0.0.1:5000/team/app");
  });
});

describe("platforms", () => {
  const entry = (os: string, architecture: string, variant?: string): Descriptor => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: digestOf(`${os}/${architecture}/${variant}`),
    size: 1,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const index = [entry("linux", "amd64"), entry("linux", "arm", "v7"), entry("linux", "arm64", "v8"), entry("windows", "amd64")];

  it("parses and formats os/arch[/variant]", () => {
    expect(parsePlatform("linux/arm/v7")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(formatPlatform(parsePlatform("linux/amd64"))).toBe("linux/amd64");
    expect(() => parsePlatform("linux")).toThrow(/os\/arch/);
  });

  it("selects the matching manifest, treating arm64 and arm64/v8 alike", () => {
    expect(selectPlatform(index, parsePlatform("linux/amd64"))).toBe(index[0]);
    expect(selectPlatform(index, parsePlatform("linux/arm/v7"))).toBe(index[1]);
    expect(selectPlatform(index, parsePlatform("linux/arm64"))).toBe(index[2]);
    expect(selectPlatform(index, parsePlatform("linux/arm/v6"))).toBeUndefined();
    expect(selectPlatform(index, parsePlatform("linux/s390x"))).toBeUndefined();
  });
});
