import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { calculateJwkThumbprint, exportJWK, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultAuthConfig } from "../src/auth/config.js";
import { startAuth } from "../src/auth/index.js";
import { createLogger } from "../src/logger.js";
import { ADMIN, bearer, challengeOf, pushSmallImage, startAuthRegistry, statusWith, tokenFor } from "./auth-helpers.js";
import { call, expectError, type TestRegistry } from "./harness.js";

/**
 * A second, independent token issuer: its own key pair and name, its JWKS on its own loopback HTTP
 * server. It signs whatever the test asks; the registry must trust it and nothing else.
 */
class Issuer {
  server?: Server;
  jwks: { keys: JWK[] } = { keys: [] };
  jwksRequests = 0;

  private constructor(
    readonly name: string,
    readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
    readonly kid: string,
    readonly alg: string,
  ) {}

  static async create(name: string, type: "ec" | "rsa" = "ec"): Promise<Issuer> {
    const pair = type === "ec" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = await exportJWK(pair.publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const alg = type === "ec" ? "ES256" : "RS256";
    const issuer = new Issuer(name, pair.privateKey, pair.publicKey, `${name}-${kid.slice(0, 8)}`, alg);
    issuer.jwks = { keys: [{ ...jwk, kid: issuer.kid, alg, use: "sig" }] };
    return issuer;
  }

  async serve(): Promise<string> {
    this.server = createServer((req, res) => {
      if (req.url === "/.well-known/jwks.json") {
        this.jwksRequests++;
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.jwks));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((done) => this.server?.listen(0, "127.0.0.1", done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }

  sign(
    access: { type: string; name: string; actions: string[] }[],
    options: { kid?: string | null; iss?: string; aud?: string; sub?: string } = {},
  ) {
    const t = Math.floor(Date.now() / 1000);
    const header: Record<string, string> = { alg: this.alg, typ: "JWT" };
    if (options.kid !== null) header.kid = options.kid ?? this.kid;
    return new SignJWT({
      access,
      iss: options.iss ?? this.name,
      aud: options.aud ?? "minato-registry",
      sub: options.sub ?? "ci-bot",
      iat: t,
      nbf: t,
      exp: t + 300,
    })
      .setProtectedHeader(header as { alg: string })
      .sign(this.privateKey);
  }
}

const rw = (name: string) => [{ type: "repository", name, actions: ["pull", "push"] }];

describe("external issuer via JWKS URL", () => {
  let issuer: Issuer;
  let issuerUrl: string;
  let registry: TestRegistry;
  let builtIn: TestRegistry;

  beforeAll(async () => {
    issuer = await Issuer.create("corp-auth");
    issuerUrl = await issuer.serve();
    registry = await startAuthRegistry({
      issuer: "corp-auth",
      external: { realm: `${issuerUrl}/auth`, jwksUrl: `${issuerUrl}/.well-known/jwks.json` },
    });
    // An independent registry with the built-in issuer, same service name: its tokens must not pass.
    builtIn = await startAuthRegistry();
  });
  afterAll(async () => {
    await registry.destroy();
    await builtIn.destroy();
    await issuer.close();
  });

  it("challenges with the external realm and runs no token service of its own", async () => {
    const res = await call(registry, "GET", "/v2/corp/app/manifests/v1");
    await expectError(res, 401, "UNAUTHORIZED");
    expect(challengeOf(res)).toEqual({ realm: `${issuerUrl}/auth`, service: "minato-registry", scope: "repository:corp/app:pull" });
    for (const path of ["/token?service=minato-registry", "/token/jwks", "/.well-known/jwks.json"]) {
      expect(await statusWith(registry, "GET", path), path).toBe(404);
    }
    expect(registry.auth?.users).toBeUndefined();
  });

  it("accepts the external issuer's tokens for push and pull", async () => {
    const token = await issuer.sign(rw("corp/app"));
    const { manifest } = await pushSmallImage(registry, "corp/app", "v1", token);
    expect(await statusWith(registry, "GET", `/v2/corp/app/manifests/${manifest}`, token)).toBe(200);
    expect(await statusWith(registry, "GET", "/v2/", token)).toBe(200);
    expect(issuer.jwksRequests).toBeGreaterThan(0);
    const pullOnly = await issuer.sign([{ type: "repository", name: "corp/app", actions: ["pull"] }]);
    expect(await statusWith(registry, "GET", "/v2/corp/app/manifests/v1", pullOnly)).toBe(200);
    expect(await statusWith(registry, "POST", "/v2/corp/app/blobs/uploads/", pullOnly)).toBe(403);
  });

  it("shows the whole catalog to a token holding registry:catalog:*", async () => {
    const token = await issuer.sign([{ type: "registry", name: "catalog", actions: ["*"] }]);
    const res = await call(registry, "GET", "/v2/_catalog", { headers: bearer(token) });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { repositories: string[] }).repositories).toContain("corp/app");
  });

  it("rejects tokens of the built-in issuer, and the external key under another issuer name", async () => {
    const foreign = await tokenFor(builtIn, ADMIN, "repository:corp/app:pull,push");
    const res = await call(registry, "GET", "/v2/corp/app/manifests/v1", { headers: bearer(foreign) });
    await expectError(res, 401, "UNAUTHORIZED");
    expect(challengeOf(res).error).toBe("invalid_token");
    expect(
      await statusWith(registry, "GET", "/v2/corp/app/manifests/v1", await issuer.sign(rw("corp/app"), { iss: "minato-registry" })),
    ).toBe(401);
    expect(await statusWith(registry, "GET", "/v2/corp/app/manifests/v1", await issuer.sign(rw("corp/app"), { aud: "elsewhere" }))).toBe(
      401,
    );
    // And the other way round: the built-in registry does not trust the external issuer.
    expect(await statusWith(builtIn, "GET", "/v2/", await issuer.sign(rw("corp/app"), { iss: "minato-registry" }))).toBe(401);
  });

  it("trusts every key of the JWKS at once (rotation), and no other key", async () => {
    const next = await Issuer.create("corp-auth");
    issuer.jwks = { keys: [...issuer.jwks.keys, ...next.jwks.keys] };
    const fresh = await startAuthRegistry({
      issuer: "corp-auth",
      external: { realm: `${issuerUrl}/auth`, jwksUrl: `${issuerUrl}/.well-known/jwks.json` },
    });
    try {
      expect(await statusWith(fresh, "GET", "/v2/corp/app/manifests/v1", await next.sign(rw("corp/app")))).toBe(404);
      expect(await statusWith(fresh, "GET", "/v2/corp/app/manifests/v1", await issuer.sign(rw("corp/app")))).toBe(404);
      const stranger = await Issuer.create("corp-auth");
      expect(await statusWith(fresh, "GET", "/v2/corp/app/manifests/v1", await stranger.sign(rw("corp/app")))).toBe(401);
    } finally {
      await fresh.destroy();
    }
  });
});

describe("external issuer via PEM public keys", () => {
  let dir: string;
  let ec: Issuer;
  let rsa: Issuer;
  let registry: TestRegistry;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "minato-external-pem-"));
    ec = await Issuer.create("pem-auth", "ec");
    rsa = await Issuer.create("pem-auth", "rsa");
    const pem = (k: KeyObject) => k.export({ type: "spki", format: "pem" }) as string;
    await writeFile(join(dir, "ec.pem"), pem(ec.publicKey));
    await writeFile(join(dir, "rsa.pem"), pem(rsa.publicKey));
    registry = await startAuthRegistry({
      issuer: "pem-auth",
      external: { realm: "https://auth.example.com/token", keyFiles: [join(dir, "ec.pem"), join(dir, "rsa.pem")] },
    });
  });
  afterAll(async () => {
    await registry.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it("accepts tokens naming a key by its RFC 7638 thumbprint, for EC and RSA keys", async () => {
    const ecKid = await calculateJwkThumbprint(await exportJWK(ec.publicKey));
    const rsaKid = await calculateJwkThumbprint(await exportJWK(rsa.publicKey));
    await pushSmallImage(registry, "pem/app", "v1", await ec.sign(rw("pem/app"), { kid: ecKid }));
    expect(await statusWith(registry, "GET", "/v2/pem/app/manifests/v1", await rsa.sign(rw("pem/app"), { kid: rsaKid }))).toBe(200);
  });

  it("rejects unknown kids, kid-less tokens when several keys are trusted, and other issuers", async () => {
    expect(await statusWith(registry, "GET", "/v2/pem/app/manifests/v1", await ec.sign(rw("pem/app"), { kid: "unknown" }))).toBe(401);
    expect(await statusWith(registry, "GET", "/v2/pem/app/manifests/v1", await ec.sign(rw("pem/app"), { kid: null }))).toBe(401);
    const other = await Issuer.create("pem-auth");
    const otherKid = await calculateJwkThumbprint(await exportJWK(other.publicKey));
    expect(await statusWith(registry, "GET", "/v2/pem/app/manifests/v1", await other.sign(rw("pem/app"), { kid: otherKid }))).toBe(401);
  });

  it("a single trusted key needs no kid; a private key file is refused at startup", async () => {
    const single = await startAuthRegistry({
      issuer: "pem-auth",
      external: { realm: "https://auth.example.com/token", keyFiles: [join(dir, "ec.pem")] },
    });
    try {
      expect(await statusWith(single, "GET", "/v2/", await ec.sign(rw("pem/app"), { kid: null }))).toBe(200);
    } finally {
      await single.destroy();
    }
    await writeFile(join(dir, "private.pem"), ec.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    const config = defaultAuthConfig({
      issuer: "pem-auth",
      external: { realm: "https://auth.example.com/token", keyFiles: [join(dir, "private.pem")] },
    });
    const context = { dataDir: dir, databasePath: join(dir, "registry.db"), tls: false, logger: createLogger("silent") };
    await expect(startAuth(config, context)).rejects.toThrow(/private key/);
  });
});
