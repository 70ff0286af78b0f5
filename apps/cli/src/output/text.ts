/** Small text helpers shared by the commands' output. */

/** The 12-hex-digit form docker shows for IDs (`stringid.TruncateID`): the algorithm prefix goes too. */
export function shortId(id: string): string {
  const colon = id.indexOf(":");
  return (colon === -1 ? id : id.slice(colon + 1)).slice(0, 12);
}

/** Cuts text to `max` characters, ending in "…" when cut (docker's `formatter.Ellipsis`). */
export function ellipsis(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  if (max <= 1) return chars.slice(0, max).join("");
  return `${chars.slice(0, max - 1).join("")}…`;
}

/** JSON the way docker's inspect prints it: 4-space indentation, no HTML escaping. */
export function indentedJson(value: unknown): string {
  return JSON.stringify(value, null, 4);
}
