import type { KeyObject } from "node:crypto";
import { createRemoteJWKSet, errors, type JWTHeaderParameters, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { TrustedKey } from "./keys.js";
import { type AccessEntry, parseAccessClaim, ScopeError } from "./scope.js";

/**
 * Asymmetric signatures only. `none` and every HMAC algorithm are refused outright: an HS256 token
 * "signed" with our public key as the shared secret must never verify.
 */
export const ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"];

/** Clock skew tolerated on `exp` and `nbf`. */
export const LEEWAY_SECONDS = 30;

export class InvalidTokenError extends Error {}

export interface VerifiedToken {
  /** `sub`: the user the token was issued to, "" when anonymous. */
  subject: string;
  access: AccessEntry[];
  claims: JWTPayload;
}

export interface TokenVerifier {
  /** The claims of a token that is genuine and current for this registry; InvalidTokenError otherwise. */
  verify(token: string): Promise<VerifiedToken>;
}

export interface VerifierOptions {
  issuer: string;
  /** The registry's service name: tokens for any other audience are refused. */
  audience: string;
}

/** Verifies with keys held locally: the built-in issuer's key ring, or an external issuer's PEM keys. */
export function localVerifier(options: VerifierOptions & { keys: () => readonly TrustedKey[] }): TokenVerifier {
  const resolve = (header: JWTHeaderParameters): KeyObject => {
    const keys = options.keys();
    const key =
      header.kid === undefined ? (keys.length === 1 ? keys[0] : undefined) : keys.find((k) => k.kids.includes(header.kid as string));
    if (!key) throw new InvalidTokenError(header.kid === undefined ? "token names no key (kid)" : "token signed by an unknown key");
    if (key.alg && key.alg !== header.alg) throw new InvalidTokenError(`key ${key.kid} does not sign ${header.alg}`);
    return key.key;
  };
  return { verify: (token) => verifyWith(token, options, resolve) };
}

/** Verifies with an external issuer's JWKS document, fetched and cached (refetched for an unknown kid). */
export function remoteVerifier(options: VerifierOptions & { jwksUrl: string }): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  return { verify: (token) => verifyWith(token, options, jwks) };
}

async function verifyWith(token: string, options: VerifierOptions, key: JWTVerifyGetKey): Promise<VerifiedToken> {
  try {
    const { payload } = await jwtVerify(token, key, {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: ALGORITHMS,
      clockTolerance: LEEWAY_SECONDS,
      requiredClaims: ["exp"],
    });
    return { subject: typeof payload.sub === "string" ? payload.sub : "", access: parseAccessClaim(payload.access), claims: payload };
  } catch (error) {
    if (error instanceof InvalidTokenError) throw error;
    if (error instanceof errors.JOSEError || error instanceof ScopeError) throw new InvalidTokenError(reason(error));
    throw new InvalidTokenError("token could not be verified");
  }
}

function reason(error: Error): string {
  if (error instanceof errors.JWTExpired) return "token expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim ${error.claim} rejected (${error.reason})`;
  if (error instanceof errors.JOSEAlgNotAllowed) return "token algorithm not allowed";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "token signature invalid";
  if (error instanceof errors.JWKSNoMatchingKey) return "token signed by an unknown key";
  if (error instanceof errors.JWKSTimeout) return "issuer keys unavailable";
  return error instanceof ScopeError ? `token access claim invalid: ${error.message}` : "token malformed";
}
