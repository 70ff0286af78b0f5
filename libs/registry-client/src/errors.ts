import type { Digest } from "@minato/oci";

/** An error answer from a registry, with the spec's error entries when it sent them. */
export class RegistryResponseError extends Error {
  constructor(
    readonly status: number,
    readonly errors: { code: string; message?: string; detail?: unknown }[],
    context: string,
    /** The registry's `Retry-After` (a 429 or 503), kept so a proxy can pass it on. */
    readonly retryAfter?: string,
  ) {
    const first = errors[0];
    super(`${context}: ${first ? `${first.code}${first.message ? ` (${first.message})` : ""}` : `HTTP ${status}`}`);
    this.name = "RegistryResponseError";
  }

  get code(): string | undefined {
    return this.errors[0]?.code;
  }
}

export class AuthenticationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthenticationError";
  }
}

/** Content that does not hash to the digest it was asked for. Nothing of it is kept. */
export class ContentDigestError extends Error {
  constructor(
    readonly expected: Digest,
    readonly actual: string,
  ) {
    super(`content digest mismatch: expected ${expected}, got ${actual}`);
    this.name = "ContentDigestError";
  }
}
