import { type Action, REPOSITORY_ACTIONS } from "./scope.js";

/**
 * Access control: grants of actions on repository patterns. A pattern is a repository name in which
 * `*` stands for any run of characters, slashes included: `team-a/*` covers everything under
 * `team-a/`, `*` covers every repository.
 */
export interface Rule {
  pattern: string;
  actions: Action[];
}

const PATTERN = /^[a-z0-9*][a-z0-9._\-/*]{0,254}$/;

export function isValidPattern(pattern: string): boolean {
  return PATTERN.test(pattern) && !pattern.includes("//");
}

const compiled = new Map<string, RegExp>();

export function matchesPattern(pattern: string, name: string): boolean {
  let regex = compiled.get(pattern);
  if (!regex) {
    const body = pattern
      .split("*")
      .map((part) => part.replace(/[.\\+?^${}()|[\]-]/g, "\\$&"))
      .join(".*");
    regex = new RegExp(`^${body}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, regex);
  }
  return regex.test(name);
}

/** `pull,push`, `*` → actions; throws on anything else. */
export function parseActions(text: string): Action[] {
  const actions = new Set<Action>();
  for (const raw of text.split(",")) {
    const action = raw.trim();
    if (action === "*") for (const a of REPOSITORY_ACTIONS) actions.add(a);
    else if ((REPOSITORY_ACTIONS as readonly string[]).includes(action)) actions.add(action as Action);
    else throw new Error(`unknown action ${JSON.stringify(action)} (use pull, push, delete or *)`);
  }
  return REPOSITORY_ACTIONS.filter((a) => actions.has(a));
}

/** What one subject may do: its own and its groups' grants, public repositories, admin rights, and
 * for a personal access token the token's own scope on top (the token never exceeds its owner). */
export interface Permissions {
  admin: boolean;
  rules: Rule[];
  publicPatterns: string[];
  /** A personal access token's scope: the result is cut down to it. */
  restrict?: Rule[];
}

export function permittedActions(permissions: Permissions, repository: string): Set<Action> {
  const allowed = new Set<Action>();
  if (permissions.admin) for (const a of REPOSITORY_ACTIONS) allowed.add(a);
  else {
    for (const rule of permissions.rules) if (matchesPattern(rule.pattern, repository)) for (const a of rule.actions) allowed.add(a);
    if (permissions.publicPatterns.some((p) => matchesPattern(p, repository))) allowed.add("pull");
  }
  if (permissions.restrict) {
    const limit = new Set<Action>();
    for (const rule of permissions.restrict) if (matchesPattern(rule.pattern, repository)) for (const a of rule.actions) limit.add(a);
    for (const a of allowed) if (!limit.has(a)) allowed.delete(a);
  }
  return allowed;
}

/** `team-a/*:pull,push` → a rule (the actions follow the last colon). */
export function parseRule(text: string): Rule {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) throw new Error(`scope ${JSON.stringify(text)} must be PATTERN:ACTIONS, e.g. team-a/*:pull,push`);
  const pattern = text.slice(0, colon);
  if (!isValidPattern(pattern)) throw new Error(`invalid repository pattern ${JSON.stringify(pattern)}`);
  return { pattern, actions: parseActions(text.slice(colon + 1)) };
}

export function formatRule(rule: Rule): string {
  return `${rule.pattern}:${rule.actions.join(",")}`;
}
