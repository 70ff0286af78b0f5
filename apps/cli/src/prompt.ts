import { createInterface } from "node:readline";
import type { Context } from "./context.js";
import { CliError } from "./errors.js";

/** Everything on stdin, as text (`login --password-stdin`). */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** One line from stdin ("" at end of input); the rest of the input is left unread. */
export function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    const reader = createInterface({ input: stream, terminal: false });
    let answered = false;
    reader.once("line", (line) => {
      answered = true;
      reader.close();
      resolve(line);
    });
    reader.once("close", () => {
      if (!answered) resolve("");
    });
  });
}

/** docker's `PromptForConfirmation`: `message [y/N] `, yes only for "y" or "Y". */
export async function confirm(context: Context, message: string): Promise<boolean> {
  context.out(`${message} [y/N] `);
  const answer = (await readLine(context.io.stdin)).trim();
  return answer === "y" || answer === "Y";
}

/** Asks on the terminal; with `secret` nothing typed is echoed. */
export async function ask(context: Context, question: string, secret = false): Promise<string> {
  const { stdin } = context.io;
  if (!secret || !stdin.setRawMode) {
    context.out(question);
    return (await readLine(stdin)).trim();
  }
  context.out(question);
  stdin.setRawMode(true);
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = "";
      const onData = (chunk: Buffer | string) => {
        for (const char of chunk.toString()) {
          if (char === "\r" || char === "\n") {
            stdin.removeListener("data", onData);
            stdin.pause();
            context.out("\n");
            resolve(typed);
            return;
          }
          if (char === "\u0003" || char === "\u0004") {
            stdin.removeListener("data", onData);
            stdin.pause();
            context.out("\n");
            reject(new CliError("login cancelled"));
            return;
          }
          typed = char === "\u007f" || char === "\b" ? typed.slice(0, -1) : typed + char;
        }
      };
      stdin.on("data", onData);
      stdin.resume();
    });
  } finally {
    stdin.setRawMode(false);
  }
}
