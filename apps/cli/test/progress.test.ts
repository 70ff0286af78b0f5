import { describe, expect, it } from "vitest";
import { StreamError } from "../src/errors.js";
import { displayJsonMessages, type JsonMessage, JsonMessageDisplay, progressBar } from "../src/output/progress.js";
import { Screen } from "./support/screen.js";

const DIGEST = "sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79";

/** A pull as minatod streams it: two layers downloading in parallel, unpacked in order. */
const PULL: JsonMessage[] = [
  { status: "Pulling from library/busybox", id: "latest" },
  { status: "Pulling fs layer", id: "aaaaaaaaaaaa" },
  { status: "Pulling fs layer", id: "bbbbbbbbbbbb" },
  { status: "Downloading", id: "bbbbbbbbbbbb", progressDetail: { current: 500_000, total: 1_000_000 } },
  { status: "Downloading", id: "aaaaaaaaaaaa", progressDetail: { current: 1_000, total: 2_000_000 } },
  { status: "Download complete", id: "bbbbbbbbbbbb" },
  { status: "Downloading", id: "aaaaaaaaaaaa", progressDetail: { current: 2_000_000, total: 2_000_000 } },
  { status: "Download complete", id: "aaaaaaaaaaaa" },
  { status: "Extracting", id: "aaaaaaaaaaaa", progressDetail: { current: 0, total: 2_000_000 } },
  { status: "Pull complete", id: "aaaaaaaaaaaa" },
  { status: "Extracting", id: "bbbbbbbbbbbb", progressDetail: { current: 0, total: 1_000_000 } },
  { status: "Pull complete", id: "bbbbbbbbbbbb" },
  { status: `Digest: ${DIGEST}` },
  { status: "Status: Downloaded newer image for busybox:latest" },
];

/** The wire form: one JSON object per line, CRLF-terminated as dockerd writes it. */
const wire = (messages: JsonMessage[]) => messages.map((m) => `${JSON.stringify(m)}\r\n`).join("");

/** Splits text into chunks of `size` bytes, cutting through lines and multi-byte characters. */
async function* chunks(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

class Plain {
  text = "";
  write(chunk: string) {
    this.text += chunk;
    return true;
  }
}

describe("progress bar text (docker's JSONProgress.String)", () => {
  it("shows a 50-wide bar and counters when there is room", () => {
    expect(progressBar({ current: 500_000, total: 1_000_000 }, 200)).toBe(`[${"=".repeat(25)}>${" ".repeat(25)}]    500kB/1MB`);
    expect(progressBar({ current: 1_000_000, total: 1_000_000 }, 200)).toBe(`[${"=".repeat(50)}>]      1MB/1MB`);
  });

  it("narrows the bar on narrow terminals and drops it when there is no room", () => {
    expect(progressBar({ current: 500_000, total: 1_000_000 }, 40)).toBe(`[${"=".repeat(12)}>${" ".repeat(12)}]    500kB/1MB`);
    expect(progressBar({ current: 500_000, total: 1_000_000 }, 20)).toBe("   500kB/1MB");
  });

  it("shows only the count without a total, nothing without numbers, and no total when current is past it", () => {
    expect(progressBar({ current: 1_234_567 }, 200)).toBe(" 1.235MB");
    expect(progressBar({}, 200)).toBe("");
    expect(progressBar({ current: 0, total: 0 }, 200)).toBe("");
    expect(progressBar({ current: 3_000, total: 2_000 }, 200)).toBe(`[${"=".repeat(50)}>]      3kB`);
  });
});

describe("JSON message stream, not a terminal", () => {
  it("prints one plain line per status, leaving byte counts out, with no escape codes", async () => {
    const out = new Plain();
    await displayJsonMessages(chunks(wire(PULL), 7), new JsonMessageDisplay(out));
    expect(out.text).toBe(
      [
        "latest: Pulling from library/busybox",
        "aaaaaaaaaaaa: Pulling fs layer",
        "bbbbbbbbbbbb: Pulling fs layer",
        "bbbbbbbbbbbb: Download complete",
        "aaaaaaaaaaaa: Download complete",
        "aaaaaaaaaaaa: Pull complete",
        "bbbbbbbbbbbb: Pull complete",
        `Digest: ${DIGEST}`,
        "Status: Downloaded newer image for busybox:latest",
        "",
      ].join("\n"),
    );
    expect(out.text).not.toContain("\u001b");
  });

  it("prints `stream` text as it is and hands `aux` to the caller", async () => {
    const out = new Plain();
    const aux: unknown[] = [];
    const messages = [
      { stream: "Loaded image: busybox:latest\n" },
      { aux: { Tag: "latest", Digest: DIGEST, Size: 527 } },
      { stream: "Loaded image: “ünïcode”:1\n" },
    ];
    await displayJsonMessages(chunks(wire(messages), 5), new JsonMessageDisplay(out, { onAux: (a) => aux.push(a) }));
    expect(out.text).toBe("Loaded image: busybox:latest\nLoaded image: “ünïcode”:1\n");
    expect(aux).toEqual([{ Tag: "latest", Digest: DIGEST, Size: 527 }]);
  });

  it("ends with the stream's errorDetail after printing what came before", async () => {
    const out = new Plain();
    const failing = [
      { status: "The push refers to repository [127.0.0.1:5000/app]" },
      { status: "Preparing", id: "cccccccccccc" },
      { errorDetail: { message: "unauthorized: authentication required" }, error: "unauthorized: authentication required" },
      { status: "never shown" },
    ];
    const display = displayJsonMessages(chunks(wire(failing), 64), new JsonMessageDisplay(out));
    await expect(display).rejects.toThrow(StreamError);
    await expect(displayJsonMessages(chunks(wire(failing), 64), new JsonMessageDisplay(new Plain()))).rejects.toThrow(
      "unauthorized: authentication required",
    );
    expect(out.text).toBe("The push refers to repository [127.0.0.1:5000/app]\ncccccccccccc: Preparing\n");
  });

  it("rejects a line that is not JSON", async () => {
    await expect(displayJsonMessages(chunks("{not json}\n", 100), new JsonMessageDisplay(new Plain()))).rejects.toThrow(/invalid JSON/);
  });
});

describe("JSON message stream on a terminal", () => {
  it("keeps one line per layer and leaves the final state on screen", async () => {
    const screen = new Screen(120);
    await displayJsonMessages(chunks(wire(PULL), 11), new JsonMessageDisplay(screen));
    expect(screen.text()).toBe(
      [
        "latest: Pulling from library/busybox",
        "aaaaaaaaaaaa: Pull complete",
        "bbbbbbbbbbbb: Pull complete",
        `Digest: ${DIGEST}`,
        "Status: Downloaded newer image for busybox:latest",
      ].join("\n"),
    );
    expect(screen.raw).toContain("\u001b[");
  });

  it("draws bars in place while layers download", () => {
    const screen = new Screen(120);
    const display = new JsonMessageDisplay(screen);
    for (const message of PULL.slice(0, 5)) display.show(message);
    expect(screen.text()).toBe(
      [
        "latest: Pulling from library/busybox",
        `aaaaaaaaaaaa: Downloading [>${" ".repeat(50)}]      1kB/2MB`,
        `bbbbbbbbbbbb: Downloading [${"=".repeat(25)}>${" ".repeat(25)}]    500kB/1MB`,
      ].join("\n"),
    );
  });

  it("updates the right line whatever order messages come in, and starts a new block after a plain message", () => {
    const screen = new Screen(80);
    const display = new JsonMessageDisplay(screen);
    const push: JsonMessage[] = [
      { status: "The push refers to repository [127.0.0.1:5000/app]" },
      { status: "Preparing", id: "l1" },
      { status: "Preparing", id: "l2" },
      { status: "Preparing", id: "l3" },
      { status: "Pushing", id: "l3", progressDetail: { current: 10, total: 100 } },
      { status: "Layer already exists", id: "l1" },
      { status: "Pushed", id: "l3" },
      { status: "Pushing", id: "l2", progressDetail: { current: 99, total: 100 } },
      { status: "Waiting", id: "l4" },
      { status: "Pushed", id: "l2" },
      { status: "Mounted from other/repo", id: "l4" },
      { status: "latest: digest: sha256:abc size: 527" },
      { status: "Loading layer", id: "l1", progressDetail: { current: 0, total: 10 } },
      { status: "Loaded", id: "l1" },
    ];
    for (const message of push) display.show(message);
    expect(screen.text()).toBe(
      [
        "The push refers to repository [127.0.0.1:5000/app]",
        "l1: Layer already exists",
        "l2: Pushed",
        "l3: Pushed",
        "l4: Mounted from other/repo",
        "latest: digest: sha256:abc size: 527",
        "l1: Loaded",
      ].join("\n"),
    );
  });

  it("cuts lines to the terminal width so they never wrap", () => {
    const screen = new Screen(30);
    const display = new JsonMessageDisplay(screen);
    display.show({ status: "Downloading", id: "aaaaaaaaaaaa", progressDetail: { current: 1, total: 2_000_000_000 } });
    display.show({ status: "Waiting for a very long status text to finish", id: "bbbbbbbbbbbb" });
    expect(screen.text()).toBe(["aaaaaaaaaaaa: Downloading    ", "bbbbbbbbbbbb: Waiting for a ve"].join("\n").replace(/ +\n/, "\n"));
    expect(screen.lines.every((line) => line.length <= 30)).toBe(true);
  });

  it("redraws nothing when an update would show the same text", () => {
    const screen = new Screen(120);
    const display = new JsonMessageDisplay(screen);
    display.show({ status: "Downloading", id: "a", progressDetail: { current: 1_000_000, total: 9_000_000 } });
    const before = screen.raw.length;
    display.show({ status: "Downloading", id: "a", progressDetail: { current: 1_000_001, total: 9_000_000 } });
    expect(screen.raw.length).toBe(before);
  });
});
