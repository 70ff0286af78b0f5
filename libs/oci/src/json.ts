/**
 * The first object member name that occurs twice in the same object, anywhere in `text`, or
 * undefined when there is none. `text` must already be valid JSON (JSON.parse accepted it).
 *
 * JSON.parse keeps the last of duplicate names while other parsers keep the first or refuse, so one
 * document could mean two manifests; image-spec considerations.md (I-JSON, RFC 7493) says objects
 * MUST NOT contain duplicate names.
 */
export function findDuplicateKey(text: string): string | undefined {
  /** One entry per open container: the names seen so far for an object, null for an array. */
  const stack: (Set<string> | null)[] = [];
  /** Whether the next string in the innermost object is a member name (after `{` or `,`). */
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "{") {
      stack.push(new Set());
      expectName = true;
    } else if (ch === "[") {
      stack.push(null);
      expectName = false;
    } else if (ch === "}" || ch === "]") {
      stack.pop();
      expectName = false;
    } else if (ch === ",") {
      expectName = stack.at(-1) instanceof Set;
    } else if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (expectName) {
        // Escapes decoded, so "a" and "\u0061" are the same name.
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        const names = stack.at(-1) as Set<string>;
        if (names.has(name)) return name;
        names.add(name);
        expectName = false;
      }
      i = end;
    }
  }
  return undefined;
}
