import { expect } from "vitest";
import { DockerfileError, type Instruction, parseDockerfile, type StageInstruction } from "../src/index.js";

/** A Dockerfile from lines (regular string literals, so `${` needs no escaping). */
export function D(...lines: string[]): string {
  return `${lines.join("\n")}\n`;
}

/** The instructions of the only (or last) stage. */
export function body(text: string): StageInstruction[] {
  const df = parseDockerfile(text);
  return df.stages[df.stages.length - 1]!.instructions;
}

/** The first instruction of the last stage, narrowed to `kind`. */
export function first<K extends Instruction["kind"]>(text: string, kind: K): Extract<Instruction, { kind: K }> {
  const instruction = body(text)[0];
  expect(instruction?.kind).toBe(kind);
  return instruction as Extract<Instruction, { kind: K }>;
}

/** Parses and returns the DockerfileError thrown (fails if none). */
export function parseError(text: string): DockerfileError {
  try {
    parseDockerfile(text);
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error("expected a DockerfileError");
}

/** Returns the error `fn` throws (fails if none). */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}
