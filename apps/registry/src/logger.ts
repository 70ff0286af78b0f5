import pino from "pino";

export type Logger = pino.Logger;
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** JSON lines on stderr; credentials are never logged (authorization headers are redacted). */
export function createLogger(level: LogLevel = "info"): Logger {
  return pino(
    {
      level,
      base: { service: "minato-registry" },
      redact: ["req.headers.authorization", "req.headers.cookie", "password", "token"],
    },
    pino.destination(2),
  );
}
