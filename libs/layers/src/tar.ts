// A small streaming tar codec: POSIX ustar headers with PAX extended headers (and GNU long names
// when reading), as layer tars use them (image-spec layer.md; POSIX pax(1) "pax Interchange Format").
//
// Why not tar-stream or node-tar: both decode PAX record values as UTF-8 text, which corrupts binary
// `SCHILY.xattr.*` values such as `security.capability`, and neither writes PAX uid/gid for large ids.
// Layers must carry xattrs byte for byte, so records are parsed and written here as bytes.
import { LayerError, quote } from "./errors.js";

export type EntryType = "file" | "directory" | "symlink" | "link" | "char" | "block" | "fifo";

export interface TarHeader {
  /** The path as stored in the archive (not normalised). Directories may end with `/`. */
  name: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (`0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Content length in bytes; only regular files have content. */
  size: number;
  /** Modification time in seconds since the epoch (fractional when a PAX `mtime` record has one). */
  mtime: number;
  /** Target of a symlink (as written) or of a hard link (an archive path). */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.*` (or `LIBARCHIVE.xattr.*`) PAX records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
  /** Owner names; informational only (image-spec: ignored where ids are supported). */
  uname?: string;
  gname?: string;
}

export interface TarEntry {
  header: TarHeader;
  /**
   * The entry's content. Read it before asking for the next entry; whatever is left unread is
   * skipped. Chunks are views into the input and are only valid until the next read.
   */
  body: AsyncIterable<Buffer>;
}

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
/** Largest PAX or GNU long-name payload accepted: a header is metadata, not a place for data. */
const MAX_META = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Reading

/** Pulls exact byte counts out of an async stream of chunks without copying more than it must. */
class ByteReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #buffer: Buffer = EMPTY;
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #pull(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#iterator.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    const value = next.value;
    const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    return true;
  }

  /** Exactly `n` bytes, or fewer only when the input ends first. */
  async read(n: number): Promise<Buffer> {
    while (this.#buffer.length < n) if (!(await this.#pull())) break;
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(out.length);
    return out;
  }

  /** Between 1 and `max` bytes, or an empty buffer at the end of the input. */
  async chunk(max: number): Promise<Buffer> {
    if (this.#buffer.length === 0 && !(await this.#pull())) return EMPTY;
    const out = this.#buffer.subarray(0, Math.min(max, this.#buffer.length));
    this.#buffer = this.#buffer.subarray(out.length);
    return out;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      const got = await this.chunk(n);
      if (got.length === 0) throw truncated();
      n -= got.length;
    }
  }

  /** True when the input has no byte left. */
  async atEnd(): Promise<boolean> {
    while (this.#buffer.length === 0) if (!(await this.#pull())) return true;
    return false;
  }

  /** Reads and discards everything left (the trailer after end-of-archive still counts for the diffID). */
  async drain(): Promise<void> {
    this.#buffer = EMPTY;
    while (await this.#pull()) this.#buffer = EMPTY;
  }

  async close(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      await this.#iterator.return?.();
    }
  }
}

function truncated(): LayerError {
  return new LayerError("INVALID_TAR", "invalid layer tar: unexpected end of archive");
}

function cString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.toString("utf8", 0, end === -1 ? field.length : end);
}

function parseNumber(block: Buffer, offset: number, length: number, field: string): number {
  const bytes = block.subarray(offset, offset + length);
  const first = bytes[0] ?? 0;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit of the first byte as a marker.
    if (first === 0xff) throw new LayerError("INVALID_TAR", `invalid layer tar: negative ${field} in header`);
    let value = first & 0x7f;
    for (let i = 1; i < bytes.length; i++) value = value * 256 + (bytes[i] ?? 0);
    if (!Number.isSafeInteger(value)) throw new LayerError("INVALID_TAR", `invalid layer tar: ${field} out of range`);
    return value;
  }
  const text = bytes.toString("latin1").replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new LayerError("INVALID_TAR", `invalid layer tar: bad ${field} field ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function verifyChecksum(block: Buffer): void {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const field = block.toString("latin1", 148, 156).replace(/\0.*$/s, "").trim();
  const stored = /^[0-7]{1,8}$/.test(field) ? Number.parseInt(field, 8) : -1;
  if (stored !== unsigned && stored !== signed) {
    throw new LayerError("INVALID_TAR", "invalid layer tar: header checksum mismatch (not a tar archive, or corrupt)");
  }
}

/** PAX records (`"%d %s=%s\n"`), values kept as bytes. */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding after the last record
    const space = data.indexOf(0x20, pos);
    const lengthText = space === -1 ? "" : data.toString("latin1", pos, space);
    const length = /^[0-9]{1,9}$/.test(lengthText) ? Number(lengthText) : Number.NaN;
    const end = pos + length;
    if (!(length > 0) || end > data.length || data[end - 1] !== 0x0a) {
      throw new LayerError("INVALID_TAR", "invalid layer tar: malformed PAX extended header");
    }
    const equals = data.indexOf(0x3d, space + 1);
    if (equals === -1 || equals >= end) throw new LayerError("INVALID_TAR", "invalid layer tar: malformed PAX record");
    records.set(data.toString("utf8", space + 1, equals), data.subarray(equals + 1, end - 1));
    pos = end;
  }
  return records;
}

function paxNumber(records: Map<string, Buffer>, key: string, fractional = false): number | undefined {
  const raw = records.get(key);
  if (raw === undefined || raw.length === 0) return undefined;
  const text = raw.toString("latin1");
  const valid = fractional ? /^-?[0-9]+(\.[0-9]+)?$/.test(text) : /^[0-9]+$/.test(text);
  const value = Number(text);
  if (!valid || !Number.isFinite(value) || (!fractional && !Number.isSafeInteger(value))) {
    throw new LayerError("INVALID_TAR", `invalid layer tar: bad PAX ${key} ${JSON.stringify(text.slice(0, 40))}`);
  }
  return value;
}

const TYPES: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "directory",
  "6": "fifo",
  D: "directory", // GNU dump dir: a directory whose content lists its names
};

/**
 * Reads a tar stream entry by entry. Stops at the end-of-archive marker (or a clean end of input at
 * a header boundary) and then drains the input, so a digest computed on it covers every byte.
 * Breaking out of the loop closes the input.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const input = new ByteReader(source);
  let globals = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let first = true;
  try {
    for (;;) {
      const block = await input.read(BLOCK);
      if (block.length === 0 && !first) break; // no end-of-archive marker: accepted, as GNU tar does
      if (block.length < BLOCK) throw block.length === 0 ? new LayerError("INVALID_TAR", "invalid layer tar: empty input") : truncated();
      if (isZeroBlock(block)) {
        // Only the end-of-archive marker (`first`) is the empty layer images carry for steps that
        // change no file (the gzip of 1024 zero bytes, sha256:a3ed95ca…): valid, with no entries.
        if (pax || longName !== undefined || longLink !== undefined) throw truncated();
        break;
      }
      first = false;
      verifyChecksum(block);
      const flag = String.fromCharCode(block[156]!);
      let size = parseNumber(block, 124, 12, "size");
      const padded = size + ((BLOCK - (size % BLOCK)) % BLOCK);

      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (size > MAX_META) throw new LayerError("INVALID_TAR", `invalid layer tar: ${size}-byte extended header`);
        const data = await input.read(size);
        if (data.length < size) throw truncated();
        await input.skip(padded - size);
        if (flag === "x") pax = parsePaxRecords(Buffer.from(data));
        else if (flag === "g") globals = new Map([...globals, ...parsePaxRecords(Buffer.from(data))]);
        else {
          const end = data.indexOf(0);
          const text = data.toString("utf8", 0, end === -1 ? data.length : end);
          if (flag === "L") longName = text;
          else longLink = text;
        }
        continue;
      }

      const records = pax ? new Map([...globals, ...pax]) : globals;
      pax = undefined;
      let type = TYPES[flag];
      if (flag === "V") {
        // A tape volume label names the archive, not a file.
        await input.skip(padded);
        longName = longLink = undefined;
        continue;
      }
      if (type === undefined || [...records.keys()].some((key) => key.startsWith("GNU.sparse."))) {
        const what = type === undefined ? `type ${JSON.stringify(flag)}` : "a sparse file";
        throw new LayerError("UNSUPPORTED_ENTRY", `unsupported tar entry ${quote(longName ?? cString(block, 0, 100))}: ${what}`);
      }

      const magic = block.toString("latin1", 257, 263);
      let name = cString(block, 0, 100);
      if (magic === "ustar\0" && block[345] !== 0) name = `${cString(block, 345, 155)}/${name}`;
      if (longName !== undefined) name = longName;
      let linkname = longLink ?? cString(block, 157, 100);
      longName = longLink = undefined;
      const path = records.get("path");
      if (path !== undefined) name = path.toString("utf8");
      const linkpath = records.get("linkpath");
      if (linkpath !== undefined) linkname = linkpath.toString("utf8");
      size = paxNumber(records, "size") ?? size;
      if (type === "file" && flag !== "7" && name.endsWith("/")) type = "directory"; // pre-POSIX directories

      const xattrs = new Map<string, Buffer>();
      for (const [key, value] of records) {
        if (key.startsWith("LIBARCHIVE.xattr.")) {
          xattrs.set(decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length)), Buffer.from(value.toString("latin1"), "base64"));
        }
      }
      for (const [key, value] of records) {
        if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice("SCHILY.xattr.".length), Buffer.from(value));
      }

      const header: TarHeader = {
        name,
        type,
        mode: parseNumber(block, 100, 8, "mode") & 0o7777,
        uid: paxNumber(records, "uid") ?? parseNumber(block, 108, 8, "uid"),
        gid: paxNumber(records, "gid") ?? parseNumber(block, 116, 8, "gid"),
        size: type === "file" ? size : 0,
        mtime: paxNumber(records, "mtime", true) ?? parseNumber(block, 136, 12, "mtime"),
        linkname,
        devmajor: type === "char" || type === "block" ? parseNumber(block, 329, 8, "devmajor") : 0,
        devminor: type === "char" || type === "block" ? parseNumber(block, 337, 8, "devminor") : 0,
        xattrs,
        uname: records.get("uname")?.toString("utf8") ?? cString(block, 265, 32),
        gname: records.get("gname")?.toString("utf8") ?? cString(block, 297, 32),
      };

      let remaining = header.size;
      const body: AsyncIterable<Buffer> = {
        async *[Symbol.asyncIterator]() {
          while (remaining > 0) {
            const chunk = await input.chunk(remaining);
            if (chunk.length === 0) throw truncated();
            remaining -= chunk.length;
            yield chunk;
          }
        },
      };
      yield { header, body };
      // Whatever the consumer left unread, then the padding (and content of non-file entries).
      await input.skip(remaining);
      remaining = 0;
      // An input that ends right after an entry's data, before its padding, ends the archive as Go's
      // archive/tar reads it: the docker CLI sends `build -f -` contexts that end so.
      if (padded > header.size && (await input.atEnd())) break;
      await input.skip(padded - header.size);
    }
    await input.drain();
  } finally {
    await input.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0 || code > 0x7f) return false;
  }
  return true;
}

/** A stand-in for a field that went into a PAX record, for readers that ignore PAX. */
function asciiFallback(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.charCodeAt(0);
    out += code === 0 || code > 0x7f ? "_" : char;
  }
  return out;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(value.toString(8).padStart(length - 1, "0"), offset, length - 1, "latin1");
  block[offset + length - 1] = 0;
}

/** Splits an ASCII path into ustar's prefix (≤155) and name (≤100) fields, or null if it cannot. */
function splitUstarName(path: string): { prefix: string; name: string } | null {
  if (!isAscii(path)) return null;
  if (path.length <= 100) return { prefix: "", name: path };
  // The split must fall on a `/` with at most 155 bytes before it and 100 after.
  for (let slash = path.indexOf("/"); slash !== -1 && slash <= 155; slash = path.indexOf("/", slash + 1)) {
    if (path.length - slash - 1 <= 100 && slash > 0) return { prefix: path.slice(0, slash), name: path.slice(slash + 1) };
  }
  return null;
}

function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), typeof value === "string" ? Buffer.from(value, "utf8") : value, NEWLINE]);
  // The length counts its own digits.
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), "latin1"), body]);
}
const NEWLINE = Buffer.from("\n");

const TYPEFLAGS: Record<EntryType, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  directory: "5",
  fifo: "6",
};

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function ustarBlock(fields: UstarFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name, 0, 100, "utf8");
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, fields.mtime);
  block.write(fields.typeflag, 156, 1, "latin1");
  block.write(fields.linkname, 157, 100, "utf8");
  block.write("ustar\0" + "00", 257, 8, "latin1");
  block.write(fields.uname, 265, 32, "utf8");
  block.write(fields.gname, 297, 32, "utf8");
  writeOctal(block, 329, 8, fields.devmajor);
  writeOctal(block, 337, 8, fields.devminor);
  block.write(fields.prefix, 345, 155, "utf8");
  let sum = 0;
  block.fill(0x20, 148, 156);
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
  return block;
}

/** The zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

/**
 * Encodes one entry's header: a ustar block, preceded by a PAX extended header when a field does not
 * fit ustar (long or non-ASCII names, ids above 2097151, huge sizes, mtimes before 1970) or the
 * entry has xattrs. Output depends only on the header: PAX records are sorted, no atime/ctime is
 * written, the PAX block itself has fixed metadata. Whole-second mtimes are written (fractions are
 * dropped, as Docker does).
 */
export function encodeHeader(header: TarHeader): Buffer {
  const records: [string, Buffer | string][] = [];
  const name = header.type === "directory" && !header.name.endsWith("/") ? `${header.name}/` : header.name;
  const split = splitUstarName(name);
  if (!split) records.push(["path", name]);
  const linkname = header.linkname;
  const linkFits = isAscii(linkname) && Buffer.byteLength(linkname) <= 100;
  if (!linkFits) records.push(["linkpath", linkname]);
  const uid = header.uid;
  const gid = header.gid;
  if (uid > MAX_OCTAL_7) records.push(["uid", String(uid)]);
  if (gid > MAX_OCTAL_7) records.push(["gid", String(gid)]);
  const size = header.type === "file" ? header.size : 0;
  if (size > MAX_OCTAL_11) records.push(["size", String(size)]);
  const mtime = Math.floor(header.mtime);
  const mtimeFits = mtime >= 0 && mtime <= MAX_OCTAL_11;
  if (!mtimeFits) records.push(["mtime", String(mtime)]);
  for (const key of [...header.xattrs.keys()].sort()) records.push([`SCHILY.xattr.${key}`, header.xattrs.get(key)!]);
  records.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const fallbackName = asciiFallback(name);
  const entry = ustarBlock({
    name: split ? split.name : fallbackName.slice(0, 100),
    prefix: split ? split.prefix : "",
    mode: header.mode & 0o7777,
    uid: uid > MAX_OCTAL_7 ? 0 : uid,
    gid: gid > MAX_OCTAL_7 ? 0 : gid,
    size: size > MAX_OCTAL_11 ? 0 : size,
    mtime: mtimeFits ? mtime : 0,
    typeflag: TYPEFLAGS[header.type],
    linkname: linkFits ? linkname : asciiFallback(linkname).slice(0, 100),
    uname: header.uname ?? "",
    gname: header.gname ?? "",
    devmajor: header.devmajor,
    devminor: header.devminor,
  });
  if (records.length === 0) return entry;

  const body = Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  const base = fallbackName.replace(/\/+$/, "").split("/").pop() ?? "";
  const paxHeader = ustarBlock({
    name: `PaxHeaders/${base}`.slice(0, 100),
    prefix: "",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    typeflag: "x",
    linkname: "",
    uname: "",
    gname: "",
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, body, padding(body.length), entry]);
}

/**
 * A header for a file on disk: its mode bits, owner and mtime (whole seconds), type and anything
 * else from `fields`. Device numbers and xattrs are the caller's to add.
 */
export function statHeader(
  name: string,
  stats: { mode: number; uid: number; gid: number; mtimeMs: number },
  fields: Partial<TarHeader>,
): TarHeader {
  return {
    name,
    type: "file",
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    size: 0,
    mtime: Math.floor(stats.mtimeMs / 1000),
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...fields,
  };
}
