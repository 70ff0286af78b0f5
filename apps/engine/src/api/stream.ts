import type { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { JsonMessage, ProgressSink } from "../progress.js";

/**
 * Streams Docker's JSON messages as the work goes (pull, push, load, import): one JSON object per
 * line. Failures after the stream started are reported in-band as `errorDetail`, as dockerd does.
 */
export async function jsonMessageStream(out: ServerResponse, work: (progress: ProgressSink) => Promise<void>): Promise<Response> {
  out.writeHead(200, { "Content-Type": "application/json" });
  const write: ProgressSink = (message: JsonMessage) => {
    // The docker CLI updates a layer's line in place only when the message carries progressDetail.
    const line = message.id && !message.progressDetail ? { ...message, progressDetail: {} } : message;
    if (!out.writableEnded) out.write(`${JSON.stringify(line)}\r\n`);
  };
  try {
    await work(write);
  } catch (error) {
    const message = (error as Error).message;
    write({ errorDetail: { message }, error: message });
  }
  out.end();
  return RESPONSE_ALREADY_SENT;
}
