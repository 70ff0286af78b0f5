// The engine's event log (swagger "EventMessage", `GET /events`): every module publishes what
// happened to the objects it owns; the API streams it to subscribers. A bounded history in memory
// (as dockerd keeps one) lets a client ask for events `since` a recent time.
import type { ContainerRecord } from "../containers/manager.js";

export type EventType = "container" | "image" | "network" | "volume" | "daemon" | "builder";

/** swagger `EventMessage`, with the pre-1.22 fields (`status`, `id`, `from`) dockerd still sends for containers and images. */
export interface EngineEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local";
  time: number;
  /** Nanoseconds since the epoch: beyond a double's exact range, so kept as a bigint and written by `eventJson`. */
  timeNano: bigint;
  status?: string;
  id?: string;
  from?: string;
}

export type EventListener = (event: EngineEvent) => void;

/** How many events `since` can replay (dockerd keeps 256; compose projects produce more than that quickly). */
export const HISTORY_LIMIT = 1024;

export class EventLog {
  readonly #history: EngineEvent[] = [];
  readonly #listeners = new Set<EventListener>();
  #lastNanos = 0n;

  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    // Strictly increasing: a client resuming with `since` = the last timeNano it saw is exact.
    let nanos = BigInt(Date.now()) * 1_000_000n;
    if (nanos <= this.#lastNanos) nanos = this.#lastNanos + 1n;
    this.#lastNanos = nanos;
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: "local",
      time: Number(nanos / 1_000_000_000n),
      timeNano: nanos,
    };
    if (type === "container" || type === "image") {
      event.status = action;
      event.id = id;
      if (type === "container" && attributes.image !== undefined) event.from = attributes.image;
    }
    this.#history.push(event);
    if (this.#history.length > HISTORY_LIMIT) this.#history.shift();
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // one subscriber's failure is not the publisher's
      }
    }
    return event;
  }

  /** A container event with the attributes dockerd gives them: the container's labels, `image` and `name`, then `extra`. */
  container(c: Pick<ContainerRecord, "id" | "name" | "imageName" | "config">, action: string, extra: Record<string, string> = {}): void {
    this.publish("container", action, c.id, { ...(c.config.Labels ?? {}), image: c.imageName, name: c.name, ...extra });
  }

  /** Events recorded at or after `sinceNanos` (and at or before `untilNanos`), oldest first. */
  history(sinceNanos: bigint, untilNanos?: bigint): EngineEvent[] {
    return this.#history.filter((e) => {
      return e.timeNano >= sinceNanos && (untilNanos === undefined || e.timeNano <= untilNanos);
    });
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** One line of the `/events` stream, `timeNano` written as the exact integer it is. */
export function eventJson(event: EngineEvent): string {
  const { timeNano, ...rest } = event;
  return `${JSON.stringify(rest).slice(0, -1)},"timeNano":${timeNano}}`;
}
