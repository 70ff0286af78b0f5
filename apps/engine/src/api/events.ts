// `GET /events` (swagger "System/SystemEvents"): JSON lines, the recent history first when `since` or
// `until` asks for it, then live events until `until` passes or the client leaves.
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Hono } from "hono";
import { FilterError, parseTimestamp } from "../containers/filters.js";
import type { Engine } from "../engine.js";
import { checkEventFilters, EVENT_FILTERS, EventFilterError, matchesEventFilters } from "../events/filters.js";
import { type EngineEvent, eventJson } from "../events/log.js";
import { badRequest } from "./errors.js";
import { parseFilters } from "./images.js";
import type { EngineEnv } from "./types.js";

function timeBound(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === "") return undefined;
  try {
    return parseTimestamp(value);
  } catch (error) {
    if (error instanceof FilterError) throw badRequest(`invalid value for ${name}: ${error.message}`);
    throw error;
  }
}

export function eventRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.get("/events", async (c) => {
    const since = timeBound(c.req.query("since"), "since");
    const until = timeBound(c.req.query("until"), "until");
    if (since !== undefined && until !== undefined && since > until)
      throw badRequest(`since time (${c.req.query("since")}) cannot be after until time (${c.req.query("until")})`);
    const filters = parseFilters(c.req.query("filters"), EVENT_FILTERS);
    try {
      checkEventFilters(filters);
    } catch (error) {
      if (error instanceof EventFilterError) throw badRequest(error.message);
      throw error;
    }
    const wanted = (e: EngineEvent) => matchesEventFilters(filters, e);

    const out = c.env.outgoing;
    // Headers at once: a client knows it is subscribed before it acts (dockerd flushes them too).
    out.writeHead(200, { "Content-Type": "application/json" });
    out.flushHeaders();
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe: () => void = () => undefined;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const finish = () => {
      unsubscribe();
      clearTimeout(timer);
      if (!out.writableEnded) out.end();
      done();
    };
    const send = (e: EngineEvent) => {
      if (until !== undefined && e.timeNano > until) return finish();
      if (since !== undefined && e.timeNano < since) return;
      if (wanted(e) && !out.writableEnded) out.write(`${eventJson(e)}\n`);
    };
    out.on("close", finish);
    // History, then live: both synchronous, so nothing published in between is lost or sent twice.
    if (since !== undefined || until !== undefined) for (const e of engine.events.history(since ?? 0n, until)) send(e);
    unsubscribe = engine.events.subscribe(send);
    const endAtUntil = () => {
      const left = until === undefined ? undefined : Number((until - BigInt(Date.now()) * 1_000_000n) / 1_000_000n);
      if (left === undefined) return;
      if (left < 0) return finish();
      // setTimeout holds at most 2^31-1 ms: a far `until` is approached in steps.
      timer = setTimeout(endAtUntil, Math.min(left + 1, 2 ** 31 - 1));
    };
    endAtUntil();
    await finished;
    return RESPONSE_ALREADY_SENT;
  });
}
