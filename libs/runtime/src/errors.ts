/** Why a container could not be specified, created or driven. */
export type RuntimeErrorCode =
  /** Bad run options (an unparsable user, a relative path, a negative limit, ...). */
  | "INVALID_OPTION"
  /** Neither the image nor the run options give a command. */
  | "NO_COMMAND"
  /** USER names a user or group the rootfs's /etc/passwd or /etc/group does not have. */
  | "UNKNOWN_USER"
  /** The command could not be found in the container (Docker reports exit code 127). */
  | "COMMAND_NOT_FOUND"
  /** The command exists but cannot be executed (Docker reports exit code 126). */
  | "NOT_EXECUTABLE"
  /** No container with this id. */
  | "NOT_FOUND"
  /** A container with this id already exists. */
  | "CONFLICT"
  /** The container is not in a state that allows the operation (e.g. exec in a stopped one). */
  | "INVALID_STATE"
  /** runc or conmon failed for another reason; the message carries their output. */
  | "RUNTIME_FAILED"
  /** The host lacks something the runtime needs (a binary, a cgroup controller). */
  | "UNSUPPORTED_HOST";

export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    /** For start failures, the exit code Docker reports for them (127, 126, 128). */
    readonly exitCode?: number,
  ) {
    super(message);
    this.name = "RuntimeError";
  }
}
