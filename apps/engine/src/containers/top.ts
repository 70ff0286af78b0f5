// `docker top`: the host's `ps` with the caller's arguments, reduced to the rows of the container's
// processes — as dockerd does it, so any ps format the user knows works (swagger ContainerTop).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ApiError } from "../api/errors.js";

const run = promisify(execFile);

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** Splits `ps` output into titles and rows; the last column (the command) keeps its spaces. */
export function parsePsOutput(output: string, pids: ReadonlySet<number>): TopResult {
  const lines = output.split("\n").filter((line) => line.trim() !== "");
  const titles = (lines[0] ?? "").trim().split(/\s+/);
  const pidColumn = titles.indexOf("PID");
  if (pidColumn < 0) throw new ApiError(500, `Couldn't find PID field in ps output`);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const row = [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(" ")];
    const pid = Number(row[pidColumn]);
    if (Number.isInteger(pid) && pids.has(pid)) processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}

export async function top(pids: number[], psArgs = "-ef"): Promise<TopResult> {
  const args = psArgs.trim() === "" ? [] : psArgs.trim().split(/\s+/);
  let output: string;
  try {
    ({ stdout: output } = await run("ps", args, { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    const stderr = ((error as { stderr?: string }).stderr ?? "").trim();
    throw new ApiError(500, `ps: ${stderr || (error as Error).message}`);
  }
  return parsePsOutput(output, new Set(pids));
}
