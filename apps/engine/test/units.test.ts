import { digestOf } from "@minato/oci";
import { describe, expect, it } from "vitest";
import { checkVersion } from "../src/api/version.js";
import { applyChanges } from "../src/archive/import.js";
import { limiter, shortId } from "../src/progress.js";
import { chainIds } from "../src/snapshots.js";

describe("chain IDs", () => {
  it("follow image-spec config.md: chain(n) = sha256(chain(n-1) + ' ' + diff(n))", () => {
    const diffs = [digestOf("a"), digestOf("b"), digestOf("c")];
    const chains = chainIds(diffs);
    expect(chains[0]).toBe(diffs[0]);
    expect(chains[1]).toBe(digestOf(`${diffs[0]} ${diffs[1]}`));
    expect(chains[2]).toBe(digestOf(`${chains[1]} ${diffs[2]}`));
    expect(chainIds([])).toEqual([]);
  });
});

describe("limiter", () => {
  it("never runs more than its limit at once and runs everything", async () => {
    const slot = limiter(3);
    let active = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        slot(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setImmediate(r));
          active--;
          return i;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("frees the slot when a task fails", async () => {
    const slot = limiter(1);
    await expect(slot(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await slot(async () => "after")).toBe("after");
  });
});

describe("API versions", () => {
  it("accepts the range docker clients negotiate and refuses outside it", () => {
    expect(checkVersion("1.43")).toBeUndefined();
    expect(checkVersion("1.56")).toBeUndefined();
    expect(checkVersion("1.57")).toMatch(/too new/);
    expect(checkVersion("1.12")).toMatch(/too old/);
    expect(checkVersion("2.0")).toMatch(/too new/);
  });
});

describe("import --change", () => {
  it("applies the Dockerfile instructions docker import accepts", () => {
    const config: Record<string, unknown> = {};
    applyChanges(config, [
      'CMD ["/bin/sh", "-c", "echo hi"]',
      "ENTRYPOINT /init --flag",
      'ENV A=1 B="two words"',
      "WORKDIR /srv",
      "USER nobody",
      "EXPOSE 80 53/udp",
      "LABEL org.example=yes",
    ]);
    expect(config).toEqual({
      Cmd: ["/bin/sh", "-c", "echo hi"],
      Entrypoint: ["/bin/sh", "-c", "/init --flag"],
      Env: ["A=1", "B=two words"],
      WorkingDir: "/srv",
      User: "nobody",
      ExposedPorts: { "80/tcp": {}, "53/udp": {} },
      Labels: { "org.example": "yes" },
    });
  });

  it("refuses what it does not understand", () => {
    expect(() => applyChanges({}, ["RUN rm -rf /"])).toThrow(/not supported/);
    expect(() => applyChanges({}, ["ENV novalue"])).toThrow(/key=value/);
  });

  it("shortens digests as docker shows them", () => {
    expect(shortId(`sha256:${"ab".repeat(32)}`)).toBe("abababababab");
  });
});
