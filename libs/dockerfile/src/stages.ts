// Which stages a build of `--target` needs, and in which order: a stage depends
// on its FROM base when that names an earlier stage, on `COPY --from=<name|index>`
// and on `RUN --mount=from=<name>`, and on those of its base stage's ONBUILD
// triggers (they run in the stages built FROM it). Independent stages can be
// built in parallel; a stage needs only the stages in `dependsOn`.

import { resolveGlobalArgs } from "./args.js";
import { DockerfileError, ExpansionError, type SourceLocation } from "./errors.js";
import { type EnvLookup, expand } from "./lexer.js";
import { parseTrigger } from "./parser.js";
import { withSuggestion } from "./suggest.js";
import type { Dockerfile, Instruction, Stage } from "./types.js";

export type StageBase = { kind: "scratch" } | { kind: "stage"; index: number } | { kind: "image"; ref: string };

export interface StagePlan {
  index: number;
  name?: string;
  /** The FROM base after expanding global ARGs. */
  base: StageBase;
  /** `--platform` after expanding global ARGs (omitted when it expands to nothing without `globalArgs`). */
  platform?: string;
  /** Stages this one needs built first (its base stage included), ascending. */
  dependsOn: number[];
  /** Images read by `COPY --from=<image>` or `RUN --mount=from=<image>`. */
  images: string[];
}

export interface PlanOptions {
  /** The `--target` stage name; default the last stage. */
  target?: string;
  /** The global scope FROM lines expand with; default {@link resolveGlobalArgs} without build args. */
  globalArgs?: EnvLookup;
}

function stageLabel(stage: Stage): string {
  return stage.name ?? `stage-${stage.index}`;
}

interface Reference {
  kind: "copy" | "mount";
  value: string;
  target?: string;
  location: SourceLocation;
}

function references(instructions: readonly Instruction[]): Reference[] {
  const refs: Reference[] = [];
  for (const instruction of instructions) {
    if (instruction.kind === "copy" && instruction.from !== undefined) {
      refs.push({ kind: "copy", value: instruction.from, location: instruction.location });
    } else if (instruction.kind === "run") {
      for (const mount of instruction.mounts) {
        if (mount.from !== undefined && mount.from !== "") {
          refs.push({
            kind: "mount",
            value: mount.from,
            ...(mount.target !== undefined ? { target: mount.target } : {}),
            location: instruction.location,
          });
        }
      }
    }
  }
  return refs;
}

/**
 * The stages needed to build `target`, dependencies first (ascending index,
 * which is a valid build order since a stage may only use earlier stages).
 * Throws {@link DockerfileError} for a stage used before it is defined, a
 * circular reference, an invalid `--from` index or variables in `--from`, and
 * an Error for an unknown target.
 */
export function planStages(dockerfile: Dockerfile, options: PlanOptions = {}): StagePlan[] {
  const { stages } = dockerfile;
  const globals = options.globalArgs ?? resolveGlobalArgs(dockerfile);
  const lastByName = new Map<string, number>();
  for (const stage of stages) if (stage.name !== undefined) lastByName.set(stage.name, stage.index);

  const plans: StagePlan[] = [];
  const definedSoFar = new Map<string, number>();
  for (const stage of stages) {
    const fromExpand = (value: string) => {
      try {
        return expand(value, globals, { escapeToken: dockerfile.escapeToken }).value;
      } catch (err) {
        if (err instanceof ExpansionError) throw new DockerfileError(err.message, stage.from.location, "expand");
        throw err;
      }
    };
    const image = fromExpand(stage.from.image);
    if (image === "") throw new DockerfileError(`base name (${stage.from.image}) should not be blank`, stage.from.location, "expand");
    let base: StageBase;
    const baseIndex = definedSoFar.get(image);
    if (baseIndex !== undefined) base = { kind: "stage", index: baseIndex };
    else if (image === "scratch") base = { kind: "scratch" };
    else base = { kind: "image", ref: image };
    const plan: StagePlan = { index: stage.index, base, dependsOn: [], images: [] };
    if (stage.name !== undefined) plan.name = stage.name;
    if (stage.from.platform !== undefined) {
      const platform = fromExpand(stage.from.platform);
      if (platform === "" && options.globalArgs !== undefined) {
        throw new DockerfileError(`empty platform value from expression ${stage.from.platform}`, stage.from.location, "expand");
      }
      if (platform !== "") plan.platform = platform;
    }
    plans.push(plan);
    if (stage.name !== undefined) definedSoFar.set(stage.name, stage.index);
  }

  for (const stage of stages) {
    const plan = plans[stage.index]!;
    const deps = new Set<number>();
    if (plan.base.kind === "stage") deps.add(plan.base.index);

    let refs = references(stage.instructions);
    if (plan.base.kind === "stage") {
      // The base stage's ONBUILD triggers run in this stage.
      const triggers: Instruction[] = [];
      for (const instruction of stages[plan.base.index]!.instructions) {
        if (instruction.kind !== "onbuild") continue;
        try {
          triggers.push(parseTrigger(instruction.expression));
        } catch (err) {
          const detail = err instanceof DockerfileError ? err.detail : (err as Error).message;
          throw new DockerfileError(detail, stage.from.location, "expand");
        }
      }
      refs = [...references(triggers).map((r) => ({ ...r, location: stage.from.location })), ...refs];
    }

    for (const ref of refs) {
      let index: number | undefined;
      if (ref.kind === "copy") {
        if (expand(ref.value, new Map()).value !== ref.value) {
          throw new DockerfileError(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
            ref.location,
            "expand",
          );
        }
        if (/^[+-]?[0-9]+$/.test(ref.value)) {
          index = Number.parseInt(ref.value, 10);
          if (index < 0 || index >= stages.length) throw new DockerfileError(`invalid stage index ${index}`, ref.location, "expand");
        } else index = lastByName.get(ref.value.toLowerCase());
      } else {
        index = lastByName.get(ref.value.toLowerCase());
      }
      if (index === undefined) {
        if (!plan.images.includes(ref.value)) plan.images.push(ref.value);
        continue;
      }
      if (index === stage.index) {
        throw new DockerfileError(`circular dependency detected on stage: ${stageLabel(stage)}`, ref.location, "expand");
      }
      if (index > stage.index) {
        const message =
          ref.kind === "copy"
            ? `cannot copy from stage ${JSON.stringify(ref.value)}, it needs to be defined before current stage ${JSON.stringify(stageLabel(stage))}`
            : `cannot mount from stage ${JSON.stringify(ref.value)} to ${JSON.stringify(ref.target ?? "")}, stage needs to be defined before current command`;
        throw new DockerfileError(message, ref.location, "expand");
      }
      deps.add(index);
    }
    plan.dependsOn = [...deps].sort((a, b) => a - b);
  }

  let targetIndex = stages.length - 1;
  if (options.target !== undefined && options.target !== "") {
    const found = lastByName.get(options.target.toLowerCase());
    if (found === undefined) {
      const names = stages.map((s) => s.name).filter((n): n is string => n !== undefined);
      throw new Error(withSuggestion(`target stage ${JSON.stringify(options.target)} could not be found`, options.target, names, true));
    }
    targetIndex = found;
  }

  const needed = new Set<number>();
  const visit = (index: number) => {
    if (needed.has(index)) return;
    needed.add(index);
    for (const dep of plans[index]!.dependsOn) visit(dep);
  };
  visit(targetIndex);
  return plans.filter((p) => needed.has(p.index));
}
