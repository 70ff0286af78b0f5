import type { SourceLocation } from "./errors.js";

export type EscapeToken = "\\" | "`";

/** A parser directive from the top of the file (`# syntax=…`, `# escape=…`, `# check=…`). */
export interface Directive {
  name: "syntax" | "escape" | "check";
  value: string;
  location: SourceLocation;
}

/** `# check=skip=A,B;error=true` (reference: "check"). */
export interface CheckDirective {
  skipAll: boolean;
  skip: string[];
  error: boolean;
  experimentalAll: boolean;
  experimental: string[];
}

/** Something BuildKit would report as a build-check warning, not an error. */
export interface Warning {
  rule: "NoEmptyContinuation" | "DuplicateStageName" | "ReservedStageName";
  message: string;
  location: SourceLocation;
}

/** A `--name[=value]` flag as written (quotes and escapes removed). */
export interface FlagUse {
  name: string;
  /** undefined for a bare `--link` */
  value: string | undefined;
  location: SourceLocation;
}

/** Shell form runs through the stage's SHELL; exec form is the JSON array as written. */
export type Command = { form: "shell"; text: string } | { form: "exec"; args: string[] };

/** A here-document attached to RUN, COPY or ADD. `content` is raw (line endings kept, tabs not stripped). */
export interface Heredoc {
  /** The delimiter word, quotes removed. */
  name: string;
  content: string;
  /** False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`). */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the content and the delimiter line. */
  chomp: boolean;
  /** The file descriptor written before `<<` (`3<<EOF`), 0 when none. */
  fd: number;
}

interface InstructionBase<K extends string> {
  kind: K;
  /** The instruction keyword as written (instructions are case-insensitive). */
  keyword: string;
  /** The instruction's logical line: continuations joined, comments removed, heredoc bodies not included. */
  original: string;
  location: SourceLocation;
  flags: FlagUse[];
}

export interface FromInstruction extends InstructionBase<"from"> {
  /** The base as written: an image reference, `scratch` or an earlier stage's name; may contain global ARGs. */
  image: string;
  /** `--platform` as written; may contain global ARGs. */
  platform?: string;
  /** `AS name`, lower-cased. */
  name?: string;
}

export type MountType = "bind" | "cache" | "tmpfs" | "secret" | "ssh";

/** One `RUN --mount=…`. */
export interface Mount {
  /** The flag value as written. */
  spec: string;
  /**
   * True when the spec uses variables: then string fields hold the text as written
   * and values that need a variable's value are left undefined; call
   * {@link expandInstruction} to get the mount the builder should use.
   */
  needsExpansion: boolean;
  type: MountType;
  from?: string;
  source?: string;
  target?: string;
  readonly: boolean;
  /** `id`: cache id or secret/ssh id. */
  id?: string;
  sharing?: "shared" | "private" | "locked";
  required: boolean;
  /** tmpfs `size` in bytes */
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  /** secret `env` */
  env?: string;
}

/** One `RUN --device=name[,required]` (labs syntax). */
export interface Device {
  name: string;
  required: boolean;
}

export type NetworkMode = "default" | "none" | "host";
export type SecurityMode = "sandbox" | "insecure";

export interface RunInstruction extends InstructionBase<"run"> {
  command: Command;
  heredocs: Heredoc[];
  mounts: Mount[];
  /** `--network`; undefined when the flag is absent (same as "default"). */
  network?: NetworkMode;
  /** `--security`; undefined when the flag is absent (same as "sandbox"). */
  security?: SecurityMode;
  devices: Device[];
}

export interface CmdInstruction extends InstructionBase<"cmd"> {
  command: Command;
}

export interface EntrypointInstruction extends InstructionBase<"entrypoint"> {
  command: Command;
}

/** A key and value as written: quotes and variables are resolved by {@link expandInstruction}. */
export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends InstructionBase<"env"> {
  pairs: KeyValue[];
  /** `ENV key value` (one variable, the rest of the line is the value). */
  legacy: boolean;
}

export interface LabelInstruction extends InstructionBase<"label"> {
  pairs: KeyValue[];
  legacy: boolean;
}

export interface ArgDeclaration {
  name: string;
  /** The default as written (may contain variables and quotes), undefined for `ARG name`. */
  default?: string;
}

export interface ArgInstruction extends InstructionBase<"arg"> {
  args: ArgDeclaration[];
}

/** A COPY/ADD source given as a here-document: a file named `name` with `content`. */
export interface InlineSource {
  name: string;
  /** Tabs already stripped for `<<-`. */
  content: string;
  /** Expand variables in the content at build time (delimiter not quoted). */
  expand: boolean;
}

interface CopyLike {
  /** Source paths as written (may contain variables and globs). */
  sources: string[];
  /** Here-document sources. */
  inlineSources: InlineSource[];
  dest: string;
  /** Written in the JSON form `["src", "dest"]`. */
  json: boolean;
  chown?: string;
  chmod?: string;
  link: boolean;
  excludes: string[];
  heredocs: Heredoc[];
}

export interface CopyInstruction extends InstructionBase<"copy">, CopyLike {
  /** `--from`: a stage name, a stage index or an image reference. */
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends InstructionBase<"add">, CopyLike {
  checksum?: string;
  /** `--keep-git-dir`, undefined when absent. */
  keepGitDir?: boolean;
  /** `--unpack`, undefined when absent (local archives unpack, URLs do not). */
  unpack?: boolean;
}

export interface WorkdirInstruction extends InstructionBase<"workdir"> {
  path: string;
}

export interface UserInstruction extends InstructionBase<"user"> {
  user: string;
}

export interface VolumeInstruction extends InstructionBase<"volume"> {
  paths: string[];
  json: boolean;
}

export interface ExposeInstruction extends InstructionBase<"expose"> {
  /** Port words as written, sorted as BuildKit sorts them; see {@link normalizeExposedPorts}. */
  ports: string[];
}

export interface StopSignalInstruction extends InstructionBase<"stopsignal"> {
  signal: string;
}

export interface HealthcheckInstruction extends InstructionBase<"healthcheck"> {
  /** As in the image config: ["NONE"], ["CMD", …args] or ["CMD-SHELL", command]. */
  test: string[];
  /** undefined for HEALTHCHECK NONE */
  command?: Command;
  /** Nanoseconds; 0 means "inherit / default". */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  /** 0 means "inherit / default". */
  retries: number;
}

export interface ShellInstruction extends InstructionBase<"shell"> {
  shell: string[];
}

export interface MaintainerInstruction extends InstructionBase<"maintainer"> {
  maintainer: string;
}

export interface OnbuildInstruction extends InstructionBase<"onbuild"> {
  /** The trigger text stored in the image config's OnBuild list (heredoc bodies re-attached). */
  expression: string;
  /**
   * The trigger parsed, when it parses. Docker only checks a trigger when a
   * downstream build runs it, so an invalid trigger is not an error here; the
   * downstream builder calls {@link parseTrigger} on `expression`.
   */
  trigger?: Instruction;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | EnvInstruction
  | LabelInstruction
  | ArgInstruction
  | CopyInstruction
  | AddInstruction
  | WorkdirInstruction
  | UserInstruction
  | VolumeInstruction
  | ExposeInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | ShellInstruction
  | MaintainerInstruction
  | OnbuildInstruction;

/** An instruction inside a stage (everything but FROM). */
export type StageInstruction = Exclude<Instruction, FromInstruction>;

export interface Stage {
  /** Position among the stages, as `COPY --from=<index>` counts. */
  index: number;
  /** `AS name`, lower-cased. */
  name?: string;
  from: FromInstruction;
  instructions: StageInstruction[];
}

export interface Dockerfile {
  escapeToken: EscapeToken;
  directives: Directive[];
  /** `# syntax=` value. */
  syntax?: string;
  check?: CheckDirective;
  /** ARG instructions before the first FROM (usable in FROM lines only). */
  globalArgs: ArgInstruction[];
  stages: Stage[];
  warnings: Warning[];
}
