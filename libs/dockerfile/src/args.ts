// ARG scoping (reference: "ARG", "Understand how ARG and FROM interact",
// "Predefined ARGs", "Automatic platform ARGs in the global scope").
//
// - ARGs before the first FROM are global: usable in FROM lines only. A stage
//   sees one by redeclaring it without a value (`ARG VERSION`).
// - The automatic platform ARGs (TARGETPLATFORM, BUILDARCH…) are global too.
// - Inside a stage an ARG takes the --build-arg value, else its default
//   (expanded with what the stage has so far), else the global value.
// - The proxy ARGs are predefined: usable in RUN without a declaration and
//   kept out of history and the cache key unless declared.

import { DockerfileError, ExpansionError } from "./errors.js";
import { type EnvLookup, expand } from "./lexer.js";
import type { ArgDeclaration, Dockerfile, EscapeToken } from "./types.js";

/** Predefined proxy ARGs (reference: "Predefined ARGs"). */
export const PROXY_ARGS = [
  "HTTP_PROXY",
  "http_proxy",
  "HTTPS_PROXY",
  "https_proxy",
  "FTP_PROXY",
  "ftp_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
] as const;

/** Automatic platform ARGs, defined in the global scope. */
export const PLATFORM_ARGS = [
  "TARGETPLATFORM",
  "TARGETOS",
  "TARGETARCH",
  "TARGETVARIANT",
  "BUILDPLATFORM",
  "BUILDOS",
  "BUILDARCH",
  "BUILDVARIANT",
] as const;

/** True for an ARG Docker defines without a declaration (proxy ARGs). */
export function isPredefinedArg(name: string): boolean {
  return (PROXY_ARGS as readonly string[]).includes(name);
}

export interface PlatformLike {
  os: string;
  architecture: string;
  variant?: string;
}

function format(platform: PlatformLike): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined && p !== "").join("/");
}

/** The automatic platform ARGs for a build on `build` producing an image for `target` (default: `build`). */
export function platformArgs(build: PlatformLike, target: PlatformLike = build): Map<string, string> {
  return new Map([
    ["TARGETPLATFORM", format(target)],
    ["TARGETOS", target.os],
    ["TARGETARCH", target.architecture],
    ["TARGETVARIANT", target.variant ?? ""],
    ["BUILDPLATFORM", format(build)],
    ["BUILDOS", build.os],
    ["BUILDARCH", build.architecture],
    ["BUILDVARIANT", build.variant ?? ""],
  ]);
}

function get(env: EnvLookup | undefined, name: string): string | undefined {
  if (env === undefined) return undefined;
  if (env instanceof Map) return env.get(name);
  const record = env as Readonly<Record<string, string>>;
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

export interface GlobalArgsOptions {
  /** `--build-arg` values. */
  buildArgs?: EnvLookup;
  /** The automatic platform ARGs ({@link platformArgs}); a build arg of the same name overrides one. */
  platform?: ReadonlyMap<string, string>;
}

/**
 * The global scope: platform ARGs, then each ARG before the first FROM in order
 * (the --build-arg value, else its default expanded with the globals so far).
 * This is the environment FROM lines (image and --platform) expand with.
 */
export function resolveGlobalArgs(dockerfile: Dockerfile, options: GlobalArgsOptions = {}): Map<string, string> {
  const globals = new Map<string, string>();
  for (const [name, value] of options.platform ?? []) globals.set(name, get(options.buildArgs, name) ?? value);
  for (const instruction of dockerfile.globalArgs) {
    for (const arg of instruction.args) {
      const provided = get(options.buildArgs, arg.name);
      let value = provided;
      if (value === undefined && arg.default !== undefined) {
        try {
          value = expand(arg.default, globals, { escapeToken: dockerfile.escapeToken }).value;
        } catch (err) {
          if (err instanceof ExpansionError) throw new DockerfileError(err.message, instruction.location, "expand");
          throw err;
        }
      }
      if (value !== undefined) globals.set(arg.name, value);
    }
  }
  return globals;
}

export interface ArgResolution {
  /** undefined: declared without a value (the variable stays unset). */
  value: string | undefined;
  /** Variables the default referenced that were set. */
  used: Set<string>;
  unset: Set<string>;
}

/**
 * The value an `ARG` inside a stage takes: the --build-arg value, else its
 * default expanded with the stage's current environment, else the global value
 * (which includes the platform ARGs). Throws {@link ExpansionError} on a bad default.
 */
export function resolveArg(
  declaration: ArgDeclaration,
  context: { buildArgs?: EnvLookup; globalArgs?: EnvLookup; env?: EnvLookup; escapeToken?: EscapeToken },
): ArgResolution {
  const provided = get(context.buildArgs, declaration.name);
  if (provided !== undefined) return { value: provided, used: new Set(), unset: new Set() };
  if (declaration.default !== undefined) {
    const r = expand(declaration.default, context.env ?? new Map(), { escapeToken: context.escapeToken ?? "\\" });
    return { value: r.value, used: r.used, unset: r.unset };
  }
  return { value: get(context.globalArgs, declaration.name), used: new Set(), unset: new Set() };
}
