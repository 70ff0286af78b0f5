// The builder: a Dockerfile and a context become an OCI image, step by step as Docker's classic
// builder reports them. Metadata instructions change the config and add an `empty_layer` history
// entry; COPY, ADD and WORKDIR (when it must create the directory) add a layer built in a private
// tree that mirrors the target paths, packed deterministically, gzipped and unpacked as a snapshot
// on the parent chain. Every step has a cache key (parent + instruction after expansion + what it
// read); a hit reuses the step's recorded result, so an unchanged rebuild gives the same image ID.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lchown, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import {
  createMatcher,
  type Dockerfile,
  DockerfileError,
  type EnvLookup,
  expandInstruction,
  type Instruction,
  normalizeExposedPorts,
  parseTrigger,
  planStages,
  platformArgs,
  type RunInstruction,
  resolveArg,
  resolveGlobalArgs,
  runScript,
  type StageInstruction,
  type StagePlan,
} from "@minato/dockerfile";
import { applyLayer, diffDirectory, type LayerCompression, packDirectory } from "@minato/layers";
import { type Digest, hostPlatform, MediaType, parsePlatform } from "@minato/oci";
import { Runtime } from "@minato/runtime";
import { ApiError } from "../api/errors.js";
import type { ImageConfig } from "../distribution/pull.js";
import { pullImage } from "../distribution/pull.js";
import type { Engine } from "../engine.js";
import type { LayerRecord } from "../image-store.js";
import { imageConfig, parseReferenceOrThrow } from "../images.js";
import { recompressLayer, storeLayer, writeImage } from "../layer-commit.js";
import { mountReadOnlyOverlay, unmount } from "../overlay.js";
import { type JsonMessage, type ProgressSink, shortId } from "../progress.js";
import { chainIds } from "../snapshots.js";
import { BuildCache, type CachedLayer, type CachedStep } from "./cache.js";
import { cacheMounts } from "./cache-mounts.js";
import type { BuildContext } from "./context.js";
import { download, isGitSource, isUrl, parseChecksum, urlFileName } from "./download.js";
import {
  type CopyOptions,
  copyEntry,
  DiskTree,
  expandSource,
  hasGlob,
  pathDigest,
  resolveIn,
  resolvePath,
  type SourceTree,
  treeDigest,
} from "./fs.js";
import { runStep } from "./run.js";
import {
  type Materialized,
  MountError,
  type MountSources,
  materializeMounts,
  mountsKey,
  type ResolvedMount,
  resolveMounts,
} from "./run-mounts.js";

/** Why a RUN cannot be built yet (its flags), or undefined. */
export function runUnsupported(run: RunInstruction): string | undefined {
  const line = `dockerfile line ${run.location.line}`;
  const ssh = run.mounts.find((m) => m.type === "ssh");
  if (ssh) return `${line}: RUN --mount=type=ssh is not supported (no SSH agent forwarding in this engine)`;
  if (run.security !== undefined && run.security !== "sandbox") return `${line}: RUN --security=${run.security} is not supported`;
  if (run.devices.length > 0) return `${line}: RUN --device is not supported`;
  return undefined;
}

export class BuildError extends Error {}

/** A stage stopped because another one failed. */
class StageAborted extends Error {}

export interface BuildOptions {
  dockerfile: Dockerfile;
  /** The build context, `.dockerignore` applied. */
  context: BuildContext;
  /** A private directory for the build's scratch trees (the caller removes it). */
  workDir: string;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string | undefined;
  noCache: boolean;
  pull: boolean;
  platform?: string | undefined;
  /** `RUN --mount=type=secret` values by id; kept in memory only, for this build. */
  secrets?: ReadonlyMap<string, Buffer> | undefined;
  /** How the image's new layers are compressed (a Minato extension; gzip, as the build cache keeps them, by default). */
  compression?: LayerCompression | undefined;
}

/** The Dockerfile's planned stages; throws a 400 for plan errors and for RUN flags not supported yet. */
export function planBuild(dockerfile: Dockerfile, buildArgs: Record<string, string>, target?: string): StagePlan[] {
  const globals = resolveGlobalArgs(dockerfile, { buildArgs, platform: platformArgs(hostPlatform()) });
  let plans: StagePlan[];
  try {
    plans = planStages(dockerfile, { globalArgs: globals, ...(target ? { target } : {}) });
  } catch (error) {
    throw new ApiError(400, (error as Error).message);
  }
  for (const plan of plans) {
    const stage = dockerfile.stages[plan.index];
    for (const instruction of stage?.instructions ?? []) {
      const run = instruction.kind === "run" ? instruction : undefined;
      const problem = run && runUnsupported(run);
      if (problem) throw new ApiError(400, problem);
    }
  }
  return plans;
}

type ContainerConfig = Record<string, unknown>;

interface StageState {
  key: string;
  config: ImageConfig & { config: ContainerConfig };
  layers: LayerRecord[];
  history: NonNullable<ImageConfig["history"]>;
  /** ARG values in scope. */
  args: Map<string, string>;
  cmdSet: boolean;
  /** Where the stage's progress goes (held back until the stages before it have printed theirs). */
  out: ProgressSink;
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

function envList(config: ContainerConfig): string[] {
  return (config.Env as string[] | undefined) ?? [];
}

function setEnv(config: ContainerConfig, key: string, value: string): void {
  const env = envList(config).filter((e) => e.slice(0, e.indexOf("=") === -1 ? undefined : e.indexOf("=")) !== key);
  config.Env = [...env, `${key}=${value}`];
}

/** What expansions see: ARGs in scope, overridden by ENV. */
function lookup(state: StageState): Map<string, string> {
  const env = new Map(state.args);
  for (const entry of envList(state.config.config)) {
    const eq = entry.indexOf("=");
    env.set(eq === -1 ? entry : entry.slice(0, eq), eq === -1 ? "" : entry.slice(eq + 1));
  }
  return env;
}

/** The instruction's meaning for the cache key: its parsed fields after expansion, without positions. */
function keyText(instruction: Instruction): string {
  const { location: _l, original: _o, keyword: _k, flags: _f, ...rest } = instruction as Instruction & Record<string, unknown>;
  if (rest.kind === "onbuild") delete rest.trigger;
  return JSON.stringify(rest);
}

function commandArgs(command: { form: "shell"; text: string } | { form: "exec"; args: string[] }, shell: string[]): string[] {
  return command.form === "exec" ? command.args : [...shell, command.text];
}

function parseOctalMode(value: string): number {
  if (!/^[0-7]{1,4}$/.test(value)) throw new BuildError(`invalid chmod parameter: ${value} (only octal modes are supported)`);
  return Number.parseInt(value, 8);
}

class Builder {
  readonly cache: BuildCache;
  readonly #work: string;
  readonly #states = new Map<number, StageState>();
  readonly #releases: (() => void)[] = [];
  readonly #epoch: number | undefined;
  readonly #buildArgs: Map<string, string>;
  readonly #consumed = new Set<string>(["SOURCE_DATE_EPOCH"]);
  readonly #globals: Map<string, string>;
  #steps = 0;
  #rootfsCount = 0;
  /** Read-only views by their top layer's chain ID, and the overlay mounts among them. */
  readonly #views = new Map<string, Promise<string>>();
  readonly #mounts: string[] = [];
  /** Blobs of the layers this build's steps added (cached or made): the image's new layers. */
  readonly #added = new Set<Digest>();
  #runtime: Runtime | undefined;

  constructor(
    readonly engine: Engine,
    readonly options: BuildOptions,
    readonly progress: ProgressSink,
    work: string,
  ) {
    this.cache = new BuildCache(engine.db);
    this.#work = work;
    this.#buildArgs = new Map(Object.entries(options.buildArgs));
    const epoch = options.buildArgs.SOURCE_DATE_EPOCH;
    if (epoch !== undefined) {
      if (!/^[0-9]+$/.test(epoch)) throw new ApiError(400, `invalid SOURCE_DATE_EPOCH: ${epoch}`);
      this.#epoch = Number.parseInt(epoch, 10);
    }
    this.#globals = resolveGlobalArgs(options.dockerfile, { buildArgs: this.#buildArgs, platform: platformArgs(hostPlatform()) });
    for (const g of options.dockerfile.globalArgs) for (const a of g.args) this.#consumed.add(a.name);
  }

  /** Output text for a stage's sink (see {@link run}), or straight to the client. */
  say(text: string, out: ProgressSink = this.progress): void {
    out({ stream: text });
  }

  now(): string {
    return this.#epoch !== undefined ? new Date(this.#epoch * 1000).toISOString() : new Date().toISOString();
  }

  lease(keys: string[]): void {
    this.#releases.push(this.engine.lease(keys));
  }

  /** Records the cache entries used, unmounts the views and releases the leases. */
  async cleanup(): Promise<void> {
    this.cache.flush();
    for (const mount of this.#mounts.splice(0)) await unmount(mount);
    for (const release of this.#releases.splice(0)) release();
  }

  /**
   * Builds the planned stages, each as soon as the stages it needs are built, so independent stages
   * run in parallel (at most MINATO_BUILD_PARALLELISM at a time, default 4). The progress stream stays
   * what the sequential classic builder prints: steps are numbered in Dockerfile order and a stage's
   * output is held back until the stages before it have printed theirs.
   */
  async run(plans: StagePlan[]): Promise<Digest> {
    const { dockerfile } = this.options;
    const first = new Map<number, number>();
    for (const plan of plans) {
      first.set(plan.index, this.#steps);
      this.#steps += 1 + (dockerfile.stages[plan.index]?.instructions.length ?? 0);
    }
    const outputs = plans.map(() => ({ held: [] as JsonMessage[], finished: false }));
    let shown = 0;
    const sinkFor =
      (position: number): ProgressSink =>
      (message) => {
        if (position === shown) this.progress(message);
        else outputs[position]?.held.push(message);
      };
    const finish = (position: number) => {
      const output = outputs[position];
      if (output) output.finished = true;
      while (outputs[shown]?.finished) {
        shown++;
        for (const message of outputs[shown]?.held.splice(0) ?? []) this.progress(message);
      }
    };
    const limit = this.engine.config.buildParallelism;
    let running = 0;
    const waiting: (() => void)[] = [];
    let failure: { error: unknown; position: number } | undefined;
    const built = new Map<number, Promise<StageState>>();
    plans.forEach((plan, position) => {
      const work = (async () => {
        await Promise.all(plan.dependsOn.map((index) => built.get(index)));
        while (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
        running++;
        try {
          const final = position === plans.length - 1;
          return await this.stage(plan, first.get(plan.index) ?? 0, sinkFor(position), () => failure !== undefined, final);
        } finally {
          running--;
          waiting.shift()?.();
        }
      })();
      work.then(
        (state) => {
          this.#states.set(plan.index, state);
          finish(position);
        },
        (error) => {
          if (!failure && !(error instanceof StageAborted)) failure = { error, position };
        },
      );
      built.set(plan.index, work);
    });
    await Promise.allSettled(built.values());
    if (failure) {
      // What the stages up to the failing one printed, in order, before the error.
      for (let position = shown + 1; position <= failure.position; position++) {
        for (const message of outputs[position]?.held.splice(0) ?? []) this.progress(message);
      }
      throw failure.error;
    }
    const last = plans.at(-1) && this.#states.get((plans.at(-1) as StagePlan).index);
    if (!last) throw new BuildError("the Dockerfile has no stages");
    const unused = [...this.#buildArgs.keys()].filter((name) => !this.#consumed.has(name));
    if (unused.length > 0) this.say(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
    return this.commit(last);
  }

  /**
   * One stage: its FROM, then its instructions, numbered from `step`; stops early when `aborted()`.
   * In the `final` stage the last step's ` ---> ` line is the built image's ID, which commit prints
   * (as the classic builder ends: that line and "Successfully built" name the same image).
   */
  async stage(plan: StagePlan, step: number, out: ProgressSink, aborted: () => boolean, final = false): Promise<StageState> {
    const stage = this.options.dockerfile.stages[plan.index];
    if (!stage) throw new BuildError(`stage ${plan.index} does not exist`);
    const state = await this.from(plan, stage.from.original, ++step, out);
    for (const [i, instruction] of stage.instructions.entries()) {
      if (aborted()) throw new StageAborted();
      this.say(`Step ${++step}/${this.#steps} : ${instruction.original}\n`, out);
      await this.instruction(state, instruction, false);
      if (!final || i < stage.instructions.length - 1) this.say(` ---> ${state.key.slice(0, 12)}\n`, out);
    }
    return state;
  }

  async from(plan: StagePlan, original: string, step: number, out: ProgressSink): Promise<StageState> {
    this.say(`Step ${step}/${this.#steps} : ${original}\n`, out);
    const platform = hostPlatform();
    const empty = (): StageState => ({
      key: sha("scratch"),
      config: { architecture: platform.architecture, os: platform.os, config: {}, rootfs: { type: "layers", diff_ids: [] } },
      layers: [],
      history: [],
      args: new Map(),
      cmdSet: false,
      out,
    });
    let state: StageState;
    if (plan.base.kind === "scratch") {
      state = empty();
      this.say(" ---> \n", out);
    } else if (plan.base.kind === "stage") {
      const base = this.#states.get(plan.base.index);
      if (!base) throw new BuildError(`stage ${plan.base.index} was not built`);
      state = {
        key: base.key,
        config: structuredClone(base.config),
        layers: [...base.layers],
        history: structuredClone(base.history),
        args: new Map(),
        cmdSet: false,
        out,
      };
      this.say(` ---> ${base.key.slice(0, 12)}\n`, out);
    } else {
      const image = await this.image(plan.base.ref, out, plan.platform);
      const config = await imageConfig(this.engine, image);
      state = {
        key: sha(`image ${image.id}`),
        config: { ...config, config: (config.config ?? {}) as ContainerConfig },
        layers: image.layers,
        history: config.history ?? [],
        args: new Map(),
        cmdSet: false,
        out,
      };
      this.lease([image.id, ...image.layers.flatMap((l) => [l.blobDigest, l.chainId])]);
      this.say(` ---> ${shortId(image.id)}\n`, out);
    }
    // A base's ONBUILD triggers run now, and are not inherited (reference: ONBUILD).
    const triggers = (state.config.config.OnBuild as string[] | undefined) ?? [];
    if (triggers.length > 0) {
      delete state.config.config.OnBuild;
      this.say(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? "" : "s"}\n`, out);
      for (const expression of triggers) {
        const trigger = parseTrigger(expression);
        await this.instruction(state, trigger, true);
      }
    }
    return state;
  }

  /** An image for FROM or COPY --from: local, else pulled anonymously. */
  async image(ref: string, out: ProgressSink, platform?: string) {
    const reference = parseReferenceOrThrow(ref);
    const local = this.engine.images.resolve(ref);
    if (local && !this.options.pull) return local;
    const pulled = await pullImage(this.engine, reference, {
      platform: platform ? parsePlatform(platform) : hostPlatform(),
      progress: out,
    });
    return pulled;
  }

  async instruction(state: StageState, raw: StageInstruction, trigger: boolean): Promise<void> {
    const { escapeToken } = this.options.dockerfile;
    const env: EnvLookup = lookup(state);
    if (raw.kind === "arg") {
      for (const declaration of raw.args) {
        this.#consumed.add(declaration.name);
        const resolved = resolveArg(declaration, { buildArgs: this.#buildArgs, globalArgs: this.#globals, env, escapeToken });
        if (resolved.value !== undefined) state.args.set(declaration.name, resolved.value);
      }
      // The value is not part of the key: steps that use it include it through their expansion.
      await this.metadata(state, raw, `ARG ${raw.args.map((a) => a.name).join(" ")}`, () => undefined);
      return;
    }
    const { instruction } = expandInstruction(raw, env, { escapeToken });
    const c = state.config.config;
    const shell = (c.Shell as string[] | undefined) ?? ["/bin/sh", "-c"];
    switch (instruction.kind) {
      case "env":
        return this.metadata(state, instruction, `ENV ${instruction.pairs.map((p) => `${p.key}=${p.value}`).join(" ")}`, () => {
          for (const pair of instruction.pairs) setEnv(c, pair.key, pair.value);
        });
      case "label":
        return this.metadata(state, instruction, `LABEL ${instruction.pairs.map((p) => `${p.key}=${p.value}`).join(" ")}`, () => {
          c.Labels = {
            ...((c.Labels as Record<string, string>) ?? {}),
            ...Object.fromEntries(instruction.pairs.map((p) => [p.key, p.value])),
          };
        });
      case "maintainer":
        return this.metadata(state, instruction, `MAINTAINER ${instruction.maintainer}`, () => {
          state.config.author = instruction.maintainer;
        });
      case "expose": {
        let ports: string[];
        try {
          ports = normalizeExposedPorts(instruction.ports);
        } catch (error) {
          throw new BuildError(`dockerfile line ${raw.location.line}: ${(error as Error).message}`);
        }
        return this.metadata(state, instruction, `EXPOSE ${ports.join(" ")}`, () => {
          c.ExposedPorts = { ...((c.ExposedPorts as object) ?? {}), ...Object.fromEntries(ports.map((p) => [p, {}])) };
        });
      }
      case "user":
        return this.metadata(state, instruction, `USER ${instruction.user}`, () => {
          c.User = instruction.user;
        });
      case "volume":
        return this.metadata(state, instruction, `VOLUME [${instruction.paths.join(" ")}]`, () => {
          c.Volumes = { ...((c.Volumes as object) ?? {}), ...Object.fromEntries(instruction.paths.map((p) => [p, {}])) };
        });
      case "stopsignal":
        return this.metadata(state, instruction, `STOPSIGNAL ${instruction.signal}`, () => {
          c.StopSignal = instruction.signal;
        });
      case "shell":
        return this.metadata(state, instruction, `SHELL ${JSON.stringify(instruction.shell)}`, () => {
          c.Shell = instruction.shell;
        });
      case "onbuild":
        return this.metadata(state, instruction, `ONBUILD ${instruction.expression}`, () => {
          c.OnBuild = [...((c.OnBuild as string[]) ?? []), instruction.expression];
        });
      case "cmd": {
        const cmd = commandArgs(instruction.command, shell);
        return this.metadata(state, instruction, `CMD ${JSON.stringify(cmd)}`, () => {
          c.Cmd = cmd;
          if (!trigger) state.cmdSet = true;
        });
      }
      case "entrypoint": {
        const entrypoint = commandArgs(instruction.command, shell);
        return this.metadata(state, instruction, `ENTRYPOINT ${JSON.stringify(entrypoint)}`, () => {
          c.Entrypoint = entrypoint;
          // Reference (ENTRYPOINT): a CMD from the base image is reset by ENTRYPOINT.
          if (!state.cmdSet) c.Cmd = null;
        });
      }
      case "healthcheck": {
        const health: Record<string, unknown> = { Test: instruction.test };
        if (instruction.interval) health.Interval = instruction.interval;
        if (instruction.timeout) health.Timeout = instruction.timeout;
        if (instruction.startPeriod) health.StartPeriod = instruction.startPeriod;
        if (instruction.startInterval) health.StartInterval = instruction.startInterval;
        if (instruction.retries) health.Retries = instruction.retries;
        return this.metadata(state, instruction, `HEALTHCHECK ${JSON.stringify(health)}`, () => {
          c.Healthcheck = health;
        });
      }
      case "workdir":
        return this.workdir(state, instruction.path);
      case "run":
        return this.runInstruction(state, instruction, shell);
      case "copy":
      case "add":
        return this.copy(state, instruction);
      default:
        throw new BuildError(`unsupported instruction ${(instruction as Instruction).kind}`);
    }
  }

  /** A step that changes only the config: `empty_layer` history, cached by its key for its timestamp. */
  async metadata(state: StageState, instruction: Instruction, text: string, apply: () => void): Promise<void> {
    const key = sha(`${state.key}\n${keyText(instruction)}`);
    apply();
    const cached = this.options.noCache ? undefined : this.cache.get(key);
    if (cached) this.say(" ---> Using cache\n", state.out);
    const created = cached?.created ?? this.now();
    if (!cached) this.cache.put(key, { created });
    state.history.push({ created, created_by: `/bin/sh -c #(nop)  ${text}`, empty_layer: true });
    state.key = key;
  }

  /**
   * A merged, read-only view of the state's layers, for reading files and checking what exists: the
   * snapshot itself for one layer, else a read-only overlay of the snapshots (whiteouts and opaque
   * directories as the kernel applies them), made once per layer chain and unmounted by {@link cleanup}.
   */
  async rootfs(state: Pick<StageState, "layers">): Promise<string> {
    const layers = [...state.layers];
    const top = layers.at(-1)?.chainId ?? "scratch";
    let view = this.#views.get(top);
    if (!view) {
      view = (async () => {
        const first = layers[0];
        if (layers.length === 1 && first) return this.engine.snapshots.path(first.chainId);
        const dir = join(this.#work, `rootfs-${this.#rootfsCount++}`);
        await mkdir(dir, { recursive: true });
        if (layers.length === 0) return dir;
        await mountReadOnlyOverlay(
          layers.reverse().map((l) => this.engine.snapshots.path(l.chainId)),
          dir,
        );
        this.#mounts.push(dir);
        return dir;
      })();
      this.#views.set(top, view);
    }
    return view;
  }

  async workdir(state: StageState, path: string): Promise<void> {
    const c = state.config.config;
    const dir = posix.resolve((c.WorkingDir as string | undefined) || "/", path);
    c.WorkingDir = dir;
    const asMetadata = { kind: "workdir", path: dir } as Instruction;
    const key = sha(`${state.key}\nworkdir ${dir}`);
    const createdBy = `/bin/sh -c #(nop) WORKDIR ${dir}`;
    // Docker creates a missing working directory, in a layer of its own.
    const made = async () => {
      const tree = await mkdtemp(join(this.#work, "tree-"));
      try {
        await this.makeParents(state, tree, `${dir}/`, undefined);
        return { layer: await storeLayer(this.engine, this.pack(tree)), createdBy };
      } finally {
        await rm(tree, { recursive: true, force: true });
      }
    };
    if (!this.options.noCache) {
      // Whether the directory exists is the parent's to say, and the parent is in both keys: a step
      // cached either way needs no look into the image.
      const cached = await this.cachedLayer(key);
      if (cached) {
        await this.addLayer(state, key, createdBy, made, cached);
        return;
      }
      if (this.cache.has(sha(`${state.key}\n${keyText(asMetadata)}`))) {
        return this.metadata(state, asMetadata, `WORKDIR ${dir}`, () => undefined);
      }
    }
    const root = await this.rootfs(state);
    const existing = await lstat(await resolveIn(root, dir)).catch(() => undefined);
    if (existing?.isDirectory()) return this.metadata(state, asMetadata, `WORKDIR ${dir}`, () => undefined);
    await this.addLayer(state, key, createdBy, made);
  }

  /** A tree packed as a layer tar, with SOURCE_DATE_EPOCH's timestamps when it is set. */
  pack(tree: string) {
    return packDirectory(tree, this.#epoch !== undefined ? { sourceDateEpoch: this.#epoch } : {});
  }

  /** Creates `path`'s ancestors (and itself when it ends in `/`) in the tree, with the image's metadata where they exist. */
  async makeParents(state: StageState, tree: string, path: string, owner: [number, number] | undefined): Promise<void> {
    const root = await this.rootfs(state);
    const parts = path.split("/").filter((p) => p !== "");
    const count = path.endsWith("/") ? parts.length : parts.length - 1;
    for (let i = 1; i <= count; i++) {
      const rel = parts.slice(0, i).join("/");
      const target = join(tree, rel);
      if (await lstat(target).catch(() => undefined)) continue;
      await mkdir(target);
      const inImage = await lstat(join(root, rel)).catch(() => undefined);
      if (inImage?.isDirectory()) {
        await lchown(target, inImage.uid, inImage.gid);
        await chmod(target, inImage.mode & 0o7777);
        await utimes(target, inImage.atime, inImage.mtime);
      } else {
        await lchown(target, owner?.[0] ?? 0, owner?.[1] ?? 0);
        await chmod(target, 0o755);
        const time = this.#epoch ?? Math.floor(Date.now() / 1000);
        await utimes(target, time, time);
      }
    }
  }

  /** `--chown=user:group`, numeric or by name from the image's /etc/passwd and /etc/group. */
  async owner(state: StageState, spec: string | undefined): Promise<[number, number]> {
    if (spec === undefined || spec === "") return [0, 0];
    const [user = "", group] = spec.split(":");
    const root = await this.rootfs(state);
    const lookupId = async (file: string, name: string): Promise<[number, number] | undefined> => {
      if (/^[0-9]+$/.test(name)) return [Number(name), Number(name)];
      const text = await readFile(await resolveIn(root, file), "utf8").catch(() => "");
      for (const line of text.split("\n")) {
        const fields = line.split(":");
        if (fields[0] === name) return [Number(fields[2]), Number(fields[3] ?? fields[2])];
      }
      return undefined;
    };
    const u = await lookupId("/etc/passwd", user);
    if (!u) throw new BuildError(`unable to find user ${user}: no matching entries in passwd file`);
    if (group === undefined) return [u[0], /^[0-9]+$/.test(user) ? u[0] : u[1]];
    const g = await lookupId("/etc/group", group);
    if (!g) throw new BuildError(`unable to find group ${group}: no matching entries in group file`);
    return [u[0], g[0]];
  }

  /**
   * COPY and ADD. The key is the parent, the instruction and what the sources hold (see
   * {@link sourcesDigest}): for the context, read from its index, so a cached COPY unpacks nothing and
   * mounts nothing. `--from` sources are first looked up by the layers they come from (the same
   * layers hold the same files), then by their content, which needs their root mounted. ADD of a URL
   * is keyed by what it downloaded, or by its --checksum alone.
   */
  async copy(state: StageState, instruction: Extract<Instruction, { kind: "copy" | "add" }>): Promise<void> {
    const line = instruction.location.line;
    const kind = instruction.kind.toUpperCase();
    const fail = (message: string): never => {
      throw new BuildError(`dockerfile line ${line}: ${instruction.keyword.toUpperCase()} failed: ${message}`);
    };
    const failWith = (error: Error): never => {
      if (error instanceof BuildError) throw error;
      return fail(error.message);
    };
    const mode = instruction.chmod ? parseOctalMode(instruction.chmod) : undefined;
    const c = state.config.config;
    const workdir = (c.WorkingDir as string | undefined) || "/";
    const target = posix.resolve(workdir, instruction.dest);
    const checksum = instruction.kind === "add" ? instruction.checksum : undefined;
    for (const source of instruction.sources) {
      if (isGitSource(source))
        fail(`${source}: ADD of a git repository is not supported by this engine; clone it into the context instead`);
      if (isUrl(source) && instruction.kind === "copy") fail(`source can't be a URL for COPY: ${source}`);
      if (!isUrl(source) && /^[a-z][a-z0-9+.-]*:\/\//i.test(source)) fail(`${source}: unsupported URL scheme (only http and https)`);
      if (checksum !== undefined && !isUrl(source)) fail(`checksum can't be specified for non-HTTP(S) sources: ${source}`);
    }
    if (checksum !== undefined) {
      try {
        parseChecksum(checksum);
      } catch (error) {
        fail((error as Error).message);
      }
    }
    const many =
      instruction.sources.length + instruction.inlineSources.length > 1 || instruction.sources.some((s) => !isUrl(s) && hasGlob(s));
    const excluded = instruction.excludes.length > 0 ? createMatcher(instruction.excludes) : undefined;
    const from =
      instruction.kind === "copy" && instruction.from !== undefined ? await this.fromSource(instruction.from, state.out) : undefined;

    /** Fills `tree` with what the step adds, as paths under the image root; returns the destination as it was taken. */
    const fillTree = async (tree: string): Promise<string> => {
      const sourceRoot = from ? await from.root() : await this.options.context.dir();
      const owner = await this.owner(state, instruction.chown);
      const root = await this.rootfs(state);
      let dest = target;
      const destStats = await lstat(await resolveIn(root, dest)).catch(() => undefined);
      const destIsDir = instruction.dest.endsWith("/") || instruction.dest === "." || many || destStats?.isDirectory() === true;
      if (many && !instruction.dest.endsWith("/") && !destStats?.isDirectory()) {
        fail(`When using COPY with more than one source file, the destination must be a directory and end with a /`);
      }
      if (destIsDir && !dest.endsWith("/")) dest = `${dest}/`;
      const options: CopyOptions = { owner, mode };
      await this.makeParents(state, tree, dest, owner);
      for (const source of instruction.sources) {
        if (isUrl(source)) {
          // Reference (ADD, "Adding files from a URL"): not unpacked, mode 600 unless --chmod.
          const name = destIsDir ? urlFileName(source) : posix.basename(dest);
          const scratch = await mkdtemp(join(this.#work, "download-"));
          try {
            const file = await download(source, scratch, "download", checksum);
            await copyEntry(file.path, destIsDir ? join(tree, dest, name) : join(tree, dest), { owner, mode: mode ?? 0o600 });
          } finally {
            await rm(scratch, { recursive: true, force: true });
          }
          continue;
        }
        const matches = await expandSource(new DiskTree(sourceRoot), source);
        const found: string[] = [];
        for (const rel of matches) if (await lstat(await resolveIn(sourceRoot, rel)).catch(() => undefined)) found.push(rel);
        if (found.length === 0) fail(`file not found in build context or excluded by .dockerignore: stat ${source}: file does not exist`);
        for (const rel of found) {
          if (excluded?.(rel)) continue;
          const path = await resolveIn(sourceRoot, rel);
          const stats = await lstat(path);
          const parents = instruction.kind === "copy" && instruction.parents;
          let target: string;
          if (parents) {
            target = join(tree, dest, rel);
            await this.makeParents(state, tree, posix.join(dest, rel), owner);
          } else if (stats.isDirectory()) target = join(tree, dest);
          else target = destIsDir ? join(tree, dest, posix.basename(rel)) : join(tree, dest);
          const omit = excluded ? (r: string) => excluded(rel === "" ? r : `${rel}/${r}`) : undefined;
          if (instruction.kind === "add" && stats.isFile() && (await isArchive(path))) {
            const unpacked = await mkdtemp(join(this.#work, "archive-"));
            await rm(unpacked, { recursive: true });
            await applyLayer(createReadStream(path), unpacked).catch((error: Error) => fail(`${rel}: ${error.message}`));
            await mkdir(join(tree, dest), { recursive: true });
            for (const name of await readdir(unpacked)) {
              await copyEntry(join(unpacked, name), join(tree, dest, name), { owner: instruction.chown ? owner : undefined, mode });
            }
            continue;
          }
          if (stats.isDirectory() && destStats?.isDirectory() && !parents) {
            // Into an existing directory: its own metadata stays the image's.
            for (const name of (await readdir(path)).sort()) {
              if (omit?.(name)) continue;
              await copyEntry(join(path, name), join(target, name), { ...options, ...(omit ? { omit } : {}) }, name);
            }
          } else {
            await copyEntry(path, target, { ...options, ...(omit ? { omit } : {}) });
          }
        }
      }
      for (const inline of instruction.inlineSources) {
        const target = destIsDir ? join(tree, dest, inline.name) : join(tree, dest);
        await writeFile(target, inline.content);
        await lchown(target, owner[0], owner[1]);
        await chmod(target, mode ?? 0o644);
        const time = this.#epoch ?? Math.floor(Date.now() / 1000);
        await utimes(target, time, time);
      }
      return dest;
    };
    /** Makes the layer: fills a scratch tree and packs it; `name` gives the history's source name. */
    const make = (name: string) => async () => {
      const tree = await mkdtemp(join(this.#work, "tree-"));
      try {
        const dest = await fillTree(tree).catch(failWith);
        const layer = await storeLayer(this.engine, this.pack(tree));
        return { layer, createdBy: `/bin/sh -c #(nop) ${kind} ${many ? "multi" : "file"}:${name} in ${dest} ` };
      } finally {
        await rm(tree, { recursive: true, force: true });
      }
    };

    const keyBase = `${state.key}\n${keyText(instruction)}`;
    if (checksum !== undefined) {
      // With --checksum the content is known before the download: the step is keyed by it, so a
      // cached rebuild does not fetch the URL again.
      await this.addLayer(state, sha(keyBase), undefined, make(parseChecksum(checksum).hex));
      return;
    }
    if (instruction.sources.some(isUrl)) {
      // What a URL holds is known once it is downloaded: the key has the tree the step adds.
      const tree = await mkdtemp(join(this.#work, "tree-"));
      try {
        const dest = await fillTree(tree).catch(failWith);
        const digest = await treeDigest(tree);
        const createdBy = `/bin/sh -c #(nop) ${kind} ${many ? "multi" : "file"}:${digest} in ${dest} `;
        await this.addLayer(state, sha(`${keyBase}\n${digest}`), createdBy, async () => ({
          layer: await storeLayer(this.engine, this.pack(tree)),
          createdBy,
        }));
      } finally {
        await rm(tree, { recursive: true, force: true });
      }
      return;
    }
    // The step's key is always the content key, so the steps after it see the same parent whichever
    // way it was found; the entry by layers records it.
    let byLayers: string | undefined;
    if (from) {
      byLayers = sha(`${keyBase}\nfrom layers ${from.layers.at(-1)?.chainId ?? "scratch"}`);
      const cached = await this.cachedLayer(byLayers);
      if (cached?.createdBy !== undefined && cached.key !== undefined) {
        // A hit: `produce` is never called with a cached step that has its created_by.
        await this.addLayer(state, cached.key, undefined, async () => fail("the cached step was lost"), cached);
        return;
      }
    }
    const tree = from ? new DiskTree(await from.root()) : this.options.context.tree;
    const digest = await this.sourcesDigest(tree, instruction, excluded).catch(failWith);
    const key = sha(`${keyBase}\n${digest}`);
    const step = await this.addLayer(state, key, undefined, make(digest));
    if (byLayers) this.cache.put(byLayers, { ...step, key });
  }

  /**
   * The digest of what a COPY/ADD reads from `tree`: for each source, the paths it matches (after
   * wildcards) and, for each path not excluded, the entry it resolves to (mode, owner, link target,
   * size and content; a directory's entries below it, minus the excluded ones). Not mtimes. With the
   * parent's key and the instruction it decides the layer; a source that matches nothing fails here.
   */
  async sourcesDigest(
    tree: SourceTree,
    instruction: Extract<Instruction, { kind: "copy" | "add" }>,
    excluded: ((path: string) => boolean) | undefined,
  ): Promise<string> {
    const hash = createHash("sha256");
    for (const source of instruction.sources) {
      const found: [string, string][] = [];
      for (const rel of await expandSource(tree, source)) {
        const resolved = await resolvePath(tree, rel);
        if (await tree.lstat(resolved)) found.push([rel, resolved]);
      }
      if (found.length === 0) {
        throw new Error(`file not found in build context or excluded by .dockerignore: stat ${source}: file does not exist`);
      }
      hash.update(`${JSON.stringify(["source", source])}\n`);
      for (const [rel, resolved] of found) {
        if (excluded?.(rel)) continue;
        const omit = excluded ? (r: string) => excluded(rel === "" ? r : `${rel}/${r}`) : undefined;
        hash.update(`${JSON.stringify(["path", rel, await pathDigest(tree, resolved, omit)])}\n`);
      }
    }
    return hash.digest("hex");
  }

  /** The cached step for `key` when it may be used: not --no-cache, and its layer's blob still there. */
  async cachedLayer(key: string): Promise<CachedStep | undefined> {
    const cached = this.options.noCache ? undefined : this.cache.get(key);
    if (!cached) return undefined;
    if (cached.layer && !(await this.engine.content.has(cached.layer.digest))) return undefined;
    return cached;
  }

  /**
   * Puts the step's layer (cached, else made by `produce`) on the state as a snapshot on the parent
   * chain, and returns the step as cached. `produce` gives no layer for a RUN that changed nothing:
   * like BuildKit, the step is then an `empty_layer` history entry. `createdBy` is the history's
   * text when the key alone decides it; otherwise the cached step has it (else it is made again).
   */
  async addLayer(
    state: StageState,
    key: string,
    createdBy: string | undefined,
    produce: () => Promise<{ layer: CachedLayer | undefined; createdBy: string }>,
    found?: CachedStep,
  ): Promise<CachedStep> {
    const cached = found ?? (await this.cachedLayer(key));
    let step: CachedStep & { createdBy: string };
    if (cached && (cached.createdBy ?? createdBy) !== undefined) {
      this.say(" ---> Using cache\n", state.out);
      step = { ...cached, createdBy: (cached.createdBy ?? createdBy) as string };
    } else {
      const made = await produce();
      step = { created: this.now(), ...(made.layer ? { layer: made.layer } : {}), createdBy: made.createdBy };
      this.cache.put(key, step);
    }
    const layer = step.layer;
    if (!layer) {
      state.history.push({ created: step.created, created_by: step.createdBy, empty_layer: true });
      state.key = key;
      return step;
    }
    const parent = state.layers.at(-1)?.chainId;
    const chainId = chainIds([...state.layers.map((l) => l.diffId), layer.diffId]).at(-1) as Digest;
    this.lease([layer.digest, chainId]);
    this.#added.add(layer.digest);
    await this.engine.snapshots.unpack(chainId, parent, layer.diffId, () => this.engine.content.stream(layer.digest));
    state.layers = [
      ...state.layers,
      { diffId: layer.diffId, chainId, blobDigest: layer.digest, blobSize: layer.size, mediaType: MediaType.ociLayerGzip },
    ];
    state.history.push({ created: step.created, created_by: step.createdBy });
    state.key = key;
    return step;
  }

  /**
   * RUN: the command in a build container on an overlay of the state (ENV, the ARGs in scope,
   * WORKDIR, USER; no network unless --network=host), its upper dir diffed into the step's layer.
   * The key is the parent, the command, the ARG values in its environment (the reference: ARGs used
   * by RUN invalidate it), the network mode and the mounts (bind contents; never secret values).
   */
  async runInstruction(state: StageState, instruction: RunInstruction, shell: string[]): Promise<void> {
    const problem = runUnsupported(instruction);
    if (problem) throw new BuildError(problem);
    const c = state.config.config;
    const script = runScript(instruction);
    const command = instruction.command;
    const args = command.form === "exec" ? command.args : [...shell, script?.script ?? command.text];
    const envNames = new Set(envList(c).map((e) => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e)));
    const argEnv = [...state.args].filter(([name]) => !envNames.has(name)).map(([name, value]) => `${name}=${value}`);
    const prefix = argEnv.length > 0 ? `|${argEnv.length} ${argEnv.join(" ")} ` : "";
    const createdBy = `${prefix}${args.join(" ")}`;
    const network = instruction.network === "host" ? "host" : "none";
    const sources = this.mountSources(state.out);
    let mounts: ResolvedMount[];
    try {
      mounts = await resolveMounts(instruction.mounts, (c.WorkingDir as string | undefined) || "/", sources);
    } catch (error) {
      if (error instanceof MountError) throw new BuildError(`dockerfile line ${instruction.location.line}: RUN --mount: ${error.message}`);
      throw error;
    }
    const keyParts: Record<string, unknown> = { run: args, args: argEnv };
    if (instruction.network !== undefined && instruction.network !== "default") keyParts.network = instruction.network;
    if (mounts.length > 0) keyParts.mounts = mountsKey(mounts);
    // A `#!` here-document runs as a file: the shell is given its path, so its text is keyed here.
    if (script?.file) keyParts.program = script.file.content;
    const key = sha(`${state.key}\n${JSON.stringify(keyParts)}`);
    await this.addLayer(state, key, createdBy, async () => {
      const scratch = await mkdtemp(join(this.#work, "mounts-"));
      let made: Materialized | undefined;
      try {
        made = await materializeMounts(mounts, scratch, sources);
        if (script?.file) {
          // As BuildKit runs it: an executable file where the shell is told to find it (/dev/pipes/NAME).
          const program = join(scratch, "heredoc-program");
          await writeFile(program, script.file.content);
          await chmod(program, 0o755);
          made.mounts.push({ source: program, destination: script.file.path, readonly: true });
          made.points.push({ path: script.file.path, type: "file" });
        }
        const outcome = await runStep(
          {
            runtime: this.runtime(),
            lowers: [...state.layers].reverse().map((l) => this.engine.snapshots.path(l.chainId)),
            workDir: this.#work,
            args,
            imageEnv: envList(c),
            env: [...argEnv, ...made.env],
            user: c.User as string | undefined,
            workdir: c.WorkingDir as string | undefined,
            output: (text) => this.say(text, state.out),
            mounts: made.mounts,
            mountPoints: made.points,
            network,
          },
          async (upper) =>
            (await readdir(upper)).length === 0
              ? undefined
              : storeLayer(this.engine, diffDirectory(upper, this.#epoch !== undefined ? { sourceDateEpoch: this.#epoch } : {})),
        );
        if (outcome.error) throw new BuildError(outcome.error);
        if (outcome.exitCode !== 0) {
          throw new BuildError(`The command '${args.join(" ")}' returned a non-zero code: ${outcome.exitCode}`);
        }
        return { layer: outcome.result, createdBy };
      } catch (error) {
        if (error instanceof MountError)
          throw new BuildError(`dockerfile line ${instruction.location.line}: RUN --mount: ${error.message}`);
        throw error;
      } finally {
        made?.release();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  }

  /** Where RUN --mount finds its sources. */
  mountSources(out: ProgressSink): MountSources {
    return {
      context: this.options.context.tree,
      contextDir: () => this.options.context.dir(),
      fromRoot: async (from) => (await this.fromSource(from, out)).root(),
      secrets: this.options.secrets ?? new Map(),
      cacheMounts: cacheMounts(this.engine.config.dataRoot),
    };
  }

  /**
   * The stage (by name or index) or image a `--from`/`from=` names: its layers, and its merged root,
   * mounted when first asked for.
   */
  async fromSource(from: string, out: ProgressSink): Promise<{ layers: LayerRecord[]; root: () => Promise<string> }> {
    const byName = this.options.dockerfile.stages.find((s) => s.name === from.toLowerCase());
    const index = /^[0-9]+$/.test(from) ? Number(from) : byName?.index;
    const stage = index !== undefined ? this.#states.get(index) : undefined;
    if (stage) return { layers: stage.layers, root: () => this.rootfs(stage) };
    const image = await this.image(from, out);
    this.lease([image.id, ...image.layers.flatMap((l) => [l.blobDigest, l.chainId])]);
    return { layers: image.layers, root: () => this.rootfs(image) };
  }

  runtime(): Runtime {
    this.#runtime ??= new Runtime({ root: join(this.engine.config.execRoot, "b") });
    return this.#runtime;
  }

  /**
   * The layers with the new ones compressed as `--compression` asks. Steps make (and the cache
   * names) gzip layers, so one cache serves builds of either compression; the base image's stay.
   */
  async compressed(layers: LayerRecord[]): Promise<LayerRecord[]> {
    const { compression } = this.options;
    if (!compression) return layers;
    const out: LayerRecord[] = [];
    for (const layer of layers) {
      const done = this.#added.has(layer.blobDigest) ? await recompressLayer(this.engine, layer, compression) : layer;
      this.lease([done.blobDigest]);
      out.push(done);
    }
    return out;
  }

  /** Writes the final config and manifest, records the image and tags it. */
  async commit(state: StageState): Promise<Digest> {
    const c = state.config.config;
    if (Object.keys(this.options.labels).length > 0) c.Labels = { ...((c.Labels as object) ?? {}), ...this.options.labels };
    const { history: _h, rootfs: _r, created: _c, config: _cfg, ...rest } = state.config;
    const config: ImageConfig = {
      ...rest,
      created: state.history.at(-1)?.created ?? this.now(),
      config: c,
      rootfs: { type: "layers", diff_ids: state.layers.map((l) => l.diffId) },
      history: state.history,
    };
    const layers = await this.compressed(state.layers);
    // The image keeps the steps' gzip blobs it replaced, so the cache entries naming them stay usable.
    const replaced = state.layers.filter((l, i) => layers[i]?.blobDigest !== l.blobDigest).map((l) => l.blobDigest);
    const id = await writeImage(this.engine, config, layers, replaced);
    this.progress({ aux: { ID: id } });
    this.say(` ---> ${shortId(id)}\n`);
    this.say(`Successfully built ${shortId(id)}\n`);
    for (const tag of this.options.tags) {
      const reference = parseReferenceOrThrow(tag);
      this.engine.images.reference(reference, id);
      this.say(`Successfully tagged ${tag}\n`);
    }
    return id;
  }
}

async function isArchive(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(262), 0, 262, 0);
    if (bytesRead >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) return true;
    return bytesRead >= 262 && buffer.toString("latin1", 257, 262) === "ustar";
  } finally {
    await handle.close();
  }
}

/** Runs a build; progress goes out as Docker's JSON messages. Returns the image ID. */
export async function build(engine: Engine, options: BuildOptions, plans: StagePlan[], progress: ProgressSink): Promise<Digest> {
  const builder = new Builder(engine, options, progress, options.workDir);
  try {
    return await builder.run(plans);
  } catch (error) {
    if (error instanceof DockerfileError) throw new BuildError(error.message);
    throw error;
  } finally {
    await builder.cleanup();
  }
}
