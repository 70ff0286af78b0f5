import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatRule, parseActions, parseRule, type Rule } from "./acl.js";
import { keysDir } from "./index.js";
import { generateSigningKey, listSigningKeys, removeSigningKey } from "./keys.js";
import { generatePassword, hashPassword } from "./passwords.js";
import { type GrantSubject, UserStore } from "./users.js";

/**
 * Administration commands. They work on the data directory's database directly (also while the
 * registry runs: SQLite in WAL mode), so they need file access, not a network credential.
 */
export const ADMIN_USAGE = `Administration (each takes --data DIR, default $MINATO_REGISTRY_DATA or ./data):
  user add NAME [--admin] [--robot] [--password-stdin]   add a user (a password is generated unless read from stdin;
                                                         a robot has none and signs in with access tokens)
  user passwd NAME [--password-stdin]                    set a password (generated unless read from stdin)
  user admin NAME true|false                             make or unmake an admin (admins may do everything)
  user rm NAME | user ls
  group add NAME | group rm NAME | group ls
  group join GROUP USER | group leave GROUP USER
  grant (--user NAME | --group NAME) PATTERN ACTIONS     allow pull,push,delete (or *) on repositories
                                                         matching PATTERN (team-a/*, *, exact/name)
  revoke (--user NAME | --group NAME) PATTERN [ACTIONS]   take them away (all when no ACTIONS)
  grants [--user NAME | --group NAME]                    list grants
  public add PATTERN | public rm PATTERN | public ls     repositories anyone may pull, anonymous included
  token create --user NAME --name LABEL --scope PATTERN:ACTIONS [--scope ...] [--expires 90d]
                                                         a personal access token, usable as the password;
                                                         printed once
  token revoke ID | token ls [--user NAME]               revoke (access or refresh tokens) and list
  key rotate | key ls | key rm KID                       token signing keys: the newest signs, all are
                                                         trusted; restart the registry after a change
`;

export const ADMIN_COMMANDS = new Set(["user", "group", "grant", "revoke", "grants", "public", "token", "key"]);

type Out = (line: string) => void;

interface Parsed {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
}

const COMMON = { data: { type: "string" } } as const;

function parse(argv: string[], options: Record<string, { type: "string" | "boolean"; multiple?: boolean }>): Parsed {
  return parseArgs({ args: argv, options: { ...COMMON, ...options }, strict: true, allowPositionals: true }) as Parsed;
}

function dataDir(values: Parsed["values"]): string {
  return resolve((values.data as string | undefined) ?? process.env.MINATO_REGISTRY_DATA ?? "./data");
}

function openStore(values: Parsed["values"]): UserStore {
  return new UserStore(join(dataDir(values), "registry.db"));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

function expect(positionals: string[], count: number, usage: string): string[] {
  if (positionals.length !== count) throw new Error(`usage: minato-registry ${usage}`);
  return positionals;
}

function subjectOf(values: Parsed["values"]): GrantSubject {
  const user = values.user as string | undefined;
  const group = values.group as string | undefined;
  if (Boolean(user) === Boolean(group)) throw new Error("name exactly one of --user NAME or --group NAME");
  return user ? { user } : { group: group as string };
}

const date = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString().slice(0, 19).replace("T", " "));

function table(out: Out, rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  for (const row of rows) out(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "));
}

async function newPassword(values: Parsed["values"], out: Out, user: string): Promise<string> {
  if (values["password-stdin"]) {
    const password = await readStdin();
    if (password.length < 8) throw new Error("the password must have at least 8 characters");
    return password;
  }
  const password = generatePassword();
  out(`password for ${user}: ${password}`);
  return password;
}

/** The part of {@link ADMIN_USAGE} about one command: its lines and their continuation lines. */
export function adminHelp(command: string): string {
  const lines: string[] = [];
  let inside = false;
  for (const line of ADMIN_USAGE.split("\n").slice(1)) {
    if (/^ {2}\S/.test(line)) inside = line.startsWith(`  ${command} `) || line.trim() === command;
    if (inside && line.trim() !== "") lines.push(line);
  }
  return `Usage: minato-registry ${command} … (each takes --data DIR)\n${lines.join("\n")}\n`;
}

export async function adminCommand(command: string, argv: string[], out: Out = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(adminHelp(command));
    return;
  }
  switch (command) {
    case "user":
      return userCommand(argv, out);
    case "group":
      return groupCommand(argv, out);
    case "grant":
    case "revoke":
    case "grants":
      return grantCommand(command, argv, out);
    case "public":
      return publicCommand(argv, out);
    case "token":
      return tokenCommand(argv, out);
    case "key":
      return keyCommand(argv, out);
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}; see --help`);
  }
}

async function withStore<T>(values: Parsed["values"], work: (store: UserStore) => Promise<T> | T): Promise<T> {
  const store = openStore(values);
  try {
    return await work(store);
  } finally {
    store.close();
  }
}

async function userCommand(argv: string[], out: Out): Promise<void> {
  const { positionals, values } = parse(argv, {
    admin: { type: "boolean" },
    robot: { type: "boolean" },
    "password-stdin": { type: "boolean" },
  });
  const [action, ...args] = positionals;
  await withStore(values, async (store) => {
    switch (action) {
      case "add": {
        const [name] = expect(args, 1, "user add NAME [--admin] [--robot] [--password-stdin]") as [string];
        const robot = values.robot === true;
        if (robot && values["password-stdin"]) throw new Error("a robot account has no password; create an access token for it");
        const passwordHash = robot ? null : await hashPassword(await newPassword(values, out, name));
        store.addUser(name, { passwordHash, admin: values.admin === true, robot });
        out(`added ${robot ? "robot " : ""}${values.admin ? "admin " : "user "}${name}`);
        return;
      }
      case "passwd": {
        const [name] = expect(args, 1, "user passwd NAME [--password-stdin]") as [string];
        if (!store.getUser(name)) throw new Error(`no user ${name}`);
        store.setPassword(name, await hashPassword(await newPassword(values, out, name)));
        out(`password of ${name} changed; its refresh tokens are revoked`);
        return;
      }
      case "admin": {
        const [name, flag] = expect(args, 2, "user admin NAME true|false") as [string, string];
        if (!/^(true|false)$/.test(flag)) throw new Error("usage: minato-registry user admin NAME true|false");
        store.setAdmin(name, flag === "true");
        out(`${name} is ${flag === "true" ? "now" : "no longer"} an admin`);
        return;
      }
      case "rm": {
        const [name] = expect(args, 1, "user rm NAME") as [string];
        store.removeUser(name);
        out(`removed user ${name}, its grants and tokens`);
        return;
      }
      case "ls": {
        expect(args, 0, "user ls");
        table(out, [
          ["NAME", "ROLE", "GROUPS", "CREATED"],
          ...store
            .listUsers()
            .map((u) => [u.name, u.admin ? "admin" : u.robot ? "robot" : "user", u.groups.join(",") || "-", date(u.createdAt)]),
        ]);
        return;
      }
      default:
        throw new Error("usage: minato-registry user add|passwd|admin|rm|ls …");
    }
  });
}

async function groupCommand(argv: string[], out: Out): Promise<void> {
  const { positionals, values } = parse(argv, {});
  const [action, ...args] = positionals;
  await withStore(values, (store) => {
    switch (action) {
      case "add": {
        const [name] = expect(args, 1, "group add NAME") as [string];
        store.addGroup(name);
        return out(`added group ${name}`);
      }
      case "rm": {
        const [name] = expect(args, 1, "group rm NAME") as [string];
        store.removeGroup(name);
        return out(`removed group ${name} and its grants`);
      }
      case "join": {
        const [group, user] = expect(args, 2, "group join GROUP USER") as [string, string];
        store.addMember(group, user);
        return out(`${user} is in ${group}`);
      }
      case "leave": {
        const [group, user] = expect(args, 2, "group leave GROUP USER") as [string, string];
        store.removeMember(group, user);
        return out(`${user} left ${group}`);
      }
      case "ls":
        expect(args, 0, "group ls");
        return table(out, [["GROUP", "MEMBERS"], ...store.listGroups().map((g) => [g.name, g.members.join(",") || "-"])]);
      default:
        throw new Error("usage: minato-registry group add|rm|join|leave|ls …");
    }
  });
}

async function grantCommand(command: "grant" | "revoke" | "grants", argv: string[], out: Out): Promise<void> {
  const { positionals, values } = parse(argv, { user: { type: "string" }, group: { type: "string" } });
  await withStore(values, (store) => {
    if (command === "grants") {
      expect(positionals, 0, "grants [--user NAME | --group NAME]");
      const filter = values.user || values.group ? subjectOf(values) : undefined;
      return table(out, [
        ["SUBJECT", "PATTERN", "ACTIONS"],
        ...store.listGrants(filter).map((g) => [g.user ? `user:${g.user}` : `group:${g.group}`, g.pattern, g.actions.join(",")]),
      ]);
    }
    const subject = subjectOf(values);
    const who = "user" in subject ? `user ${subject.user}` : `group ${subject.group}`;
    if (command === "grant") {
      const [pattern, actions] = expect(positionals, 2, "grant (--user NAME | --group NAME) PATTERN ACTIONS") as [string, string];
      const now = store.grant(subject, pattern, parseActions(actions));
      return out(`${who} may ${now.join(",")} on ${pattern}`);
    }
    if (positionals.length < 1 || positionals.length > 2)
      throw new Error("usage: minato-registry revoke (--user NAME | --group NAME) PATTERN [ACTIONS]");
    const [pattern, actions] = positionals as [string, string | undefined];
    const left = store.revoke(subject, pattern, actions ? parseActions(actions) : undefined);
    return out(left.length > 0 ? `${who} may now ${left.join(",")} on ${pattern}` : `${who} has no grant on ${pattern} any more`);
  });
}

async function publicCommand(argv: string[], out: Out): Promise<void> {
  const { positionals, values } = parse(argv, {});
  const [action, ...args] = positionals;
  await withStore(values, (store) => {
    switch (action) {
      case "add": {
        const [pattern] = expect(args, 1, "public add PATTERN") as [string];
        store.addPublic(pattern);
        return out(`anyone may pull ${pattern}`);
      }
      case "rm": {
        const [pattern] = expect(args, 1, "public rm PATTERN") as [string];
        store.removePublic(pattern);
        return out(`${pattern} is no longer public`);
      }
      case "ls":
        expect(args, 0, "public ls");
        for (const pattern of store.listPublic()) out(pattern);
        return;
      default:
        throw new Error("usage: minato-registry public add|rm|ls …");
    }
  });
}

function parseExpiry(text: string): number {
  const match = /^(\d+)(h|d)$/.exec(text);
  if (!match) throw new Error("--expires takes hours or days, e.g. 12h or 90d");
  return Date.now() + Number(match[1]) * (match[2] === "h" ? 3_600_000 : 86_400_000);
}

async function tokenCommand(argv: string[], out: Out): Promise<void> {
  const { positionals, values } = parse(argv, {
    user: { type: "string" },
    name: { type: "string" },
    scope: { type: "string", multiple: true },
    expires: { type: "string" },
  });
  const [action, ...args] = positionals;
  await withStore(values, (store) => {
    switch (action) {
      case "create": {
        expect(args, 0, "token create --user NAME --name LABEL --scope PATTERN:ACTIONS [--scope …] [--expires 90d]");
        const user = values.user as string | undefined;
        const name = values.name as string | undefined;
        const scopes: Rule[] = ((values.scope as string[] | undefined) ?? []).map(parseRule);
        if (!user || !name || scopes.length === 0) throw new Error("token create needs --user, --name and at least one --scope");
        const expiresAt = values.expires ? parseExpiry(values.expires as string) : null;
        const { id, token } = store.createAccessToken(user, name, scopes, expiresAt);
        out(`token ${id} for ${user} (${scopes.map(formatRule).join(" ")}${expiresAt ? `, until ${date(expiresAt)}` : ""}):`);
        out(token);
        out("shown only now; use it as the password of its user");
        return;
      }
      case "revoke": {
        const [id] = expect(args, 1, "token revoke ID") as [string];
        const kind = store.revokeToken(id);
        return out(`revoked ${kind} token ${id}`);
      }
      case "ls":
        expect(args, 0, "token ls [--user NAME]");
        return table(out, [
          ["ID", "KIND", "USER", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE"],
          ...store
            .listTokens(values.user as string | undefined)
            .map((t) => [
              t.id,
              t.kind,
              t.user,
              t.name || "-",
              t.scopes || "-",
              date(t.createdAt),
              date(t.expiresAt),
              date(t.lastUsedAt),
              t.revokedAt !== null ? "revoked" : t.expiresAt !== null && t.expiresAt <= Date.now() ? "expired" : "live",
            ]),
        ]);
      default:
        throw new Error("usage: minato-registry token create|revoke|ls …");
    }
  });
}

async function keyCommand(argv: string[], out: Out): Promise<void> {
  const { positionals, values } = parse(argv, {});
  const [action, ...args] = positionals;
  const dir = keysDir(dataDir(values));
  switch (action) {
    case "rotate": {
      expect(args, 0, "key rotate");
      const key = await generateSigningKey(dir);
      return out(`new signing key ${key.kid}; restart the registry to sign with it (older keys stay trusted until removed)`);
    }
    case "rm": {
      const [kid] = expect(args, 1, "key rm KID") as [string];
      await removeSigningKey(dir, kid);
      return out(`removed key ${kid}; tokens it signed are refused after a restart`);
    }
    case "ls": {
      expect(args, 0, "key ls");
      const keys = await listSigningKeys(dir);
      return table(out, [
        ["KID", "ALG", "CREATED", "ROLE"],
        ...keys.map((k, i) => [k.kid, k.alg, date(k.createdAt), i === keys.length - 1 ? "signing" : "trusted"]),
      ]);
    }
    default:
      throw new Error("usage: minato-registry key rotate|ls|rm …");
  }
}
