import { describe, expect, it } from "vitest";
import { findDuplicateKey, ManifestError, parseManifest } from "../src/index.js";

describe("findDuplicateKey", () => {
  it("finds a name repeated in one object at any depth, escapes decoded", () => {
    expect(findDuplicateKey('{"a":1,"a":2}')).toBe("a");
    expect(findDuplicateKey('{"x":{"y":[{"k":1,"k":1}]}}')).toBe("k");
    expect(findDuplicateKey('{"a":1,"\\u0061":2}')).toBe("a");
    expect(findDuplicateKey('[{"a":1},{"a":1,"b":{"c":"}","c":0}}]')).toBe("c");
  });

  it("accepts the same name in different objects, and names that appear only as values", () => {
    expect(findDuplicateKey('{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":"a","d":["a","a"]}')).toBeUndefined();
    expect(findDuplicateKey('{"q\\"uote":1,"q\\\\":2,"s":"\\"a\\":"}')).toBeUndefined();
    expect(findDuplicateKey("[1, 2.5e3, true, null]")).toBeUndefined();
  });

  it("makes parseManifest refuse a manifest with a duplicate key", () => {
    const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${"a".repeat(64)}`, size: 1 };
    const text = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":${JSON.stringify(layer)},"layers":[${JSON.stringify(layer)}],"layers":[]}`;
    expect(() => parseManifest(Buffer.from(text))).toThrow(ManifestError);
    expect(() => parseManifest(Buffer.from(text))).toThrow(/"layers" twice/);
  });
});
