import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLoopback, UnsafeExposureError } from "../src/auth/config.js";
import { constantTimeEqual, hashPassword, verifyPassword } from "../src/auth/passwords.js";
import { LoginThrottle } from "../src/auth/throttle.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { startRegistry } from "../src/index.js";
import { openDatabase } from "../src/metadata/sqlite.js";
import {
  ADMIN,
  addUser,
  basic,
  bearer,
  challengeOf,
  postToken,
  pushSmallImage,
  requestToken,
  startAuthRegistry,
  tokenFor,
  usersOf,
} from "./auth-helpers.js";
import { call, expectError, type TestRegistry, testStorage } from "./harness.js";

const BIN = resolve(import.meta.dirname, "../bin/minato-registry.js");

/** Runs the CLI in a clean environment (no MINATO_* from the caller, no .env) and collects its output. */
function runCli(
  args: string[],
  env: Record<string, string> = {},
  cwd = tmpdir(),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

describe("login throttling", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startAuthRegistry({ throttle: { perUser: 3, perAddress: 8, windowMs: 60_000 } });
    await addUser(registry, "victim", "correct-horse", [["v/*", ["pull"]]]);
    await addUser(registry, "bystander", "bystander-pw", [["v/*", ["pull"]]]);
  });
  afterAll(() => registry.destroy());

  it("429 TOOMANYREQUESTS with Retry-After once a user has too many failures, even with the right password", async () => {
    for (let i = 0; i < 3; i++) expect((await requestToken(registry, { user: "victim", password: `guess-${i}` }, [])).status).toBe(401);
    const res = await call(registry, "GET", "/token?service=minato-registry", {
      headers: basic({ user: "victim", password: "correct-horse" }),
    });
    await expectError(res, 429, "TOOMANYREQUESTS");
    const retryAfter = Number(res.headers["retry-after"]);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // The OAuth2 password grant is throttled alike.
    const post = await postToken(registry, { grant_type: "password", username: "victim", password: "correct-horse" });
    expect(post.status).toBe(429);
    expect(post.res.headers["retry-after"]).toBeDefined();
    // Another user from the same address is not locked out by the victim's failures.
    expect((await requestToken(registry, { user: "bystander", password: "bystander-pw" }, [])).status).toBe(200);
  });

  it("limits failures per client address across user names", async () => {
    // 3 failures so far from this address; 5 more with fresh names reach the per-address limit of 8.
    for (let i = 0; i < 5; i++) expect((await requestToken(registry, { user: `spray-${i}`, password: "x" }, [])).status).toBe(401);
    const res = await call(registry, "GET", "/token?service=minato-registry", {
      headers: basic({ user: "bystander", password: "bystander-pw" }),
    });
    await expectError(res, 429, "TOOMANYREQUESTS");
    expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("counts a sliding window and clears a user's failures on success", () => {
    let clock = 1_000_000;
    const throttle = new LoginThrottle(60_000, () => clock);
    throttle.fail("user:a");
    clock += 30_000;
    throttle.fail("user:a");
    expect(throttle.retryAfter("user:a", 2)).toBe(30);
    expect(throttle.retryAfter("user:a", 3)).toBe(0);
    clock += 30_001;
    expect(throttle.retryAfter("user:a", 2)).toBe(0);
    throttle.fail("user:a");
    throttle.clear("user:a");
    expect(throttle.retryAfter("user:a", 1)).toBe(0);
  });
});

describe("registry.db file mode", () => {
  it("creates registry.db and its -wal and -shm with mode 0600, and narrows an older wider file", async () => {
    const registry = await startAuthRegistry();
    const db = join(registry.dataDir, "registry.db");
    try {
      // A write makes sure the WAL and shared-memory files exist.
      await addUser(registry, "mode-check", "mode-check-pw");
      for (const file of [db, `${db}-wal`, `${db}-shm`]) expect(((await stat(file)).mode & 0o777).toString(8), file).toBe("600");
    } finally {
      await registry.close();
    }
    try {
      await chmod(db, 0o644);
      // As an upgraded registry (or an admin command) opens it.
      openDatabase(db).close();
      expect(((await stat(db)).mode & 0o777).toString(8)).toBe("600");
    } finally {
      await registry.storage.remove();
      await rm(registry.dataDir, { recursive: true, force: true });
    }
  });
});

describe("behind a TLS-terminating proxy", () => {
  it("uses --public-url for the realm", async () => {
    const registry = await startAuthRegistry({ publicUrl: "https://registry.example.com" });
    try {
      const res = await call(registry, "GET", "/v2/");
      await res.body.dump();
      expect(challengeOf(res).realm).toBe("https://registry.example.com/token");
    } finally {
      await registry.destroy();
    }
  });

  it("honours X-Forwarded-Proto/-Host/-For only with --trust-proxy", async () => {
    const forwarded = { "x-forwarded-proto": "https", "x-forwarded-host": "registry.example.com", "x-forwarded-for": "203.0.113.9" };
    const untrusting = await startAuthRegistry();
    const trusting = await startAuthRegistry({ trustProxy: true, throttle: { perUser: 100, perAddress: 2, windowMs: 60_000 } });
    try {
      const plain = await call(untrusting, "GET", "/v2/", { headers: forwarded });
      await plain.body.dump();
      expect(challengeOf(plain).realm).toBe(`${untrusting.url}/token`);
      const proxied = await call(trusting, "GET", "/v2/", { headers: forwarded });
      await proxied.body.dump();
      expect(challengeOf(proxied).realm).toBe("https://registry.example.com/token");

      // Throttling keys on the forwarded client address, not the proxy's.
      for (let i = 0; i < 2; i++) {
        expect((await requestToken(trusting, { user: `u${i}`, password: "x" }, [], {}, { "x-forwarded-for": "198.51.100.1" })).status).toBe(
          401,
        );
      }
      expect((await requestToken(trusting, ADMIN, [], {}, { "x-forwarded-for": "198.51.100.1" })).status).toBe(429);
      expect((await requestToken(trusting, ADMIN, [], {}, { "x-forwarded-for": "198.51.100.2" })).status).toBe(200);
    } finally {
      await untrusting.destroy();
      await trusting.destroy();
    }
  });
});

describe("passwords", () => {
  it("hashes with scrypt and a per-password salt", async () => {
    const a = await hashPassword("s3cret-pass");
    const b = await hashPassword("s3cret-pass");
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword("s3cret-pass", a)).toBe(true);
    expect(await verifyPassword("s3cret-pasS", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
    // No stored hash (unknown user, robot account): false, after the same work against a decoy.
    expect(await verifyPassword("anything", null)).toBe(false);
    expect(await verifyPassword("anything", "garbage")).toBe(false);
  });

  it("compares secrets with timingSafeEqual over fixed-length digests, whatever the lengths", async () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
    expect(constantTimeEqual(Buffer.from([1, 2]), Buffer.from([1, 2]))).toBe(true);
    // Every secret check in the auth code goes through the constant-time helpers, never `===`.
    const source = async (file: string) => readFile(resolve(import.meta.dirname, "../src/auth", file), "utf8");
    const passwords = await source("passwords.ts");
    expect(passwords).toMatch(/timingSafeEqual\(/);
    expect(passwords).toMatch(/return constantTimeEqual\(actual, expected\)/);
    const credentials = await source("credentials.ts");
    expect(credentials.match(/constantTimeEqual\(hashSecret/g)?.length).toBe(2);
    expect(credentials).not.toMatch(/(secretHash|passwordHash|secret)\s*[!=]==/);
  });

  it("stores only hashes of passwords and tokens", async () => {
    const registry = await startAuthRegistry();
    try {
      await addUser(registry, "hashed", "plain-text-password");
      const { token } = usersOf(registry).createAccessToken("hashed", "ci", [{ pattern: "*", actions: ["pull"] }]);
      await registry.close();
      const db = await readFile(join(registry.dataDir, "registry.db"));
      const wal = existsSync(join(registry.dataDir, "registry.db-wal"))
        ? await readFile(join(registry.dataDir, "registry.db-wal"))
        : Buffer.alloc(0);
      for (const secret of ["plain-text-password", ADMIN.password, token.slice(21)]) {
        expect(db.includes(secret)).toBe(false);
        expect(wal.includes(secret)).toBe(false);
      }
    } finally {
      await registry.destroy();
    }
  });
});

describe("secrets never reach the logs", () => {
  it("logs at trace level hold no password, access token, refresh token or personal access token", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "minato-auth-logs-"));
    const storage = await testStorage();
    let logs = "";
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        logs += chunk;
        callback();
      },
    });
    const registry = await startRegistry(
      {
        host: "127.0.0.1",
        port: 0,
        dataDir,
        deletesEnabled: true,
        logLevel: "trace",
        uploadTtlMs: 86_400_000,
        maxManifestBytes: 4 << 20,
        auth: (await import("../src/index.js")).defaultAuthConfig({ admin: { ...ADMIN } }),
        ...(storage.config ? { storage: storage.config } : {}),
      },
      pino({ level: "trace" }, sink),
    );
    const test = { ...registry, dataDir, storage, destroy: async () => {} };
    try {
      const users = usersOf(test);
      users.addUser("logged", { passwordHash: await hashPassword("logged-user-password") });
      users.grant({ user: "logged" }, "logs/*", ["pull", "push"]);
      const { token: pat } = users.createAccessToken("logged", "ci", [{ pattern: "logs/*", actions: ["pull", "push"] }]);
      const access = await tokenFor(test, { user: "logged", password: "logged-user-password" }, "repository:logs/app:pull,push");
      await pushSmallImage(test, "logs/app", "v1", access);
      await requestToken(test, { user: "logged", password: "wrong-password-attempt" }, []);
      const viaPat = await tokenFor(test, { user: "logged", password: pat }, "repository:logs/app:pull");
      const offline = await postToken(test, {
        grant_type: "password",
        username: "logged",
        password: "logged-user-password",
        access_type: "offline",
      });
      const refresh = offline.json.refresh_token as string;
      await postToken(test, { grant_type: "refresh_token", refresh_token: refresh });
      await call(test, "GET", "/v2/logs/app/manifests/v1", { headers: bearer("forged.token.value") }).then((r) => r.body.dump());
      expect(logs).toMatch(/login failed/);
      expect(logs).toMatch(/issued token/);
      for (const secret of [
        "logged-user-password",
        "wrong-password-attempt",
        ADMIN.password,
        pat,
        pat.slice(21),
        access,
        access.split(".")[2] as string,
        viaPat,
        refresh,
        "forged.token.value",
      ]) {
        expect(logs.includes(secret), secret.slice(0, 12)).toBe(false);
      }
    } finally {
      await registry.close();
      await storage.remove();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("unauthenticated mode is for loopback only", () => {
  it("knows loopback addresses", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])
      expect(isLoopback(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "example.com", "::ffff:10.0.0.1", "128.0.0.1"])
      expect(isLoopback(host), host).toBe(false);
  });

  it("defaults to no auth on loopback and to token auth anywhere else", () => {
    expect(loadConfig([], {}).auth).toBeUndefined();
    expect(loadConfig(["--listen", "127.0.0.1:0"], {}).auth).toBeUndefined();
    const exposed = loadConfig(["--listen", "0.0.0.0:5000"], {});
    expect(exposed.auth).toMatchObject({
      service: "minato-registry",
      issuer: "minato-registry",
      tokenPath: "/token",
      tokenTtlSeconds: 300,
    });
    expect(loadConfig(["--listen", "[::]:5000"], {}).auth).toBeDefined();
    expect(loadConfig(["--auth", "token"], {}).auth).toBeDefined();
    expect(loadConfig([], { MINATO_REGISTRY_AUTH: "token" }).auth).toBeDefined();
  });

  it("refuses --auth none on a non-loopback address unless --insecure-allow-anonymous is given", () => {
    expect(() => loadConfig(["--listen", "0.0.0.0:5000", "--auth", "none"], {})).toThrow(ConfigError);
    expect(() => loadConfig(["--listen", "0.0.0.0:5000", "--auth", "none"], {})).toThrow(/refusing to serve without authentication/);
    expect(loadConfig(["--listen", "0.0.0.0:5000", "--auth", "none", "--insecure-allow-anonymous"], {}).auth).toBeUndefined();
    expect(
      loadConfig([], {
        MINATO_REGISTRY_LISTEN: "0.0.0.0:5000",
        MINATO_REGISTRY_AUTH: "none",
        MINATO_REGISTRY_INSECURE_ALLOW_ANONYMOUS: "true",
      }).auth,
    ).toBeUndefined();
  });

  it("startRegistry refuses before opening or binding anything", async () => {
    const dataDir = join(tmpdir(), `minato-never-created-${process.pid}-${Date.now()}`);
    await expect(
      startRegistry({
        host: "0.0.0.0",
        port: 0,
        dataDir,
        deletesEnabled: true,
        logLevel: "silent",
        uploadTtlMs: 1000,
        maxManifestBytes: 4096,
      }),
    ).rejects.toThrow(UnsafeExposureError);
    expect(existsSync(dataDir)).toBe(false);
  });

  it("the CLI exits 2 with a one-line reason, before binding or creating the data directory", async () => {
    const dataDir = join(tmpdir(), `minato-never-created-${process.pid}-${Date.now()}`);
    for (const [args, env] of [
      [["serve", "--listen", "0.0.0.0:0", "--auth", "none", "--data", dataDir], {}],
      [["serve", "--data", dataDir], { MINATO_REGISTRY_LISTEN: "[::]:0", MINATO_REGISTRY_AUTH: "none" }],
    ] as [string[], Record<string, string>][]) {
      const { code, stdout, stderr } = await runCli(args, env);
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(/^minato-registry: refusing to serve without authentication on non-loopback address (0\.0\.0\.0|::)/);
      expect(stderr).toMatch(/--insecure-allow-anonymous/);
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it("validates the auth settings", () => {
    expect(() => loadConfig(["--auth", "basic"], {})).toThrow(/--auth must be none or token/);
    expect(() => loadConfig(["--auth", "token", "--token-ttl", "10s"], {})).toThrow(/--token-ttl/);
    expect(() => loadConfig(["--auth", "token", "--token-path", "/v2/token"], {})).toThrow(/--token-path/);
    expect(() => loadConfig(["--auth", "token", "--auth-jwks-url", "http://127.0.0.1:1/jwks"], {})).toThrow(/--auth-realm/);
    expect(() =>
      loadConfig(["--auth", "token", "--auth-jwks-url", "http://127.0.0.1:1/jwks", "--auth-realm", "http://127.0.0.1:1/auth"], {}),
    ).toThrow(/--auth-issuer/);
    expect(() => loadConfig(["--auth", "token", "--public-url", "registry.example.com"], {})).toThrow(/--public-url/);
    expect(() => loadConfig(["--auth", "token", "--login-limit", "0"], {})).toThrow(/--login-limit/);
    const external = loadConfig(
      ["--auth", "token", "--auth-jwks-url", "http://127.0.0.1:1/jwks", "--auth-realm", "http://127.0.0.1:1/auth", "--auth-issuer", "corp"],
      {},
    ).auth;
    expect(external).toMatchObject({ issuer: "corp", external: { realm: "http://127.0.0.1:1/auth", jwksUrl: "http://127.0.0.1:1/jwks" } });
  });
});

describe("first admin", () => {
  it("is generated and printed once when no password is configured", async () => {
    const lines: string[] = [];
    const dataDir = await mkdtemp(join(tmpdir(), "minato-first-admin-"));
    const { startAuth } = await import("../src/auth/index.js");
    const { defaultAuthConfig } = await import("../src/auth/config.js");
    const logger = pino({ level: "silent" });
    try {
      const context = { dataDir, databasePath: join(dataDir, "registry.db"), tls: false, logger, announce: (l: string) => lines.push(l) };
      const first = await startAuth(defaultAuthConfig(), context);
      expect(lines).toHaveLength(1);
      const password = /with password (\S+)/.exec(lines[0] as string)?.[1] as string;
      expect(password.length).toBeGreaterThanOrEqual(20);
      expect(first.users?.getUser("admin")?.admin).toBe(true);
      first.close();
      const second = await startAuth(defaultAuthConfig(), context);
      expect(lines).toHaveLength(1);
      second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
