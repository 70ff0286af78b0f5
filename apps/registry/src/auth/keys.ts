import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, X509Certificate } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { calculateJwkThumbprint, type JWK } from "jose";

/** A public key tokens may be signed with. `kids` are every identifier a token header may name it by. */
export interface TrustedKey {
  kid: string;
  kids: string[];
  key: KeyObject;
  /** The one algorithm this key verifies, or undefined for keys whose algorithm the token names. */
  alg?: string;
  jwk: JWK;
}

export interface SigningKey extends TrustedKey {
  alg: string;
  privateKey: KeyObject;
  file: string;
  createdAt: number;
}

const FILE = /^signing-key-(\d+)\.pem$/;

function algorithmOf(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case "ec":
      return { prime256v1: "ES256", "P-256": "ES256", secp384r1: "ES384", "P-384": "ES384", secp521r1: "ES512", "P-521": "ES512" }[
        details?.namedCurve ?? ""
      ];
    case "ed25519":
      return "EdDSA";
    default:
      return undefined;
  }
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The key id Docker's libtrust derives: SHA-256 of the DER public key, 240 bits in base32, in groups of four. */
export function libtrustKeyId(key: KeyObject): string {
  const digest = createHash("sha256")
    .update(key.export({ type: "spki", format: "der" }))
    .digest()
    .subarray(0, 30);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return (out.match(/.{4}/g) as string[]).join(":");
}

async function describe(key: KeyObject): Promise<Omit<TrustedKey, "alg">> {
  const jwk = key.export({ format: "jwk" }) as JWK;
  const thumbprint = await calculateJwkThumbprint(jwk, "sha256");
  return { kid: thumbprint, kids: [thumbprint, libtrustKeyId(key)], key, jwk: { ...jwk, kid: thumbprint, use: "sig" } };
}

async function loadSigningKey(file: string, createdAt: number): Promise<SigningKey> {
  const privateKey = createPrivateKey(await readFile(file));
  const publicKey = createPublicKey(privateKey);
  const alg = algorithmOf(publicKey);
  if (!alg) throw new Error(`${file}: unsupported signing key type ${publicKey.asymmetricKeyType}`);
  const described = await describe(publicKey);
  return { ...described, alg, jwk: { ...described.jwk, alg }, privateKey, file, createdAt };
}

/**
 * The built-in issuer's keys, one PEM file each under `<data>/auth/keys/` (directory 0700, files
 * 0600). The newest signs; every key in the directory is trusted, so a key can be rotated in while
 * tokens signed by the previous one are still valid, and retired later.
 */
export class KeyRing {
  private constructor(
    readonly dir: string,
    readonly keys: SigningKey[],
  ) {}

  /** Loads the keys, generating the first one when there is none. */
  static async open(dir: string): Promise<KeyRing> {
    let keys = await listSigningKeys(dir);
    if (keys.length === 0) {
      await generateSigningKey(dir);
      keys = await listSigningKeys(dir);
    }
    return new KeyRing(dir, keys);
  }

  /** The newest key signs new tokens. */
  get signing(): SigningKey {
    return this.keys.at(-1) as SigningKey;
  }

  get trusted(): TrustedKey[] {
    return this.keys;
  }

  /** The public keys as a JWKS document (RFC 7517), for clients and other registries that verify our tokens. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.jwk) };
  }
}

export async function listSigningKeys(dir: string): Promise<SigningKey[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const files = names
    .map((name) => ({ name, match: FILE.exec(name) }))
    .filter((f) => f.match)
    .map((f) => ({ file: join(dir, f.name), createdAt: Number(f.match?.[1]) }))
    .sort((a, b) => a.createdAt - b.createdAt);
  return Promise.all(files.map((f) => loadSigningKey(f.file, f.createdAt)));
}

/** A new ES256 key, written with mode 0600 (created so: it is never readable by others, even briefly). */
export async function generateSigningKey(dir: string): Promise<SigningKey> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const existing = await listSigningKeys(dir);
  const createdAt = Math.max(Date.now(), (existing.at(-1)?.createdAt ?? 0) + 1);
  const file = join(dir, `signing-key-${createdAt}.pem`);
  const temp = `${file}.tmp`;
  await writeFile(temp, pem, { mode: 0o600, flag: "wx" });
  await chmod(temp, 0o600);
  await rename(temp, file);
  return loadSigningKey(file, createdAt);
}

/** Retires a key: tokens it signed stop being accepted at the next start. The last key cannot go. */
export async function removeSigningKey(dir: string, kid: string): Promise<void> {
  const keys = await listSigningKeys(dir);
  const key = keys.find((k) => k.kids.includes(kid));
  if (!key) throw new Error(`no signing key ${kid}`);
  if (keys.length === 1) throw new Error("refusing to remove the only signing key; rotate first");
  await unlink(key.file);
}

/** Whether a key file is readable by group or others (it must not be). */
export async function isPrivate(file: string): Promise<boolean> {
  return ((await stat(file)).mode & 0o077) === 0;
}

/**
 * An external issuer's public keys from PEM files: SPKI public keys or X.509 certificates, several
 * per file. A token names its key by `kid`: the RFC 7638 thumbprint or the libtrust id both work.
 */
export async function loadPublicKeys(files: readonly string[]): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const file of files) {
    const text = await readFile(file, "utf8");
    const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
    if (blocks.length === 0) throw new Error(`${file}: no PEM public key or certificate`);
    for (const block of blocks) {
      if (/PRIVATE KEY/.test(block)) throw new Error(`${file}: holds a private key; give the registry only public keys`);
      const key = block.includes("CERTIFICATE") ? new X509Certificate(block).publicKey : createPublicKey(block);
      const described = await describe(key);
      const alg = algorithmOf(key);
      keys.push({ ...described, ...(alg ? { alg } : {}) });
    }
  }
  return keys;
}
