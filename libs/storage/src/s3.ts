import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { type Digest, type DigestAlgorithm, Digester, isDigest, parseDigest } from "@minato/oci";
import {
  assertUploadId,
  BlobNotFoundError,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type CommitResult,
  DigestMismatchError,
  StorageError,
  type StoredBlob,
  UploadNotFoundError,
  UploadOffsetError,
  UploadTooLargeError,
} from "./driver.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3's limits: parts of 5 MiB to 5 GiB (the last may be smaller), at most 10,000 of them; CopyObject up to 5 GiB. */
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * GiB;
const MAX_PARTS = 10_000;

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket ("" for the bucket's root); slashes at either end are ignored. */
  prefix?: string;
  /** Region; defaults to AWS_REGION, else the AWS config file, else us-east-1 when `endpoint` is set. */
  region?: string;
  /** Endpoint URL of an S3-compatible server (MinIO, Ceph RGW, R2, Garage…); AWS when absent. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Static credentials; absent, the standard AWS chain is used (env, profile, SSO, web identity, ECS, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Size of the parts an upload is sent in (and the most a PATCH buffers in memory); default 8 MiB. */
  partSize?: number;
  /** Committed blobs up to this size are copied with one CopyObject, larger ones part by part; default 5 GiB. */
  maxCopyObjectSize?: number;
  /** Size of the parts of such a multipart copy; default 1 GiB. */
  copyPartSize?: number;
  /** When true, {@link S3BlobStore.redirectUrl} hands out presigned GET URLs. */
  redirect?: boolean;
  /** Lifetime of a presigned URL, seconds; default 900. */
  redirectExpiresIn?: number;
  /** Attempts per S3 request (the SDK retries throttling, 5xx and network errors); default 3. */
  maxAttempts?: number;
}

/** An S3 request that failed, with the S3 error code (or the network error) and a readable message. */
export class S3StorageError extends StorageError {
  constructor(
    message: string,
    /** S3 error code (NoSuchKey, NoSuchBucket, AccessDenied…) or `Unreachable` for network failures. */
    readonly code: string,
    readonly status: number | undefined,
    cause: unknown,
  ) {
    super(message);
    this.cause = cause;
  }
}

interface Part {
  n: number;
  etag: string;
  size: number;
}

/**
 * What a session has durably received, generation `gen`. `parts` are uploaded parts of the
 * multipart upload `uploadId` (at the session's data key); the bytes after them, fewer than one
 * part, are in the tail object of generation `tail.gen`. `sealed`: the bytes were assembled into the
 * data object by a commit that could not verify them yet (see {@link S3BlobStore.commit}).
 * `garbage`: generations of tail objects no longer referenced, still to delete.
 */
interface UploadState {
  gen: number;
  createdAt: number;
  size: number;
  uploadId?: string;
  parts: Part[];
  sealed?: boolean;
  tail?: { gen: number; size: number };
  garbage?: number[];
}

/** The fields a change of state sets; generation, tail and garbage are the writer's business. */
type StateChange = Pick<UploadState, "size" | "uploadId" | "parts" | "sealed">;

/** A session as this process knows it: its state and the running hash. */
interface Session {
  state: UploadState;
  /** Hash of every byte of the session, valid while `offset` equals its size. */
  hash?: { digester: Digester; offset: number };
  /**
   * While an append of this process streams into the session: its size counting the bytes that
   * append took from its body so far, sent or still buffered. {@link S3BlobStore.uploadSize} reports
   * it, as the filesystem driver's growing file does: they stay appended unless S3 itself fails.
   */
  receiving?: number;
}

function partsBytes(state: UploadState): number {
  return state.parts.reduce((sum, part) => sum + part.size, 0);
}

function tailLength(state: UploadState): number {
  return state.tail?.size ?? 0;
}

/** Sizes of `count` nearly equal pieces of `total` bytes (each at least total/count rounded down). */
function splitEvenly(total: number, maxPiece: number): ByteRange[] {
  const count = Math.max(1, Math.ceil(total / maxPiece));
  const ranges: ByteRange[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const length = Math.floor(total / count) + (i < total % count ? 1 : 0);
    ranges.push({ start, end: start + length - 1 });
    start += length;
  }
  return ranges;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/**
 * S3 driver. Layout under `<prefix>/`:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed, verified content
 *   uploads/<uuid>/state.0, state.1           a session's state (JSON: size, part list…), written in turn
 *   uploads/<uuid>/tail.<generation>          the bytes after the last part (less than one part)
 *   uploads/<uuid>/data                       the session's multipart upload, and the object it completes to
 *
 * Uploads stream: each PATCH fills a buffer of one part (the session's tail, read back from S3, then
 * the request's bytes), sends every full buffer as the next part of the session's multipart upload
 * (one part in flight while the next fills: at most two parts in memory per writing request), then
 * writes what is left as a new tail object and a new state naming it (see {@link #writeState}): the
 * recorded size, part list and tail never disagree, whatever is killed when, even on servers whose
 * PUT is not atomic. The state is also written after every part, so a registry that dies
 * mid-request resumes from the last part. Small PATCHes (1 byte, odd sizes) only rewrite the tail,
 * at most one part long (S3 cannot append, so that is the price of a tail that survives restarts:
 * clients that send tiny chunks cost up to a part of traffic per chunk). Nothing here lists parts or
 * multipart uploads: everything is in the state, which assumes one registry process writes a given
 * session at a time.
 *
 * Commit: S3 fixes an object's key when its multipart upload is created, long before the digest is
 * known, so the upload completes at its own data key and is then copied server-side (CopyObject, or
 * UploadPartCopy above 5 GiB) to its content address. Verification comes before that copy, so a blob
 * is visible only once verified: while this process saw every byte of the session it holds the
 * running hash and checks it before touching S3; after a restart (or for another algorithm) it
 * completes the upload, hashes the data object by streaming it back, and copies only if it matches.
 * A session smaller than one part never starts a multipart upload: its bytes are the tail, verified
 * and written to the content address with one PUT.
 */
export class S3BlobStore implements BlobStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #maxCopyObject: number;
  readonly #copyPartSize: number;
  readonly #redirect: boolean;
  readonly #redirectExpiresIn: number;
  readonly #where: string;
  readonly #sessions = new Map<string, Session>();
  readonly #locks = new Map<string, Promise<void>>();

  private constructor(options: S3BlobStoreOptions) {
    if (!options.bucket) throw new StorageError("S3 storage needs a bucket");
    this.#bucket = options.bucket;
    this.#prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.#partSize = options.partSize ?? 8 * MiB;
    this.#maxCopyObject = options.maxCopyObjectSize ?? MAX_PART;
    this.#copyPartSize = options.copyPartSize ?? GiB;
    if (!(this.#partSize >= MIN_PART && this.#partSize <= MAX_PART))
      throw new StorageError(`S3 part size must be between 5 MiB and 5 GiB, not ${this.#partSize}`);
    if (!(this.#copyPartSize >= MIN_PART && this.#copyPartSize <= MAX_PART && this.#maxCopyObject <= MAX_PART))
      throw new StorageError("S3 copy sizes must be between 5 MiB and 5 GiB");
    this.#redirect = options.redirect ?? false;
    this.#redirectExpiresIn = options.redirectExpiresIn ?? 900;
    this.#where = `s3://${this.#bucket}/${this.#prefix}${options.endpoint ? ` at ${options.endpoint}` : ""}`;

    const region = options.region || process.env.AWS_REGION || (options.endpoint ? "us-east-1" : undefined);
    this.#client = new S3Client({
      ...(region ? { region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: options.maxAttempts ?? 3,
      // Many S3-compatible servers reject the SDK's newer default trailing checksums; integrity is
      // what the content digest verifies anyway.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // A socket idle this long fails its request (downloads to a client that stalls that long too).
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 300_000 },
    });
    if (options.forcePathStyle) {
      // Bucket-level requests are `/<bucket>` in S3's path-style grammar; the SDK sends `/<bucket>/`,
      // which some S3-compatible servers sign differently. Both name the same bucket on AWS.
      const bucketPath = `/${this.#bucket}/`;
      this.#client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { path?: string };
          if (request.path === bucketPath) request.path = bucketPath.slice(0, -1);
          return next(args);
        },
        { step: "build", name: "minatoBucketPath" },
      );
    }
  }

  /** Connects and checks that the bucket exists and the credentials may use it. */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const store = new S3BlobStore(options);
    await store.#call("HeadBucket", store.#bucket, () => store.#client.send(new HeadBucketCommand({ Bucket: store.#bucket })));
    return store;
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.#client.destroy();
  }

  // ── keys ──────────────────────────────────────────────────────────────────────────────────────

  #key(path: string): string {
    return this.#prefix ? `${this.#prefix}/${path}` : path;
  }

  #blobKey(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return this.#key(`blobs/${algorithm}/${encoded.slice(0, 2)}/${encoded}`);
  }

  /** Two state slots, written in turn: a torn write (on a server whose PUT is not atomic) spares the other. */
  #stateKey(id: string, gen: number): string {
    return this.#key(`uploads/${id}/state.${gen % 2}`);
  }

  #tailKey(id: string, gen: number): string {
    return this.#key(`uploads/${id}/tail.${gen}`);
  }

  #dataKey(id: string): string {
    return this.#key(`uploads/${id}/data`);
  }

  // ── requests and errors ───────────────────────────────────────────────────────────────────────

  /** Runs one S3 request; failures become {@link S3StorageError}s that say what, where and why. */
  async #call<T>(operation: string, key: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw this.#explain(operation, key, error);
    }
  }

  #explain(operation: string, key: string, error: unknown): S3StorageError {
    if (error instanceof S3StorageError) return error;
    const e = error as {
      name?: string;
      code?: string;
      message?: string;
      errors?: { code?: string }[];
      $metadata?: { httpStatusCode?: number };
    };
    const status = e.$metadata?.httpStatusCode;
    const network = e.code ?? e.errors?.find((inner) => inner.code)?.code;
    const target = key === this.#bucket ? `bucket ${this.#bucket}` : `s3://${this.#bucket}/${key}`;
    if (status === undefined && (NETWORK_CODES.has(network ?? "") || e.name === "TimeoutError" || e.name === "AbortError")) {
      return new S3StorageError(
        `S3 ${operation} ${target}: storage unreachable (${network ?? e.name}) — ${this.#where}`,
        "Unreachable",
        undefined,
        error,
      );
    }
    // Errors of HEAD requests carry no body, hence no code: name them by their status.
    let code = e.name && e.name !== "Unknown" && e.name !== "UnknownError" ? e.name : "";
    if (!code || code === "NotFound" || code === "Forbidden")
      code = status === 404 ? (key === this.#bucket ? "NoSuchBucket" : "NotFound") : status === 403 ? "AccessDenied" : code || "Unknown";
    const hint =
      code === "NoSuchBucket"
        ? `bucket ${this.#bucket} does not exist`
        : ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"].includes(code)
          ? "access denied: check the S3 credentials and the bucket policy"
          : (e.message ?? "");
    return new S3StorageError(
      `S3 ${operation} ${target} failed: ${code}${status ? ` (HTTP ${status})` : ""}: ${hint}`,
      code,
      status,
      error,
    );
  }

  static #isMissing(error: unknown): boolean {
    return error instanceof S3StorageError && (error.code === "NoSuchKey" || error.code === "NotFound");
  }

  static #isNoSuchUpload(error: unknown): boolean {
    return error instanceof S3StorageError && error.code === "NoSuchUpload";
  }

  /**
   * GETs bytes `start`–`end` of an object (end is capped at its size). Servers may ignore Range or
   * answer a wider one (some treat `bytes=0-0` as the whole object): the answer's Content-Range is
   * checked and the stream cut to what was asked for.
   */
  async #getRange(key: string, range?: ByteRange): Promise<Readable> {
    const output = await this.#call("GetObject", key, () =>
      this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      ),
    );
    const body = output.Body as Readable;
    if (!range) return body;
    const served = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(output.ContentRange ?? "");
    const servedStart = served ? Number(served[1]) : 0;
    const servedEnd = served ? Number(served[2]) : Number.POSITIVE_INFINITY;
    if (servedStart === range.start && servedEnd <= range.end) return body;
    if (servedStart > range.start) {
      body.destroy();
      throw new S3StorageError(
        `S3 GetObject ${key}: server answered range ${output.ContentRange} for ${range.start}-`,
        "InvalidRange",
        206,
        undefined,
      );
    }
    return Readable.from(slice(body, range.start - servedStart, range.end - range.start + 1), { objectMode: false });
  }

  async #getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.#getRange(key, range)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async #put(key: string, body: Buffer): Promise<void> {
    await this.#call("PutObject", key, () => this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body })));
  }

  async #deleteObject(key: string): Promise<void> {
    await this.#call("DeleteObject", key, () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })));
  }

  async #head(key: string): Promise<number | undefined> {
    try {
      const output = await this.#call("HeadObject", key, () =>
        this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key })),
      );
      return output.ContentLength ?? 0;
    } catch (error) {
      if (S3BlobStore.#isMissing(error)) return undefined;
      throw error;
    }
  }

  // ── blobs ─────────────────────────────────────────────────────────────────────────────────────

  async stat(digest: Digest): Promise<BlobStat | undefined> {
    const size = await this.#head(this.#blobKey(digest));
    return size === undefined ? undefined : { size };
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      return await this.#getRange(this.#blobKey(digest), range);
    } catch (error) {
      if (S3BlobStore.#isMissing(error)) throw new BlobNotFoundError(`blob ${digest} not found`);
      throw error;
    }
  }

  async delete(digest: Digest): Promise<boolean> {
    const key = this.#blobKey(digest);
    if ((await this.#head(key)) === undefined) return false;
    await this.#deleteObject(key);
    return true;
  }

  /** A presigned GET URL of the blob when redirects are enabled (the client sends its own Range). */
  async redirectUrl(digest: Digest): Promise<string | undefined> {
    if (!this.#redirect) return undefined;
    const command = new GetObjectCommand({ Bucket: this.#bucket, Key: this.#blobKey(digest) });
    return getSignedUrl(this.#client, command, { expiresIn: this.#redirectExpiresIn });
  }

  async healthy(): Promise<boolean> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }), { abortSignal: AbortSignal.timeout(5_000) });
      return true;
    } catch {
      return false;
    }
  }

  // ── upload sessions ───────────────────────────────────────────────────────────────────────────

  /** One operation at a time per session in this process (the registry already serialises writers). */
  async #locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(id) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#locks.set(id, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    }
  }

  /**
   * Records a new state. A new tail goes first to an object of its own, named by the new generation
   * (never overwriting the tail the current state names), then the state goes to its slot; only then
   * is the superseded tail deleted. Whatever is killed when, the newest whole state names whole
   * objects. An interrupted write leaves at most the tail of generation gen+1, which the next write
   * replaces and {@link #discard} removes.
   */
  async #writeState(id: string, session: Session, change: StateChange, tail: Buffer | "keep"): Promise<void> {
    const previous = session.state;
    const gen = previous.gen + 1;
    let tailRef = previous.tail;
    if (tail !== "keep") {
      tailRef = undefined;
      if (tail.byteLength > 0) {
        await this.#put(this.#tailKey(id, gen), tail);
        tailRef = { gen, size: tail.byteLength };
      }
    }
    const garbage = [...(previous.garbage ?? [])];
    if (previous.tail && previous.tail.gen !== tailRef?.gen) garbage.push(previous.tail.gen);
    const state: UploadState = {
      gen,
      createdAt: previous.createdAt,
      size: change.size,
      parts: change.parts,
      ...(change.uploadId ? { uploadId: change.uploadId } : {}),
      ...(change.sealed ? { sealed: true } : {}),
      ...(tailRef ? { tail: tailRef } : {}),
      ...(garbage.length > 0 ? { garbage } : {}),
    };
    await this.#put(this.#stateKey(id, gen), Buffer.from(JSON.stringify(state)));
    session.state = state;
    if (garbage.length === 0) return;
    // Best effort: what is not deleted now is still listed, and goes with the next write or the abort.
    const left: number[] = [];
    for (const old of garbage) await this.#deleteObject(this.#tailKey(id, old)).catch(() => left.push(old));
    session.state = { ...state, garbage: left.length > 0 ? left : undefined };
  }

  /** The newest readable state slot, or undefined when the session has none. */
  async #loadState(id: string): Promise<Session | undefined> {
    const slots = await Promise.all(
      [0, 1].map(async (slot) => {
        try {
          return await this.#getBuffer(this.#stateKey(id, slot));
        } catch (error) {
          if (S3BlobStore.#isMissing(error)) return undefined;
          throw error;
        }
      }),
    );
    let newest: UploadState | undefined;
    for (const slot of slots) {
      if (!slot) continue;
      let state: UploadState;
      try {
        state = JSON.parse(slot.toString("utf8")) as UploadState;
      } catch {
        continue; // torn write: the other slot holds the previous state
      }
      if (typeof state.gen === "number" && Array.isArray(state.parts) && (!newest || state.gen > newest.gen)) newest = state;
    }
    if (!newest && slots.some(Boolean)) throw new StorageError(`upload ${id}: no readable state in ${this.#key(`uploads/${id}/`)}`);
    return newest ? { state: newest } : undefined;
  }

  async #session(id: string): Promise<Session> {
    const cached = this.#sessions.get(id);
    if (cached) return cached;
    const loaded = await this.#loadState(id);
    // createUpload (or another load) may have cached the session while this one read S3: that copy is
    // the one writers update, so it wins; replacing it would hide bytes being received from readers.
    const raced = this.#sessions.get(id);
    if (raced) return raced;
    if (!loaded) throw new UploadNotFoundError(`unknown upload ${id}`);
    this.#sessions.set(id, loaded);
    return loaded;
  }

  /** Reads the session's tail into `into` (which must hold it); returns its length. */
  async #readTail(id: string, session: Session, into: Buffer): Promise<number> {
    const tail = session.state.tail;
    if (!tail) return 0;
    let filled = 0;
    for await (const chunk of await this.#getRange(this.#tailKey(id, tail.gen))) {
      const bytes = chunk as Buffer;
      if (filled + bytes.byteLength > tail.size) throw new StorageError(`upload ${id}: tail object longer than recorded`);
      bytes.copy(into, filled);
      filled += bytes.byteLength;
    }
    if (filled !== tail.size) throw new StorageError(`upload ${id}: tail truncated (${filled} of ${tail.size} bytes)`);
    return filled;
  }

  async #uploadPart(key: string, uploadId: string, n: number, body: Buffer): Promise<Part> {
    const output = await this.#call("UploadPart", key, () =>
      this.#client.send(new UploadPartCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body })),
    );
    if (!output.ETag) throw new S3StorageError(`S3 UploadPart ${key}: no ETag in the answer`, "MissingETag", undefined, undefined);
    return { n, etag: output.ETag, size: body.byteLength };
  }

  async #createMultipart(key: string): Promise<string> {
    const output = await this.#call("CreateMultipartUpload", key, () =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key })),
    );
    if (!output.UploadId) throw new S3StorageError(`S3 CreateMultipartUpload ${key}: no UploadId`, "MissingUploadId", undefined, undefined);
    return output.UploadId;
  }

  async #completeMultipart(key: string, uploadId: string, parts: Part[]): Promise<void> {
    await this.#call("CompleteMultipartUpload", key, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.n, ETag: part.etag })) },
        }),
      ),
    );
  }

  /**
   * Aborts a multipart upload. Servers without AbortMultipartUpload (s3rver) get the portable
   * equivalent: complete it (every recorded part is a full one) and delete the object it made —
   * only ever for a session's private data key, never a content address.
   */
  async #abortMultipart(key: string, uploadId: string, parts: Part[], completeIfUnsupported = true): Promise<void> {
    try {
      await this.#call("AbortMultipartUpload", key, () =>
        this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId })),
      );
      return;
    } catch (error) {
      if (S3BlobStore.#isNoSuchUpload(error)) return;
      const unsupported = error instanceof S3StorageError && (error.status === 405 || error.status === 501);
      if (!unsupported || !completeIfUnsupported) throw error;
    }
    try {
      const list = parts.length > 0 ? parts : [await this.#uploadPart(key, uploadId, 1, Buffer.alloc(0))];
      await this.#completeMultipart(key, uploadId, list);
    } catch (error) {
      if (!S3BlobStore.#isNoSuchUpload(error)) throw error;
    }
    await this.#deleteObject(key);
  }

  async createUpload(id: string): Promise<void> {
    assertUploadId(id);
    const state: UploadState = { gen: 1, createdAt: Date.now(), size: 0, parts: [] };
    await this.#put(this.#stateKey(id, state.gen), Buffer.from(JSON.stringify(state)));
    this.#sessions.set(id, { state, hash: { digester: new Digester("sha256"), offset: 0 } });
  }

  async uploadSize(id: string): Promise<number | undefined> {
    try {
      assertUploadId(id);
      const session = await this.#session(id);
      return session.receiving ?? session.state.size;
    } catch (error) {
      if (error instanceof UploadNotFoundError) return undefined;
      throw error;
    }
  }

  async append(id: string, offset: number, body: Readable, maxBytes = Number.POSITIVE_INFINITY): Promise<number> {
    assertUploadId(id);
    return this.#locked(id, async () => {
      const session = await this.#session(id);
      if (session.state.size !== offset) throw new UploadOffsetError(session.state.size);
      if (session.state.sealed) await this.#unseal(id, session);

      let hash = session.hash;
      if (hash && hash.offset !== offset) hash = session.hash = undefined;
      // At most two parts' worth of memory per writing request, whatever the blob's size: one
      // filling from the request while the previous one is on its way to S3.
      let buffer: Buffer = Buffer.allocUnsafe(this.#partSize);
      let spare: Buffer | undefined;
      let fill = await this.#readTail(id, session, buffer);
      let written = 0;
      let failure: unknown;
      let sending: Promise<void> | undefined;
      let sendFailure: { error: unknown } | undefined;
      const settle = async () => {
        await sending;
        sending = undefined;
        if (sendFailure) throw sendFailure.error;
      };
      try {
        for await (const data of body) {
          const chunk = data as Buffer;
          if (written + chunk.byteLength > maxBytes) throw new UploadTooLargeError(`upload exceeds ${maxBytes} bytes`);
          written += chunk.byteLength;
          session.receiving = offset + written;
          hash?.digester.update(chunk);
          for (let at = 0; at < chunk.byteLength; ) {
            const copied = chunk.copy(buffer, fill, at);
            fill += copied;
            at += copied;
            if (fill === this.#partSize) {
              await settle();
              const full = buffer;
              buffer = spare ?? Buffer.allocUnsafe(this.#partSize);
              spare = full;
              sending = this.#sendPart(id, session, full).catch((error: unknown) => {
                sendFailure = { error };
              });
              fill = 0;
            }
          }
        }
      } catch (error) {
        failure = error;
      }
      // Whatever arrived stays appended (the client resumes from the size it is told), unless S3
      // itself failed: then the durable state is the last one written, and this process forgets its copy.
      try {
        await settle();
        const state = session.state;
        const change = { size: partsBytes(state) + fill, parts: state.parts, uploadId: state.uploadId };
        await this.#writeState(id, session, change, written === 0 ? "keep" : buffer.subarray(0, fill));
      } catch (error) {
        this.#sessions.delete(id);
        throw failure ?? error;
      } finally {
        session.receiving = undefined;
      }
      if (failure !== undefined) {
        session.hash = undefined;
        throw failure;
      }
      if (hash) hash.offset = session.state.size;
      return session.state.size;
    });
  }

  /** Sends a full buffer as the session's next part and records it (the tail is then empty). */
  async #sendPart(id: string, session: Session, buffer: Buffer): Promise<void> {
    let uploadId = session.state.uploadId;
    if (!uploadId) {
      // Record the new multipart upload before its first part. (Only a crash between these two
      // requests orphans one: without ListMultipartUploads nothing can find it; on AWS a lifecycle
      // rule aborting incomplete multipart uploads reaps it.)
      uploadId = await this.#createMultipart(this.#dataKey(id));
      const state = session.state;
      await this.#writeState(id, session, { size: state.size, parts: state.parts, uploadId }, "keep");
    }
    const n = session.state.parts.length + 1;
    if (n > MAX_PARTS) throw new UploadTooLargeError(`upload exceeds ${MAX_PARTS} parts of ${this.#partSize} bytes`);
    const part = await this.#uploadPart(this.#dataKey(id), uploadId, n, buffer);
    const parts = [...session.state.parts, part];
    await this.#writeState(id, session, { size: partsBytes(session.state) + part.size, parts, uploadId }, Buffer.alloc(0));
  }

  /**
   * Assembles the session's bytes (parts, then the tail as the last part) into its data object and
   * records it as sealed. Idempotent across a crash: a completed upload shows as NoSuchUpload, and
   * the data object of the right size proves it.
   */
  async #seal(id: string, session: Session): Promise<void> {
    const state = session.state;
    const key = this.#dataKey(id);
    const uploadId = state.uploadId as string;
    const parts = [...state.parts];
    const tail = Buffer.allocUnsafe(tailLength(state));
    await this.#readTail(id, session, tail);
    try {
      if (tail.byteLength > 0) parts.push(await this.#uploadPart(key, uploadId, parts.length + 1, tail));
      await this.#completeMultipart(key, uploadId, parts);
    } catch (error) {
      if (!S3BlobStore.#isNoSuchUpload(error) || (await this.#head(key)) !== state.size) throw error;
    }
    await this.#writeState(id, session, { size: state.size, parts: [], sealed: true }, Buffer.alloc(0));
  }

  /**
   * Reopens a sealed session for more bytes: a new multipart upload at the data key whose first
   * parts are server-side copies of the sealed object (at least one full part long, so each copied
   * piece meets S3's minimum).
   */
  async #unseal(id: string, session: Session): Promise<void> {
    const key = this.#dataKey(id);
    const state = session.state;
    const uploadId = await this.#createMultipart(key);
    const parts: Part[] = [];
    for (const range of splitEvenly(state.size, this.#copyPartSize)) {
      const n = parts.length + 1;
      const output = await this.#call("UploadPartCopy", key, () =>
        this.#client.send(
          new UploadPartCopyCommand({
            Bucket: this.#bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: n,
            CopySource: encodeURI(`${this.#bucket}/${key}`),
            CopySourceRange: `bytes=${range.start}-${range.end}`,
          }),
        ),
      );
      parts.push({ n, etag: output.CopyPartResult?.ETag ?? "", size: range.end - range.start + 1 });
    }
    await this.#writeState(id, session, { size: state.size, uploadId, parts }, "keep");
  }

  async #hashObject(key: string, algorithm: DigestAlgorithm): Promise<Digest> {
    const digester = new Digester(algorithm);
    for await (const chunk of await this.#getRange(key)) digester.update(chunk as Buffer);
    return digester.digest();
  }

  /** Server-side copy; the target appears whole or not at all. */
  async #copy(source: string, target: string, size: number): Promise<void> {
    const copySource = encodeURI(`${this.#bucket}/${source}`);
    if (size <= this.#maxCopyObject) {
      await this.#call("CopyObject", target, () =>
        this.#client.send(new CopyObjectCommand({ Bucket: this.#bucket, Key: target, CopySource: copySource })),
      );
    } else {
      const uploadId = await this.#createMultipart(target);
      const parts: Part[] = [];
      try {
        for (const range of splitEvenly(size, this.#copyPartSize)) {
          const n = parts.length + 1;
          const output = await this.#call("UploadPartCopy", target, () =>
            this.#client.send(
              new UploadPartCopyCommand({
                Bucket: this.#bucket,
                Key: target,
                UploadId: uploadId,
                PartNumber: n,
                CopySource: copySource,
                CopySourceRange: `bytes=${range.start}-${range.end}`,
              }),
            ),
          );
          parts.push({ n, etag: output.CopyPartResult?.ETag ?? "", size: range.end - range.start + 1 });
        }
        await this.#completeMultipart(target, uploadId, parts);
      } catch (error) {
        await this.#abortMultipart(target, uploadId, [], false).catch(() => undefined);
        throw error;
      }
    }
    const copied = await this.#head(target);
    if (copied !== size) {
      await this.#deleteObject(target).catch(() => undefined);
      throw new StorageError(`S3 copy to ${target} produced ${copied} bytes, expected ${size}`);
    }
  }

  async commit(id: string, digest: Digest): Promise<CommitResult> {
    assertUploadId(id);
    const { algorithm } = parseDigest(digest);
    const target = this.#blobKey(digest);
    return this.#locked(id, async () => {
      const session = await this.#session(id);
      const state = session.state;
      const size = state.size;
      const hash = session.hash;
      const running = hash && hash.offset === size && hash.digester.algorithm === algorithm ? hash.digester.digest() : undefined;
      session.hash = undefined;
      if (running !== undefined && running !== digest) throw new DigestMismatchError(digest, running);

      if (!state.sealed && state.parts.length === 0) {
        // Less than one part: the bytes are the tail, bounded by the part size.
        const bytes = Buffer.allocUnsafe(size);
        await this.#readTail(id, session, bytes);
        let actual = running;
        if (actual === undefined) {
          const digester = new Digester(algorithm);
          digester.update(bytes);
          actual = digester.digest();
        }
        if (actual !== digest) throw new DigestMismatchError(digest, actual);
        await this.#put(target, bytes);
      } else {
        if (!state.sealed) await this.#seal(id, session);
        if (running === undefined) {
          const actual = await this.#hashObject(this.#dataKey(id), algorithm);
          if (actual !== digest) throw new DigestMismatchError(digest, actual);
        }
        await this.#copy(this.#dataKey(id), target, size);
      }
      await this.#discard(id, session.state);
      return { digest, size };
    });
  }

  /** Removes everything a session stored: its multipart upload, data object, tails and state. */
  async #discard(id: string, state: UploadState | undefined): Promise<void> {
    this.#sessions.delete(id);
    const data = this.#dataKey(id);
    if (state?.uploadId) await this.#abortMultipart(data, state.uploadId, state.parts);
    await this.#deleteObject(data);
    if (state) {
      // The tail it names, one an interrupted write may have left, and the superseded ones.
      const tails = new Set([state.gen + 1, ...(state.tail ? [state.tail.gen] : []), ...(state.garbage ?? [])]);
      for (const gen of tails) await this.#deleteObject(this.#tailKey(id, gen));
    }
    await this.#deleteObject(this.#stateKey(id, 0));
    await this.#deleteObject(this.#stateKey(id, 1));
  }

  async abort(id: string): Promise<void> {
    assertUploadId(id);
    await this.#locked(id, async () => {
      const state = this.#sessions.get(id)?.state ?? (await this.#loadState(id))?.state;
      await this.#discard(id, state);
    });
  }

  async *list(): AsyncIterable<StoredBlob> {
    const prefix = this.#key("blobs/");
    let token: string | undefined;
    do {
      const page = await this.#call("ListObjectsV2", prefix, () =>
        this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        // blobs/<algorithm>/<xx>/<encoded>
        const [algorithm, , encoded] = (object.Key ?? "").slice(prefix.length).split("/");
        const digest = `${algorithm}:${encoded}`;
        if (isDigest(digest)) yield { digest, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async staleUploads(olderThan: number): Promise<string[]> {
    const prefix = this.#key("uploads/");
    const pattern = /^([0-9a-f-]{36})\/state\.[01]$/;
    const touched = new Map<string, number>();
    let token: string | undefined;
    do {
      const page = await this.#call("ListObjectsV2", prefix, () =>
        this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        const id = pattern.exec((object.Key ?? "").slice(prefix.length))?.[1];
        if (id && object.LastModified) touched.set(id, Math.max(touched.get(id) ?? 0, object.LastModified.getTime()));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return [...touched].filter(([, time]) => time < olderThan).map(([id]) => id);
  }
}

/** Skips `skip` bytes of `source`, then yields `length` bytes and stops reading it. */
async function* slice(source: Readable, skip: number, length: number): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let left = length;
  for await (const data of source) {
    let chunk = data as Buffer;
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, chunk.byteLength);
      chunk = chunk.subarray(dropped);
      toSkip -= dropped;
    }
    if (chunk.byteLength === 0) continue;
    if (chunk.byteLength >= left) {
      yield chunk.subarray(0, left);
      return;
    }
    left -= chunk.byteLength;
    yield chunk;
  }
}
