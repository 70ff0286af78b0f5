/** The Docker Engine API version served (ref/docker-engine-api/swagger.yaml) and the oldest accepted. */
export const API_VERSION = "1.56";
export const MIN_API_VERSION = "1.24";

function compare(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split(".").map(Number);
  const [bMajor = 0, bMinor = 0] = b.split(".").map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

/** A `/v1.xx` path prefix: undefined when absent; an error message when out of range. */
export function checkVersion(version: string): string | undefined {
  if (compare(version, API_VERSION) > 0) return `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`;
  if (compare(version, MIN_API_VERSION) < 0)
    return `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`;
  return undefined;
}
