import type { ServerResponse } from "node:http";
import { familiarName, hostPlatform, parsePlatform } from "@minato/oci";
import type { Hono } from "hono";
import { importImage } from "../archive/import.js";
import { loadImages } from "../archive/load.js";
import { saveImages } from "../archive/save.js";
import { pullImage } from "../distribution/pull.js";
import { pushImage } from "../distribution/push.js";
import type { Engine } from "../engine.js";
import { publishImageEvent } from "../events/images.js";
import {
  familiarReference,
  findImage,
  imageConfig,
  imageHistory,
  imageSummary,
  inspectImage,
  parseReferenceOrThrow,
  pruneImages,
  removeImage,
  tagImage,
} from "../images.js";
import { registryAuthHeader } from "./auth.js";
import { filterBool, queryBool } from "./booleans.js";
import { compressionQuery } from "./compression.js";
import { badRequest } from "./errors.js";
import { jsonMessageStream } from "./stream.js";
import type { EngineEnv } from "./types.js";

/** Go's path.Match over `/`-separated names: `*` and `?` stay within a segment. */
function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|\\]/g, "\\$&")
    .replace(/\*/g, "[^/]*")
    .replace(/\?/g, "[^/]");
  return new RegExp(`^${body}$`);
}

/** dockerd's `reference` filter: the pattern against `name:tag`, or against the name alone when it has no tag. */
export function matchesReference(pattern: string, familiarTag: string): boolean {
  const colon = familiarTag.lastIndexOf(":");
  const name = familiarTag.slice(0, colon);
  const hasTag = pattern.lastIndexOf(":") > pattern.lastIndexOf("/");
  return globToRegExp(pattern).test(hasTag ? familiarTag : name);
}

function matchesLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf("=");
  return eq === -1 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/**
 * Docker's `filters` query parameter: JSON of `{name: [values]}` (or the legacy `{name: {value: true}}`).
 * Names outside `allowed` are refused, as dockerd does.
 */
export function parseFilters(value: string | undefined, allowed: string[]): Record<string, string[]> {
  if (!value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw badRequest(`invalid filters: ${value}`);
  }
  const filters: Record<string, string[]> = {};
  for (const [key, values] of Object.entries(parsed as Record<string, unknown>)) {
    if (!allowed.includes(key)) throw badRequest(`invalid filter '${key}'`);
    filters[key] = Array.isArray(values) ? values.map(String) : Object.keys(values as object);
  }
  return filters;
}

export function imageRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.get("/images/json", async (c) => {
    const filters = parseFilters(c.req.query("filters"), ["dangling", "reference", "label"]);
    const summaries = [];
    const dangling = filters.dangling?.[0] === undefined ? undefined : filterBool("dangling", filters.dangling[0]);
    for (const image of engine.images.list()) {
      if (dangling !== undefined && dangling !== (image.tags.length === 0)) continue;
      const summary = await imageSummary(engine, image);
      if (filters.label && !filters.label.every((l) => matchesLabel(summary.Labels, l))) continue;
      if (filters.reference) {
        // As dockerd: an image matches when one of its tags does, and only matching tags are listed.
        summary.RepoTags = summary.RepoTags.filter((tag) => filters.reference?.some((pattern) => matchesReference(pattern, tag)));
        if (summary.RepoTags.length === 0) continue;
      }
      summaries.push(summary);
    }
    return c.json(summaries);
  });

  app.post("/images/create", async (c) => {
    const fromImage = c.req.query("fromImage");
    const fromSrc = c.req.query("fromSrc");
    if (fromSrc !== undefined) {
      return jsonMessageStream(c.env.outgoing, async (progress) => {
        let imported: string | undefined;
        await importImage(
          engine,
          c.env.incoming,
          { repo: c.req.query("repo"), tag: c.req.query("tag"), changes: c.req.queries("changes") ?? [], message: c.req.query("message") },
          (message) => {
            // The last message is the new image's ID (what `docker import` prints).
            if (message.status?.startsWith("sha256:")) imported = message.status;
            progress(message);
          },
        );
        if (imported) {
          const image = findImage(engine, imported);
          // As dockerd: the new tag's event, then the import's.
          const repo = c.req.query("repo");
          if (repo) {
            const ref = parseReferenceOrThrow(c.req.query("tag") ? `${repo}:${c.req.query("tag")}` : repo);
            await publishImageEvent(engine, "tag", imported, familiarReference(`${ref.registry}/${ref.repository}:${ref.tag}`), image);
          }
          await publishImageEvent(engine, "import", imported, imported, image);
        }
      });
    }
    if (!fromImage) throw badRequest("fromImage or fromSrc is required");
    const tag = c.req.query("tag");
    const reference = parseReferenceOrThrow(
      tag && !fromImage.includes("@") ? `${fromImage}${tag.startsWith("sha256:") ? "@" : ":"}${tag}` : fromImage,
    );
    const platformParam = c.req.query("platform");
    const platform = platformParam ? parsePlatform(platformParam) : hostPlatform();
    const credentials = registryAuthHeader(c.req.header("x-registry-auth"));
    return jsonMessageStream(c.env.outgoing, async (progress) => {
      const image = await pullImage(engine, reference, { platform, progress, ...(credentials ? { credentials } : {}) });
      const pulled = familiarReference(
        `${reference.registry}/${reference.repository}${reference.digest ? `@${reference.digest}` : `:${reference.tag}`}`,
      );
      await publishImageEvent(engine, "pull", pulled, familiarName(reference), image);
    });
  });

  app.post("/images/prune", async (c) => {
    const filters = parseFilters(c.req.query("filters"), ["dangling", "until", "label"]);
    const pruned = await pruneImages(engine, filters.dangling?.[0] === "false");
    for (const item of pruned.ImagesDeleted) if (item.Deleted) await publishImageEvent(engine, "delete", item.Deleted, item.Deleted);
    engine.events.publish("image", "prune", "", { reclaimed: String(pruned.SpaceReclaimed) });
    return c.json(pruned);
  });

  const save = async (names: string[], out: ServerResponse) => {
    for (const name of names) {
      const image = findImage(engine, name);
      // dockerd names saved and loaded images by their ID (tarexport).
      await publishImageEvent(engine, "save", image.id, image.id, image);
    }
    return saveImages(engine, names, out);
  };
  app.get("/images/get", async (c) => save(c.req.queries("names") ?? [], c.env.outgoing));

  app.post("/images/load", async (c) => {
    const quiet = queryBool(c.req.query("quiet"));
    return jsonMessageStream(c.env.outgoing, async (progress) => {
      const loaded: string[] = [];
      await loadImages(engine, c.env.incoming, quiet ? () => undefined : progress, (message) => {
        const name = /^Loaded image(?: ID)?: (.+)\n$/.exec(message.stream ?? "")?.[1];
        if (name) loaded.push(name);
        progress(message);
      });
      for (const name of loaded) {
        const image = findImage(engine, name);
        await publishImageEvent(engine, "load", image.id, image.id, image);
      }
    });
  });

  app.get("/images/:name{.+}/json", async (c) => c.json(await inspectImage(engine, findImage(engine, c.req.param("name")))));
  app.get("/images/:name{.+}/history", async (c) => c.json(await imageHistory(engine, findImage(engine, c.req.param("name")))));
  app.get("/images/:name{.+}/get", async (c) => save([c.req.param("name")], c.env.outgoing));

  app.post("/images/:name{.+}/tag", async (c) => {
    const repo = c.req.query("repo");
    if (!repo) throw badRequest("repo is required");
    const image = findImage(engine, c.req.param("name"));
    const tag = c.req.query("tag") || undefined;
    tagImage(engine, image, repo, tag);
    const tagged = parseReferenceOrThrow(tag ? `${repo}:${tag}` : repo);
    await publishImageEvent(engine, "tag", image.id, familiarReference(`${tagged.registry}/${tagged.repository}:${tagged.tag}`), image);
    return c.body(null, 201);
  });

  app.post("/images/:name{.+}/push", async (c) => {
    const name = c.req.param("name");
    const tagParam = c.req.query("tag");
    const reference = parseReferenceOrThrow(tagParam ? `${name}:${tagParam}` : name, { defaultTag: false });
    const credentials = registryAuthHeader(c.req.header("x-registry-auth"));
    const image = findImage(engine, tagParam ? `${name}:${tagParam}` : name.includes(":") ? name : `${name}:latest`);
    const tag = reference.tag ?? "latest";
    const compression = compressionQuery(c.req.query("compression"));
    return jsonMessageStream(c.env.outgoing, async (progress) => {
      await pushImage(
        engine,
        image,
        { ...reference, tag },
        { progress, ...(credentials ? { credentials } : {}), ...(compression ? { compression } : {}) },
      );
      await publishImageEvent(
        engine,
        "push",
        familiarReference(`${reference.registry}/${reference.repository}:${tag}`),
        familiarName(reference),
        image,
      );
    });
  });

  app.delete("/images/:name{.+}", async (c) => {
    const image = findImage(engine, c.req.param("name"));
    const id = image.id;
    // Read before the removal: the image's config may go with it.
    const labels = (await imageConfig(engine, image).catch(() => undefined))?.config?.Labels ?? {};
    const items = await removeImage(engine, c.req.param("name"), {
      force: queryBool(c.req.query("force")),
      noprune: queryBool(c.req.query("noprune")),
    });
    // As dockerd: untag and delete events name the image by its ID.
    for (const item of items) {
      if (item.Untagged) engine.events.publish("image", "untag", id, { ...labels, name: id });
      if (item.Deleted) engine.events.publish("image", "delete", item.Deleted, { ...labels, name: item.Deleted });
    }
    return c.json(items);
  });
}
