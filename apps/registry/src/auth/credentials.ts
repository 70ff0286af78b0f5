import { constantTimeEqual, hashSecret, verifyPassword } from "./passwords.js";
import { ACCESS_TOKEN_PREFIX, isLive, REFRESH_TOKEN_PREFIX, splitToken, type UserStore } from "./users.js";

/** Who a token is issued to. `accessTokenId` when they logged in with a personal access token. */
export interface Subject {
  name: string;
  userId: number;
  accessTokenId?: string;
}

/**
 * Checks a user name with a password, or with a personal access token used as the password (robot
 * accounts and CI). Every secret comparison is constant-time; an unknown user costs a full scrypt.
 */
export async function checkCredentials(users: UserStore, username: string, password: string): Promise<Subject | undefined> {
  const name = username.toLowerCase();
  const pat = splitToken(password, ACCESS_TOKEN_PREFIX);
  if (pat) {
    const token = users.getAccessToken(pat.id);
    const matches = constantTimeEqual(hashSecret(pat.secret), token?.secretHash ?? "");
    if (!token || !matches || !isLive(token) || token.user !== name) return undefined;
    users.touchToken("access", token.id);
    return { name: token.user, userId: token.userId, accessTokenId: token.id };
  }
  const user = users.getUser(name);
  const ok = await verifyPassword(password, user?.passwordHash);
  return user && ok ? { name: user.name, userId: user.id } : undefined;
}

/** The subject of a live refresh token issued for `service` (and of its access token, if one was used). */
export function checkRefreshToken(users: UserStore, token: string, service: string): Subject | undefined {
  const parts = splitToken(token, REFRESH_TOKEN_PREFIX);
  if (!parts) return undefined;
  const stored = users.getRefreshToken(parts.id);
  const matches = constantTimeEqual(hashSecret(parts.secret), stored?.secretHash ?? "");
  if (!stored || !matches || !isLive(stored) || stored.service !== service) return undefined;
  if (stored.accessTokenId !== null) {
    const pat = users.getAccessToken(stored.accessTokenId);
    if (!pat || !isLive(pat)) return undefined;
  }
  users.touchToken("refresh", stored.id);
  return { name: stored.user, userId: stored.userId, ...(stored.accessTokenId ? { accessTokenId: stored.accessTokenId } : {}) };
}
