import { describe, expect, it } from "vitest";
import { parseChallenges } from "../src/challenge.js";

describe("parseChallenges", () => {
  it("parses a Bearer challenge whose scope holds commas and colons", () => {
    const [challenge] = parseChallenges(
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:samalba/my-app:pull,push"',
    );
    expect(challenge).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example.com/token", service: "registry.example.com", scope: "repository:samalba/my-app:pull,push" },
    });
  });

  it("parses several challenges, token values and escapes", () => {
    const challenges = parseChallenges('Basic realm="a \\"quoted\\" realm", Bearer realm=https://x/token , error=insufficient_scope');
    expect(challenges).toEqual([
      { scheme: "basic", params: { realm: 'a "quoted" realm' } },
      { scheme: "bearer", params: { realm: "https://x/token", error: "insufficient_scope" } },
    ]);
  });

  it("keeps a scope with a registry host and port intact", () => {
    const [challenge] = parseChallenges('Bearer realm="http://127.0.0.1:5000/token",scope="repository:host:5000/x:pull"');
    expect(challenge?.params.scope).toBe("repository:host:5000/x:pull");
  });

  it("returns nothing for an empty header", () => {
    expect(parseChallenges("")).toEqual([]);
  });
});
