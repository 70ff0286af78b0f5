#!/usr/bin/env node
// A minimal closed-loop HTTP/1.1 load generator over raw keep-alive sockets, for requests wrk
// cannot drive: wrk 4.1's parser does not know a HEAD response has no body, so it waits for the
// Content-Length bytes and stalls. Each connection sends one request, reads one response (headers,
// then Content-Length bytes unless the method is HEAD), and sends the next.
//
//   node bench/http-load.mjs --url http://127.0.0.1:PORT/path --method HEAD --connections 32 --duration 10 [--header "K: V"]...
//
// Prints one JSON line: { requests, seconds, rps, non2xx, errors, p50Ms, p99Ms }.

import { connect } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    method: { type: "string", default: "GET" },
    connections: { type: "string", default: "32" },
    duration: { type: "string", default: "10" },
    header: { type: "string", multiple: true, default: [] },
  },
  strict: true,
});

const url = new URL(values.url ?? "");
if (url.protocol !== "http:" || url.hostname !== "127.0.0.1") throw new Error("only http://127.0.0.1 URLs are allowed");
const method = values.method.toUpperCase();
const connections = Number(values.connections);
const durationMs = Number(values.duration) * 1000;
if (!(connections >= 1 && connections <= 1024) || !(durationMs > 0 && durationMs <= 600_000))
  throw new Error("bad --connections or --duration");

const request = Buffer.from(
  [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...values.header, "", ""].join("\r\n"),
  "latin1",
);
const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

let running = true;
let completed = 0;
let non2xx = 0;
let errors = 0;
/** Latencies in microseconds, bucketed by 10 µs up to 1 s (the last bucket holds the rest). */
const histogram = new Uint32Array(100_001);

function record(startNs) {
  const micros = Number(process.hrtime.bigint() - startNs) / 1000;
  histogram[Math.min(Math.floor(micros / 10), histogram.length - 1)] += 1;
}

function percentile(p) {
  const total = histogram.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= total * p) return (i * 10) / 1000;
  }
  return Number.NaN;
}

const sockets = new Set();

function open() {
  if (!running) return;
  const socket = connect({ host: "127.0.0.1", port: Number(url.port || 80) });
  socket.setNoDelay(true);
  sockets.add(socket);
  let pending = Buffer.alloc(0);
  let bodyLeft = -1; // -1 while reading headers
  let started = 0n;

  const next = () => {
    if (!running) {
      socket.end();
      return;
    }
    started = process.hrtime.bigint();
    socket.write(request);
  };

  socket.on("connect", next);
  socket.on("data", (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    // Bounded: each pass consumes a whole response or waits for more bytes.
    for (let guard = 0; guard < 1024; guard++) {
      if (bodyLeft < 0) {
        const end = pending.indexOf(HEADER_END);
        if (end < 0) return;
        const head = pending.subarray(0, end).toString("latin1");
        const status = Number(head.slice(9, 12));
        if (status < 200 || status > 299) non2xx += 1;
        if (method === "HEAD" || status === 204 || status === 304) bodyLeft = 0;
        else {
          const length = CONTENT_LENGTH.exec(head);
          if (!length) {
            errors += 1;
            socket.destroy();
            return;
          }
          bodyLeft = Number(length[1]);
        }
        pending = pending.subarray(end + HEADER_END.length);
      }
      if (pending.length < bodyLeft) {
        bodyLeft -= pending.length;
        pending = Buffer.alloc(0);
        return;
      }
      pending = pending.subarray(bodyLeft);
      bodyLeft = -1;
      if (running) {
        completed += 1;
        record(started);
      }
      next();
      if (pending.length === 0) return;
    }
  });
  socket.on("error", () => {
    if (running) errors += 1;
  });
  socket.on("close", () => {
    sockets.delete(socket);
    if (running) open();
  });
}

const t0 = process.hrtime.bigint();
for (let i = 0; i < connections; i++) open();
setTimeout(() => {
  running = false;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const socket of sockets) socket.destroy();
  const result = {
    requests: completed,
    seconds,
    rps: completed / seconds,
    non2xx,
    errors,
    p50Ms: percentile(0.5),
    p99Ms: percentile(0.99),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}, durationMs);
