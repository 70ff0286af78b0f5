/**
 * Resource scopes of Docker token authentication (docker-registry-auth scope.md):
 * `repository:samalba/my-app:pull,push`, `registry:catalog:*`, several separated by spaces.
 */

/** What the registry lets a token do on a repository. `*` in a grant or token means all of them. */
export type Action = "pull" | "push" | "delete";
export const REPOSITORY_ACTIONS: readonly Action[] = ["pull", "push", "delete"];

export interface ResourceScope {
  /** `repository`, `registry`, … without the deprecated resource class. */
  type: string;
  name: string;
  actions: string[];
}

/** The `access` claim entry of a token (jwt.md). */
export type AccessEntry = ResourceScope;

/** Reading a manifest, blob, tag list or referrers. */
export const PULL: readonly Action[] = ["pull"];
/** Writing a blob or manifest: Distribution asks for pull and push together (a push also reads). */
export const PUSH: readonly Action[] = ["pull", "push"];
export const DELETE: readonly Action[] = ["delete"];

/** The catalog is the `registry` resource `catalog`; clients ask for it with `*`. */
export const CATALOG: ResourceScope = { type: "registry", name: "catalog", actions: ["*"] };

export class ScopeError extends Error {}

const TYPE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
const ACTION = /^(?:[a-z]*|\*)$/;

/**
 * One `resourcetype:resourcename:action[,action]*`. The name may itself hold a colon (a registry host
 * with a port, `repository:host:5000/x:pull`), so the type ends at the first colon and the actions
 * start after the last one.
 */
export function parseScope(text: string): ResourceScope {
  const first = text.indexOf(":");
  const last = text.lastIndexOf(":");
  if (first <= 0 || last === first) throw new ScopeError(`invalid scope ${JSON.stringify(text.slice(0, 200))}`);
  const type = TYPE.exec(text.slice(0, first));
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1).split(",");
  if (!type || name === "" || /[\s,]/.test(name) || !actions.every((a) => ACTION.test(a))) {
    throw new ScopeError(`invalid scope ${JSON.stringify(text.slice(0, 200))}`);
  }
  // A resource class (`repository(plugin)`) is deprecated and ignored when authorizing.
  return { type: type[1] as string, name, actions: [...new Set(actions.filter((a) => a !== ""))] };
}

/** Every scope in space-separated lists (one `scope` parameter may hold several). */
export function parseScopes(values: readonly string[]): ResourceScope[] {
  const merged = new Map<string, ResourceScope>();
  for (const value of values) {
    for (const part of value.split(" ")) {
      if (part === "") continue;
      const scope = parseScope(part);
      const key = `${scope.type}:${scope.name}`;
      const seen = merged.get(key);
      if (seen) seen.actions = [...new Set([...seen.actions, ...scope.actions])];
      else merged.set(key, scope);
    }
  }
  return [...merged.values()];
}

export function formatScope(scope: ResourceScope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(",")}`;
}

/** Whether `action` is allowed on `type:name` by an `access` claim. */
export function accessAllows(access: readonly AccessEntry[], type: string, name: string, action: string): boolean {
  return access.some((e) => e.type === type && e.name === name && (e.actions.includes(action) || e.actions.includes("*")));
}

/** Whether the claim says anything about `type:name` (even an empty list of actions). */
export function accessMentions(access: readonly AccessEntry[], type: string, name: string): boolean {
  return access.some((e) => e.type === type && e.name === name);
}

/** Validates an `access` claim from a verified token; anything malformed makes the token invalid. */
export function parseAccessClaim(value: unknown): AccessEntry[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ScopeError("access claim is not an array");
  return value.map((entry) => {
    const e = entry as Record<string, unknown>;
    if (typeof e !== "object" || e === null || typeof e.type !== "string" || typeof e.name !== "string") {
      throw new ScopeError("malformed access entry");
    }
    const actions = e.actions ?? [];
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === "string")) throw new ScopeError("malformed access actions");
    const type = TYPE.exec(e.type);
    if (!type) throw new ScopeError("malformed access type");
    return { type: type[1] as string, name: e.name, actions: actions as string[] };
  });
}
