// ENTRYPOINT and CMD combined as Docker combines them (moby daemon: merge of the run config with the
// image config, then entrypoint + cmd). The image config already holds shell forms resolved to
// ["/bin/sh", "-c", "..."] by the builder.
import { RuntimeError } from "./errors.js";

export interface CommandInput {
  /** The image config's Entrypoint (null/undefined/[] when it has none). */
  imageEntrypoint?: string[] | null;
  /** The image config's Cmd. */
  imageCmd?: string[] | null;
  /**
   * `--entrypoint`: undefined keeps the image's; a non-empty array (including [""], which is how
   * `--entrypoint ""` arrives) replaces it and drops the image's CMD. [] clears the entrypoint but keeps
   * the image's CMD as the fallback command, as the Engine API does for `"Entrypoint": []`.
   */
  entrypoint?: string[];
  /** The command after the image name; undefined or [] keeps the image's CMD (unless entrypoint is overridden). */
  cmd?: string[];
}

/** The argv of the container's process. Throws NO_COMMAND ("No command specified") when it is empty. */
export function combineCommand(input: CommandInput): string[] {
  const userCmd = input.cmd ?? [];
  let entrypoint: string[];
  let cmd: string[];
  if (input.entrypoint === undefined || input.entrypoint.length === 0) {
    // No entrypoint given (or an explicitly empty list through the API): the image's CMD fills in for a
    // missing command; an explicit [] still clears the image's ENTRYPOINT.
    entrypoint = input.entrypoint === undefined ? (input.imageEntrypoint ?? []) : [];
    cmd = userCmd.length > 0 ? userCmd : (input.imageCmd ?? []);
  } else {
    // `--entrypoint X` (or `--entrypoint ""`, sent as [""]) replaces the entrypoint and drops the image's CMD.
    entrypoint = input.entrypoint.length === 1 && input.entrypoint[0] === "" ? [] : input.entrypoint;
    cmd = userCmd;
  }
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw new RuntimeError("NO_COMMAND", "No command specified");
  return argv;
}
