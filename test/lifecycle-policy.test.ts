// Lifecycle policies seen by a real client: the registry binary runs with a --policy file (immutable
// tags, a quota, retention rules) and skopeo pushes, deletes and pulls; the operator runs `gc` and
// `quota` beside it.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRequest, request } from "./support/http.js";
import { type Image, image, randomLayer, writeLayout } from "./support/oci-layout.js";
import { REGISTRY_BIN, RegistryProcess } from "./support/registry-process.js";
import { Skopeo } from "./support/skopeo.js";

const KiB = 1024;
/** Each test image has one ~72 KiB layer of random (incompressible) content. */
const QUOTA = 120 * KiB;

const POLICY = {
  immutableTags: [{ repositories: "prod/*", tags: ["v*"] }],
  quotas: [{ repositories: "team/*", bytes: QUOTA }],
  retention: [
    { repositories: "ci/*", keepLast: 2, keepTags: ["stable"], deleteUntaggedAfter: "0s" },
    { repositories: "pulled/*", keepPulledWithin: "1h" },
  ],
};

function admin(registry: RegistryProcess, policy: string, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [REGISTRY_BIN, ...args, "--data", registry.dataDir, "--policy", policy], (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? ((error.code as number) ?? 1) : 0 }),
    );
  });
}

describe("lifecycle policies with skopeo", () => {
  let registry: RegistryProcess;
  let skopeo: Skopeo;
  let work: string;
  let policy: string;
  const images = new Map<string, Image>();

  /** A distinct image in the layout under `ref`. */
  async function layoutImage(ref: string): Promise<Image> {
    const made = image({ architecture: "amd64", os: "linux" }, [randomLayer(ref)], ref);
    images.set(ref, made);
    const refs = Object.fromEntries([...images].map(([name, img]) => [name, img.manifest.descriptor]));
    await writeLayout(
      join(work, "layout"),
      [...images.values()].flatMap((img) => [...img.blobs, img.manifest]),
      refs,
    );
    return made;
  }
  const push = (ref: string, target: string) =>
    skopeo.run([
      "copy",
      "--preserve-digests",
      "--dest-tls-verify=false",
      `oci:${join(work, "layout")}:${ref}`,
      `docker://${registry.authority}/${target}`,
    ]);
  const tagsOf = async (repository: string) =>
    (JSON.parse((await request("GET", `${registry.url}/v2/${repository}/tags/list`)).body.toString()) as { tags: string[] }).tags.sort();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-policy-"));
    policy = join(work, "policy.json");
    await writeFile(policy, JSON.stringify(POLICY));
    registry = await RegistryProcess.start({ args: ["--policy", policy, "--gc", "false"] });
    skopeo = await Skopeo.create();
  });
  afterAll(async () => {
    await registry?.dispose();
    await skopeo?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("an immutable tag can be pushed once: moving or deleting it is DENIED naming the rule", async () => {
    const first = await layoutImage("immutable-1");
    await layoutImage("immutable-2");
    await push("immutable-1", "prod/app:v1");
    // The same content again is not a move.
    await push("immutable-1", "prod/app:v1");
    await expect(push("immutable-2", "prod/app:v1")).rejects.toThrow(
      /tag \\?"v1\\?" is immutable \(rule immutableTags\[0\] prod\/\* v\*\)/,
    );
    // Tags the rule does not name move freely.
    await push("immutable-1", "prod/app:latest");
    await push("immutable-2", "prod/app:latest");

    await expect(skopeo.run(["delete", "--tls-verify=false", `docker://${registry.authority}/prod/app:v1`])).rejects.toThrow(
      /denied.*immutable \(rule immutableTags\[0\] prod\/\* v\*\)/is,
    );
    const tag = await request("DELETE", `${registry.url}/v2/prod/app/manifests/v1`);
    expect(tag.status).toBe(403);
    expect(JSON.parse(tag.body.toString()).errors[0]).toMatchObject({
      code: "DENIED",
      detail: { tag: "v1", rule: "immutableTags[0] prod/* v*" },
    });
    const pulled = await request("GET", `${registry.url}/v2/prod/app/manifests/v1`, {
      headers: { Accept: first.manifest.descriptor.mediaType },
    });
    expect(pulled.headers["docker-content-digest"]).toBe(first.manifest.descriptor.digest);
  });

  it("a quota counts each blob once per scope and refuses the push that would exceed it", async () => {
    const one = await layoutImage("quota-1");
    await layoutImage("quota-2");
    await push("quota-1", "team/a:1");
    // The same image in another repository of the scope costs nothing more.
    await push("quota-1", "team/b:1");
    await expect(push("quota-2", "team/b:2")).rejects.toThrow(/quota exceeded: rule quotas\[0\] team\/\* allows 122880 bytes/);

    const used = one.blobs.reduce((sum, b) => sum + b.bytes.byteLength, 0);
    const usage = await admin(registry, policy, "quota");
    expect(usage.code).toBe(0);
    expect(usage.stdout).toMatch(new RegExp(`^quotas\\[0\\] team/\\*\\tteam/\\*\\t2\\t${used}\\t${QUOTA}\\t`, "m"));

    // A single-request upload announcing its length is refused before its bytes are sent.
    const digest = `sha256:${"0".repeat(64)}`;
    const { req, response } = openRequest("POST", `${registry.url}/v2/team/c/blobs/uploads/?digest=${digest}`, {
      "Content-Length": String(10 * 1024 * 1024),
      "Content-Type": "application/octet-stream",
    });
    req.flushHeaders();
    const refused = await response;
    req.destroy();
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body.toString()).errors[0].code).toBe("DENIED");
  });

  it("retention keeps the newest tags and the kept patterns; a dry run lists the rest and changes nothing", async () => {
    await layoutImage("ci-1");
    await push("ci-1", "ci/app:stable");
    for (const n of [1, 2, 3, 4]) {
      if (n > 1) await layoutImage(`ci-${n}`);
      await push(`ci-${n}`, `ci/app:build-${n}`);
    }
    const before = await tagsOf("ci/app");
    expect(before).toEqual(["build-1", "build-2", "build-3", "build-4", "stable"]);

    const dry = await admin(registry, policy, "gc", "--dry-run", "--grace", "0");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("would delete tag ci/app:build-1");
    expect(dry.stdout).toContain("would delete tag ci/app:build-2");
    expect(dry.stdout).toContain(`would delete manifest ci/app@${images.get("ci-2")?.manifest.descriptor.digest}`);
    expect(dry.stdout).not.toMatch(/tag ci\/app:(build-3|build-4|stable)/);
    expect(await tagsOf("ci/app")).toEqual(before);

    const real = await admin(registry, policy, "gc", "--grace", "0");
    expect(real.stdout).toContain("deleted tag ci/app:build-2");
    expect(await tagsOf("ci/app")).toEqual(["build-3", "build-4", "stable"]);
    // build-1's manifest is still tagged `stable`; build-2's is gone with its layer.
    await expect(skopeo.run(["inspect", "--tls-verify=false", `docker://${registry.authority}/ci/app:build-2`])).rejects.toThrow(
      /manifest unknown/i,
    );
    const layer = images.get("ci-2")?.layers[0]?.descriptor.digest;
    expect(real.stdout).toContain(`deleted blob ${layer}`);
    await skopeo.run(["inspect", "--tls-verify=false", `docker://${registry.authority}/ci/app:stable`]);
  });

  it("retention keeps tags pulled recently (pull times written in batches, at the latest on shutdown)", async () => {
    await layoutImage("pulled-1");
    await layoutImage("pulled-2");
    await push("pulled-1", "pulled/app:old");
    await push("pulled-2", "pulled/app:used");
    await skopeo.run(["copy", "--src-tls-verify=false", `docker://${registry.authority}/pulled/app:used`, `oci:${join(work, "out")}:used`]);
    // A graceful stop writes the pull times gathered since the last batch.
    await registry.stop("SIGTERM");
    const output = await admin(registry, policy, "gc", "--grace", "0");
    await registry.restart();
    expect(output.stdout).toContain("deleted tag pulled/app:old");
    expect(output.stdout).not.toContain("pulled/app:used");
    expect(await tagsOf("pulled/app")).toEqual(["used"]);
  });

  it("refuses a policy file with an unknown field or a bad value, naming it", async () => {
    const bad = join(work, "bad.json");
    await writeFile(bad, JSON.stringify({ retention: [{ repositories: "x/*", keepLatest: 3 }] }));
    const unknown = await admin(registry, bad, "gc", "--dry-run");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/retention\[0\] has an unknown field "keepLatest"/);
    await writeFile(bad, JSON.stringify({ quotas: [{ repositories: "x/*", bytes: "lots" }] }));
    expect((await admin(registry, bad, "quota")).stderr).toMatch(/quotas\[0\]\.bytes must be a byte count/);
  });
});
