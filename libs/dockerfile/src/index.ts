export {
  type ArgResolution,
  type GlobalArgsOptions,
  isPredefinedArg,
  PLATFORM_ARGS,
  type PlatformLike,
  PROXY_ARGS,
  platformArgs,
  resolveArg,
  resolveGlobalArgs,
} from "./args.js";
export {
  cleanPath,
  createMatcher,
  type DockerignoreMatcher,
  dockerignoreFor,
  type IgnorePattern,
  keepBuildFiles,
  parseDockerignore,
} from "./dockerignore.js";
export { DockerfileError, ExpansionError, type SourceLocation } from "./errors.js";
export { expandInstruction, type InstructionExpansion, normalizeExposedPorts, type RunScript, runScript } from "./expand-instruction.js";
export { type EnvLookup, type ExpandOptions, type Expansion, expand, expandHeredoc, expandWords, type WordsExpansion } from "./lexer.js";
export { parseDockerfile, parseTrigger } from "./parser.js";
export { chompHeredoc } from "./scanner.js";
export { type PlanOptions, planStages, type StageBase, type StagePlan } from "./stages.js";
export * from "./types.js";
