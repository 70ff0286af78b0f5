import { createHash, type Hash } from "node:crypto";

/** Digest algorithms this implementation can compute and verify (image-spec descriptor.md "Registered Algorithms"). */
export const SUPPORTED_ALGORITHMS = ["sha256", "sha512"] as const;
export type DigestAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

/** A digest string, `algorithm:encoded`, validated by {@link parseDigest}. */
export type Digest = `${string}:${string}`;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  encoded: string;
  digest: Digest;
}

// image-spec descriptor.md "Digests": algorithm ::= [a-z0-9]+ ([+._-] [a-z0-9]+)*, encoded ::= [a-zA-Z0-9=_-]+
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const LOWER_HEX = /^[a-f0-9]+$/;

export class DigestError extends Error {
  constructor(
    message: string,
    /** True when the string is grammatical but names an algorithm we cannot verify. */
    readonly unsupported = false,
  ) {
    super(message);
    this.name = "DigestError";
  }
}

export function isSupportedAlgorithm(name: string): name is DigestAlgorithm {
  return (SUPPORTED_ALGORITHMS as readonly string[]).includes(name);
}

/**
 * Parses and validates a digest. Grammatical digests with unknown algorithms are rejected with
 * `unsupported` set: a registry cannot verify content against them (spec: "400 if the digest is
 * invalid or uses an unsupported algorithm").
 */
export function parseDigest(value: string): ParsedDigest {
  if (!DIGEST_GRAMMAR.test(value)) throw new DigestError(`invalid digest ${JSON.stringify(value.slice(0, 200))}`);
  const colon = value.indexOf(":");
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  if (!isSupportedAlgorithm(algorithm)) throw new DigestError(`unsupported digest algorithm ${algorithm}`, true);
  if (encoded.length !== ENCODED_LENGTH[algorithm] || !LOWER_HEX.test(encoded)) {
    throw new DigestError(`invalid ${algorithm} digest: expected ${ENCODED_LENGTH[algorithm]} lowercase hex characters`);
  }
  return { algorithm, encoded, digest: value as Digest };
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** Incremental digester: feed bytes, then read the digest once. */
export class Digester {
  readonly #hash: Hash;
  #bytes = 0;
  constructor(readonly algorithm: DigestAlgorithm = "sha256") {
    this.#hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }
  get size(): number {
    return this.#bytes;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.#hash.digest("hex")}`;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = "sha256"): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}
