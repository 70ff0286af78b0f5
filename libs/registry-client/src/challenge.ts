/** One `WWW-Authenticate` challenge (RFC 9110 §11.6.1), e.g. `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header into its challenges. Parameter values may be tokens or quoted
 * strings with backslash escapes; scopes contain commas and colons, so a naive split would break them.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const skip = (pattern: RegExp) => {
    while (i < header.length && pattern.test(header[i] as string)) i++;
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const schemeStart = i;
    skip(/[^\s,]/);
    if (i === schemeStart) break;
    const challenge: Challenge = { scheme: header.slice(schemeStart, i).toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skip(/[\s,]/);
      const nameStart = i;
      skip(/[^\s=,]/);
      const name = header.slice(nameStart, i);
      skip(/\s/);
      if (header[i] !== "=") {
        // Not a parameter: the next challenge's scheme starts here.
        i = nameStart;
        break;
      }
      i++;
      skip(/\s/);
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === "\\") i++;
          value += header[i] ?? "";
          i++;
        }
        i++;
      } else {
        const valueStart = i;
        skip(/[^\s,]/);
        value = header.slice(valueStart, i);
      }
      challenge.params[name.toLowerCase()] = value;
      if (i >= header.length) break;
    }
  }
  return challenges;
}
