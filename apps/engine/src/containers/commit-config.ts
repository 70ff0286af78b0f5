// The config of a committed image (moby daemon/commit.go): the request's config, or else the
// container's, with the `changes` (Dockerfile instructions, `docker commit -c`) applied, then its
// empty fields filled from the container's config.
import { DockerfileError, expandInstruction, normalizeExposedPorts, parseDockerfile, type StageInstruction } from "@minato/dockerfile";
import { badRequest } from "../api/errors.js";

export type RunConfig = Record<string, unknown>;

/** The instructions `docker commit --change` accepts (moby builder/dockerfile validCommitCommands). */
const COMMIT_INSTRUCTIONS = new Set([
  "cmd",
  "entrypoint",
  "env",
  "expose",
  "healthcheck",
  "label",
  "onbuild",
  "stopsignal",
  "user",
  "volume",
  "workdir",
]);

/** The fields of a container config that belong in an image config (image-spec config.md `config`, plus Docker's). */
const IMAGE_FIELDS = [
  "User",
  "ExposedPorts",
  "Env",
  "Entrypoint",
  "Cmd",
  "Volumes",
  "WorkingDir",
  "Labels",
  "StopSignal",
  "Healthcheck",
  "OnBuild",
  "Shell",
  "ArgsEscaped",
] as const;

const isEmpty = (value: unknown) =>
  value === undefined ||
  value === null ||
  value === "" ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === "object" && !Array.isArray(value) && Object.keys(value as object).length === 0);

export function imageFields(config: RunConfig): RunConfig {
  const out: RunConfig = {};
  for (const key of IMAGE_FIELDS) {
    const value = config[key];
    if (!isEmpty(value)) out[key] = value;
  }
  return out;
}

function envKey(entry: string): string {
  const eq = entry.indexOf("=");
  return eq === -1 ? entry : entry.slice(0, eq);
}

function envMap(config: RunConfig): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of (config.Env as string[] | undefined) ?? []) {
    const eq = entry.indexOf("=");
    env.set(envKey(entry), eq === -1 ? "" : entry.slice(eq + 1));
  }
  return env;
}

/** Parses `changes` as Dockerfile lines (one instruction each, as moby joins them) and applies them in order. */
export function applyCommitChanges(config: RunConfig, changes: string[]): RunConfig {
  const lines = changes.filter((change) => change.trim() !== "");
  if (lines.length === 0) return config;
  let instructions: StageInstruction[];
  try {
    const parsed = parseDockerfile(`FROM scratch\n${lines.join("\n")}\n`);
    // A FROM among the changes starts a stage of its own.
    if (parsed.stages.length > 1) throw badRequest("FROM is not a valid change command");
    instructions = parsed.stages[0]?.instructions ?? [];
  } catch (error) {
    if (error instanceof DockerfileError) throw badRequest(`invalid change: ${error.message}`);
    throw error;
  }
  const c: RunConfig = structuredClone(config);
  let cmdSet = false;
  for (const raw of instructions) {
    if (!COMMIT_INSTRUCTIONS.has(raw.kind)) throw badRequest(`${raw.keyword.toUpperCase()} is not a valid change command`);
    let instruction: StageInstruction;
    try {
      instruction = expandInstruction(raw, envMap(c)).instruction as StageInstruction;
    } catch (error) {
      if (error instanceof DockerfileError) throw badRequest(`invalid change ${JSON.stringify(raw.original)}: ${error.message}`);
      throw error;
    }
    const shell = (c.Shell as string[] | undefined) ?? ["/bin/sh", "-c"];
    const command = (value: { form: "shell"; text: string } | { form: "exec"; args: string[] }) =>
      value.form === "exec" ? value.args : [...shell, value.text];
    switch (instruction.kind) {
      case "cmd":
        c.Cmd = command(instruction.command);
        cmdSet = true;
        break;
      case "entrypoint":
        c.Entrypoint = command(instruction.command);
        // As in a build: ENTRYPOINT resets a CMD that this commit did not set.
        if (!cmdSet) c.Cmd = null;
        break;
      case "env": {
        const set = new Map(instruction.pairs.map((p) => [p.key, p.value]));
        const kept = ((c.Env as string[] | undefined) ?? []).filter((entry) => !set.has(envKey(entry)));
        c.Env = [...kept, ...instruction.pairs.map((p) => `${p.key}=${p.value}`)];
        break;
      }
      case "expose": {
        let ports: string[];
        try {
          ports = normalizeExposedPorts(instruction.ports);
        } catch (error) {
          throw badRequest(`invalid change ${JSON.stringify(raw.original)}: ${(error as Error).message}`);
        }
        c.ExposedPorts = { ...((c.ExposedPorts as object | undefined) ?? {}), ...Object.fromEntries(ports.map((p) => [p, {}])) };
        break;
      }
      case "label":
        c.Labels = {
          ...((c.Labels as Record<string, string> | undefined) ?? {}),
          ...Object.fromEntries(instruction.pairs.map((p) => [p.key, p.value])),
        };
        break;
      case "onbuild":
        c.OnBuild = [...((c.OnBuild as string[] | undefined) ?? []), instruction.expression];
        break;
      case "stopsignal":
        c.StopSignal = instruction.signal;
        break;
      case "user":
        c.User = instruction.user;
        break;
      case "volume":
        c.Volumes = { ...((c.Volumes as object | undefined) ?? {}), ...Object.fromEntries(instruction.paths.map((p) => [p, {}])) };
        break;
      case "workdir":
        c.WorkingDir = instruction.path.startsWith("/")
          ? instruction.path
          : `${((c.WorkingDir as string | undefined) || "/").replace(/\/$/, "")}/${instruction.path}`;
        break;
      case "healthcheck": {
        const health: RunConfig = { Test: instruction.test };
        if (instruction.interval) health.Interval = instruction.interval;
        if (instruction.timeout) health.Timeout = instruction.timeout;
        if (instruction.startPeriod) health.StartPeriod = instruction.startPeriod;
        if (instruction.startInterval) health.StartInterval = instruction.startInterval;
        if (instruction.retries) health.Retries = instruction.retries;
        c.Healthcheck = health;
        break;
      }
    }
  }
  return c;
}

/** moby daemon/commit.go `merge`: what the user's config leaves empty comes from the container's. */
export function mergeConfig(user: RunConfig, container: RunConfig): RunConfig {
  const out: RunConfig = { ...user };
  if (isEmpty(out.User)) out.User = container.User;
  out.ExposedPorts = { ...((container.ExposedPorts as object | undefined) ?? {}), ...((out.ExposedPorts as object | undefined) ?? {}) };
  if (isEmpty(out.Env)) out.Env = container.Env;
  else {
    const keys = new Set(((out.Env as string[]) ?? []).map(envKey));
    out.Env = [...(out.Env as string[]), ...((container.Env as string[] | undefined) ?? []).filter((e) => !keys.has(envKey(e)))];
  }
  out.Labels = { ...((container.Labels as object | undefined) ?? {}), ...((out.Labels as object | undefined) ?? {}) };
  if (isEmpty(out.Entrypoint)) {
    if (isEmpty(out.Cmd)) out.Cmd = container.Cmd;
    if (out.Entrypoint === undefined) out.Entrypoint = container.Entrypoint;
  }
  if (isEmpty(out.Healthcheck)) out.Healthcheck = container.Healthcheck;
  if (isEmpty(out.WorkingDir)) out.WorkingDir = container.WorkingDir;
  out.Volumes = { ...((container.Volumes as object | undefined) ?? {}), ...((out.Volumes as object | undefined) ?? {}) };
  if (isEmpty(out.StopSignal)) out.StopSignal = container.StopSignal;
  if (isEmpty(out.OnBuild)) out.OnBuild = container.OnBuild;
  if (isEmpty(out.Shell)) out.Shell = container.Shell;
  return imageFields(out);
}
