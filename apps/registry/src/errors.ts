/** Error codes of distribution-spec "Error Codes" (code-1 … code-14). */
export type ErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  /** Not in the spec's list; Distribution's code for an error of none of the kinds above. */
  | "UNKNOWN";

const MESSAGES: Record<ErrorCode, string> = {
  BLOB_UNKNOWN: "blob unknown to registry",
  BLOB_UPLOAD_INVALID: "blob upload invalid",
  BLOB_UPLOAD_UNKNOWN: "blob upload unknown to registry",
  DIGEST_INVALID: "provided digest did not match uploaded content",
  MANIFEST_BLOB_UNKNOWN: "manifest references a manifest or blob unknown to registry",
  MANIFEST_INVALID: "manifest invalid",
  MANIFEST_UNKNOWN: "manifest unknown to registry",
  NAME_INVALID: "invalid repository name",
  NAME_UNKNOWN: "repository name not known to registry",
  SIZE_INVALID: "provided length did not match content length",
  UNAUTHORIZED: "authentication required",
  DENIED: "requested access to the resource is denied",
  UNSUPPORTED: "the operation is unsupported",
  TOOMANYREQUESTS: "too many requests",
  UNKNOWN: "unknown error",
};

export interface ErrorEntry {
  code: ErrorCode;
  message: string;
  detail?: unknown;
}

/** A spec error with its HTTP status; thrown anywhere in a handler, rendered by the app. */
export class RegistryError extends Error {
  readonly entries: ErrorEntry[];
  constructor(
    readonly status: number,
    code: ErrorCode,
    detail?: unknown,
    message?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? MESSAGES[code]);
    this.entries = [{ code, message: this.message, ...(detail === undefined ? {} : { detail }) }];
  }

  /** Several errors of one kind in one response, e.g. every blob a manifest is missing. */
  static many(status: number, entries: ErrorEntry[]): RegistryError {
    const error = new RegistryError(status, entries[0]?.code ?? "UNSUPPORTED");
    error.entries.splice(0, 1, ...entries);
    return error;
  }

  get code(): ErrorCode {
    return (this.entries[0] as ErrorEntry).code;
  }

  body(): string {
    return JSON.stringify({ errors: this.entries });
  }
}

export function errorEntry(code: ErrorCode, detail?: unknown, message?: string): ErrorEntry {
  return { code, message: message ?? MESSAGES[code], ...(detail === undefined ? {} : { detail }) };
}
