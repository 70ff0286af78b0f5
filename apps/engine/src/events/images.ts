// Image events with the attributes dockerd gives them (LogImageEvent): the image's labels and `name`.
import type { Engine } from "../engine.js";
import type { ImageRecord } from "../image-store.js";
import { imageConfig } from "../images.js";

/** `actor`: what dockerd names the image by for this action (a reference for pull/push, else the ID). */
export async function publishImageEvent(engine: Engine, action: string, actor: string, name: string, image?: ImageRecord): Promise<void> {
  const labels = image ? ((await imageConfig(engine, image).catch(() => undefined))?.config?.Labels ?? {}) : {};
  engine.events.publish("image", action, actor, { ...labels, name });
}
