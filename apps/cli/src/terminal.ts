// The local terminal of an interactive session (`run -it`, `exec -it`, `attach`): raw mode while the
// session lasts — restored on every way out, errors and signals included — and the window size
// followed (SIGWINCH) so the container's TTY matches it.
import type { Io } from "./context.js";

type TtyInput = Io["stdin"];
type TtyOutput = Io["stdout"];

const restorers = new Set<() => void>();
let exitHookInstalled = false;

/** Puts a TTY stdin in raw mode (no echo, no line editing, keys such as ctrl-c passed through). Returns the restore function. */
export function enterRawMode(stdin: TtyInput): () => void {
  if (!stdin.isTTY || typeof stdin.setRawMode !== "function") return () => undefined;
  stdin.setRawMode(true);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    restorers.delete(restore);
    stdin.setRawMode?.(false);
  };
  restorers.add(restore);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Whatever ends the process, the user's terminal must not stay raw.
    process.once("exit", () => {
      for (const r of [...restorers]) r();
    });
  }
  return restore;
}

/** The terminal's size as Docker's resize endpoints take it, or undefined when stdout is not a TTY. */
export function terminalSize(stdout: TtyOutput): { height: number; width: number } | undefined {
  const out = stdout as TtyOutput & { rows?: number; columns?: number };
  if (!out.isTTY || !out.rows || !out.columns) return undefined;
  return { height: out.rows, width: out.columns };
}

/**
 * Sends the terminal's size now and on every SIGWINCH. The first resize is retried a few times, as
 * the docker CLI does, because the daemon may not have the TTY ready yet. Returns the stop function.
 */
export function followTerminalSize(stdout: TtyOutput, resize: (height: number, width: number) => Promise<void>): () => void {
  if (!terminalSize(stdout)) return () => undefined;
  const send = async () => {
    const size = terminalSize(stdout);
    if (size) await resize(size.height, size.width);
  };
  void (async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await send();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
      }
    }
  })();
  const onWinch = () => void send().catch(() => undefined);
  process.on("SIGWINCH", onWinch);
  return () => process.off("SIGWINCH", onWinch);
}

/**
 * Forwards the signals a user sends the CLI to the container (`--sig-proxy`, for sessions without a
 * TTY: with one, ctrl-c travels as a byte through the TTY). Returns the stop function.
 */
export function proxySignals(kill: (signal: string) => Promise<void>): () => void {
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];
  const handlers = signals.map((signal) => {
    const handler = () => void kill(signal).catch(() => undefined);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
