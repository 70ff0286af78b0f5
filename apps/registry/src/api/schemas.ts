import { z } from "@hono/zod-openapi";

/** Schemas of the browsing API: they validate requests and generate the OpenAPI document. */

const time = z.string().datetime().nullable().openapi({ description: "ISO 8601, null when never" });

export const ErrorBody = z
  .object({
    errors: z.array(z.object({ code: z.string(), message: z.string(), detail: z.unknown().optional() })),
  })
  .openapi("Error", { description: "The distribution API's error shape" });

const pageParams = {
  page: z.coerce.number().int().min(1).max(1_000_000).default(1).openapi({ description: "1-based page number" }),
  pageSize: z.coerce.number().int().min(1).max(100).default(25),
  order: z.enum(["asc", "desc"]).optional().openapi({ description: "default: asc for names, desc for dates" }),
};

export const RepositoryQuery = z.object({
  q: z.string().max(255).optional().openapi({ description: "only repositories whose name contains this" }),
  sort: z.enum(["name", "pushed", "pulled"]).default("name"),
  ...pageParams,
});

export const TagQuery = z.object({ sort: z.enum(["name", "pushed"]).default("name"), ...pageParams });

export const RepositoryParam = z.object({
  name: z
    .string()
    .min(1)
    .max(255)
    .openapi({ param: { name: "name", in: "path" }, description: "repository name, URL-encoded (`team%2Fapp`)", example: "team%2Fapp" }),
});
export const ReferenceParam = RepositoryParam.extend({
  reference: z
    .string()
    .min(1)
    .max(255)
    .openapi({ param: { name: "reference", in: "path" }, description: "a tag or a digest" }),
});
export const TagParam = RepositoryParam.extend({
  tag: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "tag", in: "path" } }),
});
export const DigestParam = RepositoryParam.extend({
  digest: z
    .string()
    .min(1)
    .max(255)
    .openapi({ param: { name: "digest", in: "path" } }),
});

const Size = z.object({
  total: z.number().int().openapi({ description: "manifests plus every distinct blob they reference, in bytes" }),
  unique: z.number().int().openapi({ description: "the same without blobs another repository's manifests reference too" }),
});

export const Repository = z
  .object({ name: z.string(), tagCount: z.number().int(), size: Size, lastPushedAt: time, lastPulledAt: time })
  .openapi("Repository");

const paging = { page: z.number().int(), pageSize: z.number().int(), total: z.number().int() };

export const RepositoryPage = z.object({ items: z.array(Repository), ...paging }).openapi("RepositoryPage");

export const Platform = z
  .object({
    os: z.string().nullable(),
    architecture: z.string().nullable(),
    variant: z.string().nullable(),
    digest: z.string(),
    size: z.number().int().openapi({ description: "the platform's manifest, configuration and layers, in bytes" }),
  })
  .openapi("Platform");

const kind = z.enum(["image", "index", "artifact"]);
const referrerCounts = z.record(z.string(), z.number().int()).openapi({ description: "referrers by artifact type" });

export const Tag = z
  .object({
    name: z.string(),
    digest: z.string(),
    mediaType: z.string(),
    kind,
    artifactType: z.string().nullable(),
    size: z.number().int().openapi({ description: "manifest + configuration + layers; for an index, the sum over its platforms" }),
    created: time.openapi({ description: "from the image configuration (latest platform's for an index)" }),
    pushedAt: time,
    pulledAt: time,
    platforms: z.array(Platform),
    referrers: referrerCounts,
  })
  .openapi("Tag");

export const TagPage = z.object({ repository: z.string(), canDelete: z.boolean(), items: z.array(Tag), ...paging }).openapi("TagPage");

const Layer = z
  .object({
    digest: z.string(),
    mediaType: z.string(),
    size: z.number().int(),
    createdBy: z.string().nullable().openapi({ description: "the history entry (Dockerfile step) that made the layer" }),
    created: time,
  })
  .openapi("Layer");

const History = z
  .object({ created: time, createdBy: z.string().nullable(), comment: z.string().nullable(), emptyLayer: z.boolean() })
  .openapi("History");

const Config = z
  .object({
    created: time,
    os: z.string().nullable(),
    architecture: z.string().nullable(),
    variant: z.string().nullable(),
    entrypoint: z.array(z.string()).nullable(),
    cmd: z.array(z.string()).nullable(),
    env: z.array(z.string()),
    labels: z.record(z.string(), z.string()),
    exposedPorts: z.array(z.string()),
    user: z.string().nullable(),
    workingDir: z.string().nullable(),
    history: z.array(History),
  })
  .openapi("ImageConfig");

const Referrer = z
  .object({
    digest: z.string(),
    mediaType: z.string(),
    artifactType: z.string().nullable(),
    size: z.number().int(),
    annotations: z.record(z.string(), z.string()),
  })
  .openapi("Referrer");

export const Image = z
  .object({
    repository: z.string(),
    reference: z.string(),
    digest: z.string(),
    mediaType: z.string(),
    kind,
    artifactType: z.string().nullable(),
    size: z.number().int(),
    created: time,
    pushedAt: time,
    pulledAt: time,
    platforms: z.array(Platform),
    config: Config.nullable(),
    layers: z.array(Layer),
    referrers: z.array(Referrer),
    manifest: z.record(z.string(), z.unknown()).openapi({ description: "the manifest as pushed" }),
    canDelete: z.boolean(),
  })
  .openapi("Image");

export const Session = z
  .object({
    authRequired: z.boolean().openapi({ description: "false when the registry runs without authentication (loopback)" }),
    loginAvailable: z.boolean().openapi({ description: "false with an external token issuer: use a Bearer token" }),
    user: z.string().nullable(),
    csrfToken: z.string().nullable().openapi({ description: "send back as X-CSRF-Token on requests that change something" }),
    expiresAt: time,
  })
  .openapi("Session");

export const Login = z
  .object({
    username: z.string().min(1).max(128),
    password: z.string().min(1).max(4096).openapi({ description: "the user's password or a personal access token" }),
  })
  .openapi("Login");
