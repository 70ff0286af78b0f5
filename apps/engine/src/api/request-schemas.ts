// The shapes of the JSON bodies minatod reads (swagger ContainerConfig, HostConfig, ExecConfig …),
// checked before anything acts on them: a wrong type is a 400 that names the field, never a
// TypeError deep inside (`"Env":{"a":1}` was "overrides is not iterable", a 500). Fields minatod
// does not read pass through unchecked; the routes refuse or ignore them as before.
import { z } from "zod";
import { badRequest } from "./errors.js";

/** Sizes past which a request is hostile rather than useful (see limits in validateContainer). */
export const LIMITS = {
  /** Environment entries per container or exec; one entry (Linux MAX_ARG_STRLEN: 128 KiB). */
  envEntries: 4096,
  envEntryBytes: 128 * 1024,
  /** All of a process's environment and arguments together (below Linux's ARG_MAX of 2 MiB). */
  processBytes: 1024 * 1024,
  labels: 1024,
  labelBytes: 64 * 1024,
  labelsBytes: 1024 * 1024,
} as const;

// An int64 as Go decodes it: JSON numbers past 2^63-1 (or not exactly representable here) are refused.
const int64 = z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const nullable = <T extends z.ZodTypeAny>(schema: T) => schema.nullable().optional();
const strings = nullable(z.array(z.string()));
const stringMap = nullable(z.record(z.string(), z.string()));
const emptyObjects = nullable(z.record(z.string(), z.object({}).passthrough()));

const portBindings = nullable(
  z.record(z.string(), z.array(z.object({ HostIp: z.string().optional(), HostPort: z.string().optional() }).passthrough()).nullable()),
);

export const hostConfigSchema = z
  .object({
    Memory: int64.optional(),
    MemorySwap: int64.optional(),
    MemoryReservation: int64.optional(),
    NanoCpus: int64.optional(),
    CpuShares: int64.optional(),
    CpuQuota: int64.optional(),
    CpuPeriod: int64.optional(),
    PidsLimit: nullable(int64),
    ReadonlyRootfs: z.boolean().optional(),
    Tmpfs: stringMap,
    NetworkMode: z.string().optional(),
    AutoRemove: z.boolean().optional(),
    RestartPolicy: z.object({ Name: z.string().optional(), MaximumRetryCount: int64.optional() }).passthrough().optional(),
    PortBindings: portBindings,
    PublishAllPorts: z.boolean().optional(),
    ExtraHosts: strings,
    Dns: strings,
    DnsSearch: strings,
    DnsOptions: strings,
    Binds: strings,
    Mounts: nullable(z.array(z.object({}).passthrough())),
    VolumesFrom: strings,
  })
  .passthrough();

export const containerCreateSchema = z
  .object({
    Hostname: z.string().optional(),
    Domainname: z.string().optional(),
    User: z.string().optional(),
    AttachStdin: z.boolean().optional(),
    AttachStdout: z.boolean().optional(),
    AttachStderr: z.boolean().optional(),
    Tty: z.boolean().optional(),
    OpenStdin: z.boolean().optional(),
    StdinOnce: z.boolean().optional(),
    Env: strings,
    Cmd: strings,
    Entrypoint: strings,
    WorkingDir: z.string().optional(),
    Labels: stringMap,
    Image: z.string().optional(),
    StopSignal: z.string().optional(),
    StopTimeout: nullable(int64),
    ExposedPorts: emptyObjects,
    Volumes: emptyObjects,
    HostConfig: nullable(hostConfigSchema),
    NetworkingConfig: nullable(
      z.object({ EndpointsConfig: nullable(z.record(z.string(), z.object({ Aliases: strings }).passthrough().nullable())) }).passthrough(),
    ),
  })
  .passthrough();

export const execCreateSchema = z
  .object({
    AttachStdin: z.boolean().optional(),
    AttachStdout: z.boolean().optional(),
    AttachStderr: z.boolean().optional(),
    DetachKeys: z.string().optional(),
    Tty: z.boolean().optional(),
    Env: strings,
    Cmd: strings,
    Privileged: z.boolean().optional(),
    User: z.string().optional(),
    WorkingDir: z.string().optional(),
  })
  .passthrough();

export const networkCreateSchema = z
  .object({
    Name: z.string().optional(),
    Driver: z.string().optional(),
    Internal: z.boolean().optional(),
    EnableIPv6: z.boolean().optional(),
    IPAM: nullable(
      z
        .object({
          Driver: z.string().optional(),
          Config: nullable(
            z.array(
              z.object({ Subnet: z.string().optional(), IPRange: z.string().optional(), Gateway: z.string().optional() }).passthrough(),
            ),
          ),
        })
        .passthrough(),
    ),
    Options: stringMap,
    Labels: stringMap,
  })
  .passthrough();

export const networkConnectSchema = z
  .object({
    Container: z.string().optional(),
    Force: z.boolean().optional(),
    EndpointConfig: nullable(z.object({ Aliases: strings }).passthrough()),
  })
  .passthrough();

export const volumeCreateSchema = z
  .object({ Name: z.string().optional(), Driver: z.string().optional(), DriverOpts: stringMap, Labels: stringMap })
  .passthrough();

/** `value` checked against `schema`: the first problem as a 400 naming the field (`HostConfig.Memory`). */
export function parseBody<T extends z.ZodTypeAny>(schema: T, value: unknown, what: string): z.infer<T> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw badRequest(`invalid ${what}: expected a JSON object`);
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join(".") || what;
  throw badRequest(`invalid ${what}: ${field}: ${issueText(issue, value)}`);
}

function issueText(issue: z.ZodIssue, body: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      // In JSON's words: a record is an object.
      return `expected ${issue.expected === "record" ? "object" : issue.expected}, got ${jsonType(valueAt(body, issue.path))}`;
    case "too_big":
    case "too_small":
    case "not_multiple_of":
      return "not a 64-bit integer";
    default:
      return issue.message;
  }
}

/** Environment entries within the limits: at most so many, none too long, not too much in all. */
export function checkEnv(env: readonly string[] | null | undefined, field: string, extra: readonly string[] = []): void {
  if (!env) return;
  if (env.length > LIMITS.envEntries) throw badRequest(`${field}: ${env.length} entries, at most ${LIMITS.envEntries} allowed`);
  let total = 0;
  for (const entry of [...env, ...extra]) {
    const size = Buffer.byteLength(entry);
    if (size > LIMITS.envEntryBytes) throw badRequest(`${field}: an entry of ${size} bytes, at most ${LIMITS.envEntryBytes} allowed`);
    total += size + 1;
  }
  if (total > LIMITS.processBytes)
    throw badRequest(`${field}: ${total} bytes of environment and arguments, at most ${LIMITS.processBytes} allowed`);
}

/** Labels within the limits. */
export function checkLabels(labels: Record<string, string> | null | undefined, field: string): void {
  if (!labels) return;
  const entries = Object.entries(labels);
  if (entries.length > LIMITS.labels) throw badRequest(`${field}: ${entries.length} labels, at most ${LIMITS.labels} allowed`);
  let total = 0;
  for (const [key, value] of entries) {
    const size = Buffer.byteLength(key) + Buffer.byteLength(value);
    if (size > LIMITS.labelBytes)
      throw badRequest(`${field}: label ${JSON.stringify(key.slice(0, 64))} is ${size} bytes, at most ${LIMITS.labelBytes} allowed`);
    total += size;
  }
  if (total > LIMITS.labelsBytes) throw badRequest(`${field}: ${total} bytes of labels, at most ${LIMITS.labelsBytes} allowed`);
}

/** What the client sent at `path` of its body. */
function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) value = value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

/** A JSON value's type, in the words of the API's errors. */
function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value === undefined) return "nothing";
  return typeof value;
}
