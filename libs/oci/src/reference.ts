import { type Digest, parseDigest } from "./digest.js";
import { isValidRepositoryName, isValidTag } from "./names.js";

/** Docker Hub, as the docker CLI names it when a reference has no registry part. */
export const DEFAULT_REGISTRY = "docker.io";

/** A parsed image reference: `[registry/]repository[:tag][@digest]`. */
export interface ImageReference {
  /** Registry host with optional port, e.g. `127.0.0.1:5000` or `docker.io`. */
  registry: string;
  /** Path inside the registry; Docker Hub single names get `library/`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export class ImageReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageReferenceError";
  }
}

/**
 * The first path component names a registry when it looks like a host: it holds a dot or a colon,
 * or is `localhost` (the docker reference grammar's rule), or is uppercase-free IPv6 in brackets.
 */
function isRegistryComponent(component: string): boolean {
  return component.includes(".") || component.includes(":") || component === "localhost" || component.startsWith("[");
}

/** Parses a reference the way the docker CLI does, defaulting the registry and the `latest` tag. */
export function parseImageReference(input: string, { defaultTag = "latest" }: { defaultTag?: string | false } = {}): ImageReference {
  let rest = input.trim();
  if (rest === "") throw new ImageReferenceError("invalid reference format: empty reference");
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    try {
      digest = parseDigest(rest.slice(at + 1)).digest;
    } catch (error) {
      throw new ImageReferenceError(`invalid reference format: ${(error as Error).message}`);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!isValidTag(tag)) throw new ImageReferenceError(`invalid reference format: invalid tag ${JSON.stringify(tag)}`);
  }
  const slash = rest.indexOf("/");
  let registry = DEFAULT_REGISTRY;
  let repository = rest;
  if (slash !== -1 && isRegistryComponent(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
  }
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes("/")) repository = `library/${repository}`;
  if (!isValidRepositoryName(repository)) {
    const hint = /[A-Z]/.test(repository) ? " (repository names must be lowercase)" : "";
    throw new ImageReferenceError(`invalid reference format: ${JSON.stringify(input)}${hint}`);
  }
  const reference: ImageReference = { registry, repository };
  if (tag !== undefined) reference.tag = tag;
  else if (digest === undefined && defaultTag) reference.tag = defaultTag;
  if (digest) reference.digest = digest;
  return reference;
}

/** The canonical string form: `registry/repository[:tag][@digest]`. */
export function formatImageReference(reference: ImageReference): string {
  return `${reference.registry}/${reference.repository}${reference.tag ? `:${reference.tag}` : ""}${reference.digest ? `@${reference.digest}` : ""}`;
}

/** The short form the docker CLI prints: Docker Hub's registry and `library/` are left out. */
export function familiarName(reference: Pick<ImageReference, "registry" | "repository">): string {
  if (reference.registry !== DEFAULT_REGISTRY) return `${reference.registry}/${reference.repository}`;
  return reference.repository.startsWith("library/") ? reference.repository.slice("library/".length) : reference.repository;
}
