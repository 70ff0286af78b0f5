import { isValidRepositoryName, isValidTag, MAX_NAME_LENGTH, referrersTag } from "@minato/oci";
import { describe, expect, it } from "vitest";

describe("repository names (distribution-spec, Pulling manifests)", () => {
  it("accepts names matching the grammar", () => {
    for (const name of [
      "a",
      "0",
      "ubuntu",
      "library/ubuntu",
      "a/b/c/d/e",
      "my.org/app",
      "a.b",
      "a_b",
      "a__b",
      "a-b",
      "a---b",
      "a.b_c__d---e/f0",
      "0-0/9.9",
      "a".repeat(MAX_NAME_LENGTH),
      `${"a".repeat(127)}/${"b".repeat(127)}`,
    ]) {
      expect(isValidRepositoryName(name), name).toBe(true);
    }
  });

  it("refuses names outside the grammar", () => {
    for (const name of [
      "",
      "A",
      "Ubuntu",
      "library/Ubuntu",
      "..",
      ".",
      "a/..",
      "../a",
      "a/../b",
      "a/./b",
      "%2e%2e",
      "a%2fb",
      "-a",
      "_a",
      ".a",
      "/a",
      "a-",
      "a_",
      "a.",
      "a/",
      "a//b",
      "a..b",
      "a._b",
      "a___b",
      "a_-b",
      "a b",
      "a:b",
      "a@b",
      "a\\b",
      "a\nb",
      "ä",
    ]) {
      expect(isValidRepositoryName(name), JSON.stringify(name)).toBe(false);
    }
  });

  it("refuses names longer than 255 characters", () => {
    expect(MAX_NAME_LENGTH).toBe(255);
    expect(isValidRepositoryName("a".repeat(256))).toBe(false);
    expect(isValidRepositoryName(`${"a".repeat(128)}/${"b".repeat(127)}`)).toBe(false);
  });
});

describe("tags", () => {
  it("accepts tags matching [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", () => {
    for (const tag of [
      "latest",
      "v1.2.3",
      "_",
      "A",
      "9",
      "UPPER_lower-1.0",
      "a..b",
      "a--",
      "_.-",
      "x".repeat(128),
      `_${"-".repeat(127)}`,
    ]) {
      expect(isValidTag(tag), tag).toBe(true);
    }
  });

  it("refuses tags outside the grammar or over 128 characters", () => {
    for (const tag of ["", "-a", ".a", "a/b", "a:b", "a+b", "a b", "a@b", "ä", "x".repeat(129), "a\n", "sha256:abc"]) {
      expect(isValidTag(tag), JSON.stringify(tag)).toBe(false);
    }
  });
});

describe("referrersTag (distribution-spec, Referrers Tag Schema)", () => {
  it("maps the spec's example digests to its referrers tags", () => {
    const table: [string, string][] = [
      [
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha256-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      ],
      [
        "sha512:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha512-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      ],
      [
        "test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation",
        "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot",
      ],
    ];
    for (const [digest, tag] of table) {
      expect(referrersTag(digest)).toBe(tag);
      expect(isValidTag(tag)).toBe(true);
    }
  });

  it("truncates the algorithm to 32 and the encoded part to 64 characters", () => {
    const tag = referrersTag(`${"b".repeat(40)}:${"c".repeat(100)}`);
    expect(tag).toBe(`${"b".repeat(32)}-${"c".repeat(64)}`);
  });
});
