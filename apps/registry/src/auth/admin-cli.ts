import { join, resolve } from "node:path";
import { Command, CommanderError } from "commander";
import { AuditLog, localUser } from "../audit.js";
import { formatRule, parseActions, parseRule, type Rule } from "./acl.js";
import { keysDir } from "./index.js";
import { generateSigningKey, listSigningKeys, removeSigningKey } from "./keys.js";
import { generatePassword, hashPassword } from "./passwords.js";
import { type GrantSubject, UserStore } from "./users.js";

type Out = (line: string) => void;
type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * Administration commands. They work on the data directory's database directly (also while the
 * registry runs: SQLite in WAL mode), so they need file access, not a network credential.
 */
export const ADMIN_COMMANDS = ["user", "group", "grant", "revoke", "grants", "public", "token", "key"] as const;

const DATA_HELP = "data directory [MINATO_REGISTRY_DATA; default ./data]";
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function dataDir(values: Values): string {
  return resolve((values.data as string | undefined) ?? (process.env.MINATO_REGISTRY_DATA || "./data"));
}

function openStore(values: Values): UserStore {
  return new UserStore(join(dataDir(values), "registry.db"));
}

/** A group of subcommands (`user add|passwd|…`), with --data for all of them. */
function group(program: Command, name: string, description: string): Command {
  return program.command(name).description(description).option("--data <dir>", DATA_HELP);
}

/** A command's action, given its arguments and its options merged with its group's (--data). */
function act(command: Command, run: (args: string[], values: Values) => Promise<void> | void): Command {
  return command.action(async (...params: unknown[]) => {
    const self = params[params.length - 1] as Command;
    const values = self.optsWithGlobals() as Values;
    await run(self.processedArgs as string[], values);
    recordChange(self, values);
  });
}

/** Commands that only show things leave no audit entry. */
const READ_ONLY = new Set(["ls", "grants"]);

/** An audit entry for a change made by an admin command (`user add alice`, `grant --user bob team/* pull`). */
function recordChange(command: Command, values: Values): void {
  if (READ_ONLY.has(command.name())) return;
  const path =
    command.parent && command.parent.name() !== "minato-registry" && command.parent.parent
      ? `${command.parent.name()} ${command.name()}`
      : command.name();
  const subject = values.user ? `user:${values.user}` : values.group ? `group:${values.group}` : undefined;
  const audit = new AuditLog(join(dataDir(values), "registry.db"));
  try {
    audit.record({
      actor: localUser(),
      address: "local",
      action: path,
      target: [subject, ...(command.processedArgs as string[])].filter(Boolean).join(" "),
      ...(values.admin || values.robot ? { detail: { admin: values.admin === true, robot: values.robot === true } } : {}),
    });
  } finally {
    audit.close();
  }
}

/**
 * Adds the administration commands to the registry's program; `out` receives their output lines.
 * A new command group is one more function called here.
 */
export function addAdminCommands(program: Command, out: Out = (l) => process.stdout.write(`${l}\n`)): Command {
  userCommands(program, out);
  groupCommands(program, out);
  grantCommands(program, out);
  publicCommands(program, out);
  tokenCommands(program, out);
  keyCommands(program, out);
  return program;
}

/** Runs one administration command line (`user add NAME`), as `minato-registry` would. */
export async function adminCommand(command: string, argv: string[], out?: Out): Promise<void> {
  const program = addAdminCommands(adminProgram(), out);
  try {
    await program.parseAsync([command, ...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) throw new Error(error.message.replace(/^error: /, ""));
    throw error;
  }
}

function adminProgram(): Command {
  return new Command("minato-registry")
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .configureHelp({ showGlobalOptions: true });
}

/** The help of one administration command group, as `minato-registry COMMAND --help` prints it. */
export function adminHelp(command: string): string {
  const program = addAdminCommands(adminProgram());
  const sub = program.commands.find((c) => c.name() === command);
  if (!sub) throw new Error(`no command ${command}`);
  return [sub.helpInformation(), ...sub.commands.map((c) => c.helpInformation())].join("\n");
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

function subjectOf(values: Values): GrantSubject {
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

async function newPassword(values: Values, out: Out, user: string): Promise<string> {
  if (values.passwordStdin) {
    const password = await readStdin();
    if (password.length < 8) throw new Error("the password must have at least 8 characters");
    return password;
  }
  const password = generatePassword();
  out(`password for ${user}: ${password}`);
  return password;
}

async function withStore<T>(values: Values, work: (store: UserStore) => Promise<T> | T): Promise<T> {
  const store = openStore(values);
  try {
    return await work(store);
  } finally {
    store.close();
  }
}

function userCommands(program: Command, out: Out): void {
  const user = group(program, "user", "add, change and remove users");
  act(
    user
      .command("add <name>")
      .description("add a user (a password is generated unless read from stdin; a robot has none and signs in with access tokens)")
      .option("--admin", "an admin (may do everything)")
      .option("--robot", "a robot account: no password, access tokens only")
      .option("--password-stdin", "read the password from stdin"),
    (args, values) =>
      withStore(values, async (store) => {
        const name = args[0] as string;
        const robot = values.robot === true;
        if (robot && values.passwordStdin) throw new Error("a robot account has no password; create an access token for it");
        const passwordHash = robot ? null : await hashPassword(await newPassword(values, out, name));
        store.addUser(name, { passwordHash, admin: values.admin === true, robot });
        out(`added ${robot ? "robot " : ""}${values.admin ? "admin " : "user "}${name}`);
      }),
  );
  act(
    user
      .command("passwd <name>")
      .description("set a password (generated unless read from stdin)")
      .option("--password-stdin", "read the password from stdin"),
    (args, values) =>
      withStore(values, async (store) => {
        const name = args[0] as string;
        if (!store.getUser(name)) throw new Error(`no user ${name}`);
        store.setPassword(name, await hashPassword(await newPassword(values, out, name)));
        out(`password of ${name} changed; its refresh tokens are revoked`);
      }),
  );
  act(user.command("admin <name> <true|false>").description("make or unmake an admin (admins may do everything)"), (args, values) =>
    withStore(values, (store) => {
      const [name, flag] = args as [string, string];
      if (!/^(true|false)$/.test(flag)) throw new Error("usage: minato-registry user admin NAME true|false");
      store.setAdmin(name, flag === "true");
      out(`${name} is ${flag === "true" ? "now" : "no longer"} an admin`);
    }),
  );
  act(user.command("rm <name>").description("remove a user, its grants and tokens"), (args, values) =>
    withStore(values, (store) => {
      store.removeUser(args[0] as string);
      out(`removed user ${args[0]}, its grants and tokens`);
    }),
  );
  act(user.command("ls").description("list users"), (_, values) =>
    withStore(values, (store) =>
      table(out, [
        ["NAME", "ROLE", "GROUPS", "CREATED"],
        ...store
          .listUsers()
          .map((u) => [u.name, u.admin ? "admin" : u.robot ? "robot" : "user", u.groups.join(",") || "-", date(u.createdAt)]),
      ]),
    ),
  );
}

function groupCommands(program: Command, out: Out): void {
  const groups = group(program, "group", "groups of users, granted rights together");
  act(groups.command("add <name>").description("add a group"), (args, values) =>
    withStore(values, (store) => {
      store.addGroup(args[0] as string);
      out(`added group ${args[0]}`);
    }),
  );
  act(groups.command("rm <name>").description("remove a group and its grants"), (args, values) =>
    withStore(values, (store) => {
      store.removeGroup(args[0] as string);
      out(`removed group ${args[0]} and its grants`);
    }),
  );
  act(groups.command("join <group> <user>").description("add a user to a group"), (args, values) =>
    withStore(values, (store) => {
      const [name, user] = args as [string, string];
      store.addMember(name, user);
      out(`${user} is in ${name}`);
    }),
  );
  act(groups.command("leave <group> <user>").description("take a user out of a group"), (args, values) =>
    withStore(values, (store) => {
      const [name, user] = args as [string, string];
      store.removeMember(name, user);
      out(`${user} left ${name}`);
    }),
  );
  act(groups.command("ls").description("list groups and their members"), (_, values) =>
    withStore(values, (store) =>
      table(out, [["GROUP", "MEMBERS"], ...store.listGroups().map((g) => [g.name, g.members.join(",") || "-"])]),
    ),
  );
}

function grantCommands(program: Command, out: Out): void {
  const subject = (command: Command) => command.option("--user <name>", "a user").option("--group <name>", "a group");
  const who = (s: GrantSubject) => ("user" in s ? `user ${s.user}` : `group ${s.group}`);
  act(
    subject(group(program, "grant", "allow pull,push,delete (or *) on repositories matching PATTERN (team-a/*, *, exact/name)"))
      .usage("(--user NAME | --group NAME) PATTERN ACTIONS")
      .argument("<pattern>")
      .argument("<actions>"),
    (args, values) =>
      withStore(values, (store) => {
        const [pattern, actions] = args as [string, string];
        const s = subjectOf(values);
        const now = store.grant(s, pattern, parseActions(actions));
        out(`${who(s)} may ${now.join(",")} on ${pattern}`);
      }),
  );
  act(
    subject(group(program, "revoke", "take rights away (all of them when no ACTIONS)"))
      .usage("(--user NAME | --group NAME) PATTERN [ACTIONS]")
      .argument("<pattern>")
      .argument("[actions]"),
    (args, values) =>
      withStore(values, (store) => {
        const [pattern, actions] = args as [string, string | undefined];
        const s = subjectOf(values);
        const left = store.revoke(s, pattern, actions ? parseActions(actions) : undefined);
        out(left.length > 0 ? `${who(s)} may now ${left.join(",")} on ${pattern}` : `${who(s)} has no grant on ${pattern} any more`);
      }),
  );
  act(subject(group(program, "grants", "list grants")).usage("[--user NAME | --group NAME]"), (_, values) =>
    withStore(values, (store) => {
      const filter = values.user || values.group ? subjectOf(values) : undefined;
      table(out, [
        ["SUBJECT", "PATTERN", "ACTIONS"],
        ...store.listGrants(filter).map((g) => [g.user ? `user:${g.user}` : `group:${g.group}`, g.pattern, g.actions.join(",")]),
      ]);
    }),
  );
}

function publicCommands(program: Command, out: Out): void {
  const pub = group(program, "public", "repositories anyone may pull, anonymous included");
  act(pub.command("add <pattern>").description("make repositories matching PATTERN public"), (args, values) =>
    withStore(values, (store) => {
      store.addPublic(args[0] as string);
      out(`anyone may pull ${args[0]}`);
    }),
  );
  act(pub.command("rm <pattern>").description("make them private again"), (args, values) =>
    withStore(values, (store) => {
      store.removePublic(args[0] as string);
      out(`${args[0]} is no longer public`);
    }),
  );
  act(pub.command("ls").description("list public patterns"), (_, values) =>
    withStore(values, (store) => {
      for (const pattern of store.listPublic()) out(pattern);
    }),
  );
}

function parseExpiry(text: string): number {
  const match = /^(\d+)(h|d)$/.exec(text);
  if (!match) throw new Error("--expires takes hours or days, e.g. 12h or 90d");
  return Date.now() + Number(match[1]) * (match[2] === "h" ? 3_600_000 : 86_400_000);
}

function tokenCommands(program: Command, out: Out): void {
  const token = group(program, "token", "personal access tokens");
  act(
    token
      .command("create")
      .description("a personal access token, usable as the password of its user; printed once")
      .requiredOption("--user <name>", "the user it acts as")
      .requiredOption("--name <label>", "a label to recognise it by")
      .option("--scope <pattern:actions>", "what it may do, e.g. team-a/*:pull,push (repeatable)", collect)
      .option("--expires <duration>", "lifetime in hours or days, e.g. 12h or 90d"),
    (_, values) =>
      withStore(values, (store) => {
        const user = values.user as string;
        const name = values.name as string;
        const scopes: Rule[] = ((values.scope as string[] | undefined) ?? []).map(parseRule);
        if (scopes.length === 0) throw new Error("token create needs at least one --scope PATTERN:ACTIONS");
        const expiresAt = values.expires ? parseExpiry(values.expires as string) : null;
        const { id, token: secret } = store.createAccessToken(user, name, scopes, expiresAt);
        out(`token ${id} for ${user} (${scopes.map(formatRule).join(" ")}${expiresAt ? `, until ${date(expiresAt)}` : ""}):`);
        out(secret);
        out("shown only now; use it as the password of its user");
      }),
  );
  act(token.command("revoke <id>").description("revoke an access or refresh token"), (args, values) =>
    withStore(values, (store) => {
      const kind = store.revokeToken(args[0] as string);
      out(`revoked ${kind} token ${args[0]}`);
    }),
  );
  act(token.command("ls").description("list tokens").option("--user <name>", "only this user's"), (_, values) =>
    withStore(values, (store) =>
      table(out, [
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
      ]),
    ),
  );
}

function keyCommands(program: Command, out: Out): void {
  const key = group(program, "key", "token signing keys: the newest signs, all are trusted; restart the registry after a change");
  act(key.command("rotate").description("make a new signing key"), async (_, values) => {
    const made = await generateSigningKey(keysDir(dataDir(values)));
    out(`new signing key ${made.kid}; restart the registry to sign with it (older keys stay trusted until removed)`);
  });
  act(key.command("rm <kid>").description("remove a key (a key ID may start with '-': pass it after --)"), async (args, values) => {
    await removeSigningKey(keysDir(dataDir(values)), args[0] as string);
    out(`removed key ${args[0]}; tokens it signed are refused after a restart`);
  });
  act(key.command("ls").description("list keys"), async (_, values) => {
    const keys = await listSigningKeys(keysDir(dataDir(values)));
    table(out, [
      ["KID", "ALG", "CREATED", "ROLE"],
      ...keys.map((k, i) => [k.kid, k.alg, date(k.createdAt), i === keys.length - 1 ? "signing" : "trusted"]),
    ]);
  });
}
