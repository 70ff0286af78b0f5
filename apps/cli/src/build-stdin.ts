// `minato build -` and `minato build -f - PATH`: a context or a Dockerfile read from stdin, sent as
// the docker CLI sends them to the classic builder.
import { randomBytes } from "node:crypto";
import { type EntryType, encodeHeader, padding } from "@minato/layers";

/** Everything on stdin. */
export async function readAll(stdin: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** A tar, compressed or not (the daemon decompresses it), rather than a Dockerfile's text. */
export function isArchive(data: Buffer): boolean {
  const starts = (...bytes: number[]) => bytes.every((b, i) => data[i] === b);
  if (starts(0x1f, 0x8b) || starts(0x42, 0x5a, 0x68) || starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00) || starts(0x28, 0xb5, 0x2f, 0xfd))
    return true;
  return data.length >= 262 && data.toString("latin1", 257, 262) === "ustar";
}

/** One regular file's tar entry: header, content, padding. */
export function fileEntry(name: string, content: Buffer, mode = 0o600): Buffer {
  const header = encodeHeader({
    name,
    type: "file" as EntryType,
    mode,
    uid: 0,
    gid: 0,
    size: content.length,
    mtime: Math.floor(Date.now() / 1000),
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
  });
  return Buffer.concat([header, content, padding(content.length)]);
}

/**
 * The name a Dockerfile read from stdin takes in a directory's context (as the docker CLI names it,
 * `.dockerfile.<random>`), so it cannot collide with a file of the context; `.dockerignore` gets it
 * appended so that `COPY .` does not copy it.
 */
export function stdinDockerfileName(): string {
  return `.dockerfile.${randomBytes(10).toString("hex")}`;
}
