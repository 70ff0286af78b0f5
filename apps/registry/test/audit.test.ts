import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { adminCommand } from "../src/auth/admin-cli.js";
import { ADMIN, addUser, bearer, pushSmallImage, requestToken, startAuthRegistry, tokenFor } from "./auth-helpers.js";
import { call, type TestRegistry } from "./harness.js";

/** The audit trail (README "Observability"), read back with `minato-registry audit` as an operator would. */

const BIN = resolve(import.meta.dirname, "../bin/minato-registry.js");
const run = promisify(execFile);

interface Entry {
  at: string;
  actor: string;
  address: string;
  action: string;
  target: string;
  detail?: Record<string, unknown>;
}

async function audit(registry: TestRegistry, ...args: string[]): Promise<Entry[]> {
  const { stdout } = await run(process.execPath, [BIN, "audit", "--data", registry.dataDir, "--json", ...args]);
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Entry);
}

let registry: TestRegistry | undefined;
afterEach(async () => {
  await registry?.destroy();
  registry = undefined;
});

describe("audit trail", () => {
  it("records a failed login, a push and a delete with user and address, and admin changes", async () => {
    registry = await startAuthRegistry();
    const bad = await requestToken(registry, { user: "alice", password: "not-her-password" }, []);
    expect(bad.status).toBe(401);
    const token = await tokenFor(registry, ADMIN, "repository:audited/app:pull,push,delete");
    const pushed = await pushSmallImage(registry, "audited/app", "v1", token);
    const del = await call(registry, "DELETE", `/v2/audited/app/manifests/${pushed.manifest}`, { headers: bearer(token) });
    await del.body.dump();
    expect(del.statusCode).toBe(202);
    await addUser(registry, "alice", "alice-password-1");
    await adminCommand("grant", ["--data", registry.dataDir, "--user", "alice", "audited/*", "pull"], () => {});

    const entries = await audit(registry, "--since", "1h");
    const find = (action: string) => entries.find((e) => e.action === action);
    expect(find("login-failed")).toMatchObject({ actor: "alice", address: "127.0.0.1", target: "" });
    expect(find("login")).toMatchObject({ actor: ADMIN.user, address: "127.0.0.1" });
    expect(find("token")).toMatchObject({ actor: ADMIN.user, target: "repository:audited/app:pull,push,delete" });
    expect(find("push")).toMatchObject({ actor: ADMIN.user, address: "127.0.0.1", target: `audited/app@${pushed.manifest}` });
    expect(find("push")?.detail).toMatchObject({ tags: ["v1"] });
    expect(find("delete")).toMatchObject({ actor: ADMIN.user, address: "127.0.0.1", target: `audited/app@${pushed.manifest}` });
    expect(find("grant")).toMatchObject({ address: "local", target: "user:alice audited/* pull" });
    // Newest first.
    expect(entries.map((e) => e.at)).toEqual([...entries.map((e) => e.at)].sort().reverse());

    // Filters.
    const byAdmin = await audit(registry, "--user", ADMIN.user, "--action", "push");
    expect(byAdmin).toHaveLength(1);
    expect((await audit(registry, "--user", "alice")).map((e) => e.action)).toEqual(["login-failed"]);
    expect(await audit(registry, "--since", "2999-01-01")).toEqual([]);
  });

  it("forgets entries older than --audit-retention", async () => {
    registry = await startAuthRegistry({}, { auditRetentionMs: 60_000, limits: { uploadIdleTtlMs: 1000 } });
    const db = new Database(join(registry.dataDir, "registry.db"));
    try {
      const insert = db.prepare("INSERT INTO audit_log (at, actor, address, action, target) VALUES (?, 'old', 'local', 'user add', ?)");
      insert.run(Date.now() - 120_000, "expired");
      insert.run(Date.now() - 30_000, "kept");
    } finally {
      db.close();
    }
    const deadline = Date.now() + 30_000;
    let left = await audit(registry, "--user", "old");
    while (left.some((e) => e.target === "expired")) {
      if (Date.now() > deadline) throw new Error("the expired entry was never pruned");
      await new Promise((r) => setTimeout(r, 200));
      left = await audit(registry, "--user", "old");
    }
    expect(left.map((e) => e.target)).toEqual(["kept"]);
  });

  it("refuses a bad --since or --limit with a one-line error", async () => {
    registry = await startAuthRegistry();
    await expect(run(process.execPath, [BIN, "audit", "--data", registry.dataDir, "--since", "yesterday"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/--since must be a duration/),
    });
    await expect(run(process.execPath, [BIN, "audit", "--data", registry.dataDir, "--limit", "0"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/--limit must be a positive integer/),
    });
  });
});
