import { describe, expect, it } from "vitest";
import { effectiveHealthcheck, goDurationText, probeCommand } from "../src/containers/health.js";
import { checkEventFilters, type EventFilters, matchesEventFilters } from "../src/events/filters.js";
import { EventLog, eventJson, HISTORY_LIMIT } from "../src/events/log.js";

const MS = 1_000_000;

describe("the event log", () => {
  it("gives every event a strictly increasing timeNano, written exactly, and keeps a bounded history", () => {
    const log = new EventLog();
    const seen: bigint[] = [];
    log.subscribe((e) => seen.push(e.timeNano));
    for (let i = 0; i < HISTORY_LIMIT + 10; i++) log.publish("volume", "create", `v${i}`, { driver: "local" });
    for (let i = 1; i < seen.length; i++) expect(seen[i]! > seen[i - 1]!).toBe(true);
    const all = log.history(0n);
    expect(all).toHaveLength(HISTORY_LIMIT);
    expect(all[0]?.Actor.ID).toBe("v10");
    const line = eventJson(all[0]!);
    expect(line).toContain(`"timeNano":${all[0]!.timeNano}}`);
    expect(JSON.parse(line).time).toBe(Number(all[0]!.timeNano / 1_000_000_000n));
    // Bounds are inclusive, as dockerd's.
    expect(log.history(all[5]!.timeNano, all[7]!.timeNano).map((e) => e.Actor.ID)).toEqual(["v15", "v16", "v17"]);
  });

  it("adds the legacy fields to container and image events only", () => {
    const log = new EventLog();
    const container = log.publish("container", "start", "abc", { image: "busybox", name: "web" });
    expect(container).toMatchObject({ status: "start", id: "abc", from: "busybox", scope: "local" });
    const network = log.publish("network", "create", "n1", { name: "net", type: "bridge" });
    expect(network.status).toBeUndefined();
    expect(network.from).toBeUndefined();
  });
});

describe("event filters (moby's semantics)", () => {
  const log = new EventLog();
  const start = log.publish("container", "start", "0123456789ab", { image: "registry:5000/team/app:1", name: "web", tier: "front" });
  const exec = log.publish("container", "exec_create: sh -c true", "0123456789ab", { name: "web", execID: "e1" });
  const tag = log.publish("image", "tag", "sha256:aaa", { name: "busybox:latest" });
  const connect = log.publish("network", "connect", "n1", { name: "backend", container: "0123456789ab", type: "bridge" });
  const match = (filters: EventFilters) => [start, exec, tag, connect].filter((e) => matchesEventFilters(filters, e)).map((e) => e.Action);

  it("matches the actor by ID prefix or name, images with or without their tag, labels and suffixed actions", () => {
    expect(match({})).toHaveLength(4);
    expect(match({ container: ["0123"] })).toEqual(["start", "exec_create: sh -c true"]);
    expect(match({ container: ["web"], event: ["start"] })).toEqual(["start"]);
    expect(match({ network: ["backend"] })).toEqual(["connect"]);
    expect(match({ image: ["registry:5000/team/app"] })).toEqual(["start"]);
    expect(match({ image: ["busybox"] })).toEqual(["tag"]);
    expect(match({ event: ["exec_create"] })).toEqual(["exec_create: sh -c true"]);
    expect(match({ event: ["exec"] })).toEqual([]);
    expect(match({ label: ["tier=front"] })).toEqual(["start"]);
    expect(match({ label: ["tier"] })).toEqual(["start"]);
    expect(match({ type: ["image", "network"] })).toEqual(["tag", "connect"]);
    expect(match({ scope: ["swarm"] })).toEqual([]);
  });

  it("refuses unknown filters and values", () => {
    expect(() => checkEventFilters({ colour: ["red"] })).toThrow("invalid filter 'colour'");
    expect(() => checkEventFilters({ type: ["boat"] })).toThrow("invalid filter 'type=boat'");
    expect(() => checkEventFilters({ scope: ["global"] })).toThrow("invalid filter 'scope=global'");
    expect(() => checkEventFilters({ type: ["container"], event: ["die"] })).not.toThrow();
  });
});

describe("health check configuration", () => {
  it("merges the user's fields over the image's, as dockerd does", () => {
    const image = { Test: ["CMD", "true"], Interval: 5000 * MS, Retries: 2 };
    expect(effectiveHealthcheck(undefined, image)).toEqual(image);
    expect(effectiveHealthcheck({ Test: [], Timeout: 1000 * MS }, image)).toEqual({ ...image, Timeout: 1000 * MS });
    expect(effectiveHealthcheck({ Test: ["NONE"] }, image)).toEqual({ ...image, Test: ["NONE"] });
    expect(effectiveHealthcheck(undefined, undefined)).toBeUndefined();
  });

  it("refuses what dockerd refuses", () => {
    expect(() => effectiveHealthcheck({ Test: ["CMD", "true"], Interval: 999_999 }, undefined)).toThrow(
      "Interval in Healthcheck cannot be less than 1ms",
    );
    expect(() => effectiveHealthcheck({ Test: ["CMD", "true"], Timeout: -5 }, undefined)).toThrow(
      "Timeout in Healthcheck cannot be less than 1ms",
    );
    expect(() => effectiveHealthcheck({ Test: ["CMD", "true"], Retries: -1 }, undefined)).toThrow(
      "Retries in Healthcheck cannot be negative",
    );
    expect(() => effectiveHealthcheck({ Test: ["SHELL", "true"] }, undefined)).toThrow("unknown healthcheck type 'SHELL'");
    expect(() => effectiveHealthcheck({ Test: ["CMD"] }, undefined)).toThrow("Healthcheck CMD needs a command");
  });

  it("turns Test into the probe's argv", () => {
    expect(probeCommand({ Test: ["CMD", "curl", "-f", "http://localhost/"] })).toEqual(["curl", "-f", "http://localhost/"]);
    expect(probeCommand({ Test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"] })).toEqual([
      "/bin/sh",
      "-c",
      "curl -f http://localhost/ || exit 1",
    ]);
    expect(probeCommand({ Test: ["NONE"] })).toBeUndefined();
    expect(probeCommand(undefined)).toBeUndefined();
  });

  it("prints durations as Go does", () => {
    expect(goDurationText(200)).toBe("200ms");
    expect(goDurationText(30_000)).toBe("30s");
    expect(goDurationText(1500)).toBe("1.5s");
    expect(goDurationText(90_000)).toBe("1m30s");
    expect(goDurationText(7_200_000)).toBe("2h0m0s");
  });
});
