import { createHash } from "node:crypto";
import { DigestError, Digester, digestOf, isDigest, isSupportedAlgorithm, parseDigest } from "@minato/oci";
import { describe, expect, it } from "vitest";

const SHA256_EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SHA512_EMPTY =
  "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

function parseError(value: string): DigestError {
  try {
    parseDigest(value);
  } catch (error) {
    expect(error).toBeInstanceOf(DigestError);
    return error as DigestError;
  }
  throw new Error(`${value} parsed`);
}

describe("parseDigest", () => {
  it("parses a sha256 digest into algorithm and encoded parts", () => {
    expect(parseDigest(SHA256_EMPTY)).toEqual({ algorithm: "sha256", encoded: SHA256_EMPTY.slice(7), digest: SHA256_EMPTY });
  });

  it("parses a sha512 digest", () => {
    expect(parseDigest(SHA512_EMPTY)).toEqual({ algorithm: "sha512", encoded: SHA512_EMPTY.slice(7), digest: SHA512_EMPTY });
  });

  it("refuses encoded parts of the wrong length for the algorithm", () => {
    for (const value of [
      `sha256:${"a".repeat(63)}`,
      `sha256:${"a".repeat(65)}`,
      `sha256:${"a".repeat(128)}`,
      `sha512:${"a".repeat(64)}`,
      `sha512:${"a".repeat(127)}`,
      "sha256:a",
    ]) {
      expect(parseError(value).unsupported, value).toBe(false);
    }
  });

  it("refuses upper-case hex, which sha256 and sha512 never use", () => {
    expect(parseError(`sha256:${"A".repeat(64)}`).unsupported).toBe(false);
    expect(parseError(SHA256_EMPTY.replace("e3b0", "E3B0")).unsupported).toBe(false);
    expect(parseError(`sha512:${"F".repeat(128)}`).unsupported).toBe(false);
  });

  it("refuses non-hex characters the grammar would allow", () => {
    for (const value of [`sha256:${"g".repeat(64)}`, `sha256:${"=".repeat(64)}`, `sha256:${"_".repeat(64)}`, `sha256:${"-".repeat(64)}`]) {
      expect(parseError(value).unsupported, value).toBe(false);
    }
  });

  it("marks grammatical digests with unknown algorithms as unsupported", () => {
    for (const value of [
      `sha384:${"a".repeat(96)}`,
      `blake3:${"a".repeat(64)}`,
      `sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564`,
      "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
      "md5:d41d8cd98f00b204e9800998ecf8427e",
      "test+algorithm:alsoSome=InTheEncoded",
    ]) {
      const error = parseError(value);
      expect(error.unsupported, value).toBe(true);
    }
  });

  it("refuses strings that are not digests at all (not unsupported)", () => {
    for (const value of [
      "",
      "sha256",
      "sha256:",
      `:${"a".repeat(64)}`,
      `SHA256:${"a".repeat(64)}`,
      `sha256::${"a".repeat(64)}`,
      `sha256:${"a".repeat(63)} `,
      ` sha256:${"a".repeat(64)}`,
      `sha256:${"a".repeat(32)}/${"a".repeat(31)}`,
      `sha-:${"a".repeat(64)}`,
      `+sha256:${"a".repeat(64)}`,
      `sha256:${"a".repeat(64)}\n`,
      "latest",
    ]) {
      expect(parseError(value).unsupported, JSON.stringify(value)).toBe(false);
    }
  });

  it("keeps error messages bounded for huge input", () => {
    expect(parseError("x".repeat(100_000)).message.length).toBeLessThan(300);
  });
});

describe("isDigest / isSupportedAlgorithm", () => {
  it("agree with parseDigest", () => {
    expect(isDigest(SHA256_EMPTY)).toBe(true);
    expect(isDigest(SHA512_EMPTY)).toBe(true);
    expect(isDigest(`sha384:${"a".repeat(96)}`)).toBe(false);
    expect(isDigest("sha256:abc")).toBe(false);
    expect(isSupportedAlgorithm("sha256")).toBe(true);
    expect(isSupportedAlgorithm("sha512")).toBe(true);
    expect(isSupportedAlgorithm("sha384")).toBe(false);
    expect(isSupportedAlgorithm("SHA256")).toBe(false);
  });
});

describe("digestOf and Digester", () => {
  it("computes the well-known digests of empty content and of {}", () => {
    expect(digestOf("")).toBe(SHA256_EMPTY);
    expect(digestOf(new Uint8Array(0), "sha512")).toBe(SHA512_EMPTY);
    // image-spec manifest.md, "Guidance for an Empty Descriptor".
    expect(digestOf("{}")).toBe("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  });

  it("produces digests parseDigest accepts", () => {
    expect(parseDigest(digestOf("hello")).algorithm).toBe("sha256");
    expect(parseDigest(digestOf("hello", "sha512")).algorithm).toBe("sha512");
  });

  it("hashes incrementally to the same digest as hashing at once, counting bytes", () => {
    const data = Buffer.from("The quick brown fox jumps over the lazy dog".repeat(1000));
    for (const algorithm of ["sha256", "sha512"] as const) {
      const digester = new Digester(algorithm);
      for (let offset = 0; offset < data.byteLength; offset += 777) digester.update(data.subarray(offset, offset + 777));
      expect(digester.size).toBe(data.byteLength);
      expect(digester.digest()).toBe(`${algorithm}:${createHash(algorithm).update(data).digest("hex")}`);
    }
  });

  it("defaults to sha256", () => {
    const digester = new Digester();
    digester.update(new Uint8Array(0));
    expect(digester.algorithm).toBe("sha256");
    expect(digester.digest()).toBe(SHA256_EMPTY);
  });
});
