import { describe, expect, it } from "vitest";
import {
  containerCreateBody,
  containerRows,
  envFlag,
  nanoCpus,
  parseEnvFile,
  ramInBytes,
  restartPolicyFlag,
  runFailure,
} from "../src/commands/container.js";
import { statsRow } from "../src/commands/container-stats.js";
import { DaemonError, UsageError } from "../src/errors.js";
import { demultiplex, StreamDemuxer } from "../src/output/stdcopy.js";

const frame = (type: number, text: string) => {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

const noFiles = { readText: () => "", lookup: () => undefined };

describe("docker's units for run flags", () => {
  it.each([
    ["64m", 64 * 1024 ** 2],
    ["64M", 64 * 1024 ** 2],
    ["1g", 1024 ** 3],
    ["1.5GiB", 1.5 * 1024 ** 3],
    ["512k", 512 * 1024],
    ["100", 100],
    ["100b", 100],
    ["2 mb", 2 * 1024 ** 2],
  ])("--memory %s is %d bytes", (text, bytes) => {
    expect(ramInBytes(text)).toBe(bytes);
  });

  it.each(["", "64x", "m", "-1m", "1.5.m"])("--memory %j is invalid", (text) => {
    expect(() => ramInBytes(text)).toThrow(`invalid size: '${text}'`);
  });

  it.each([
    ["1", 1e9],
    ["0.5", 5e8],
    ["1.25", 1.25e9],
    [".5", 5e8],
    ["2.000000001", 2_000_000_001],
    ["1.0000000000", 1e9],
  ])("--cpus %s is %d NanoCpus", (text, nano) => {
    expect(nanoCpus(text)).toBe(nano);
  });

  it("--cpus refuses what is not a decimal or too precise", () => {
    expect(() => nanoCpus("abc")).toThrow("failed to parse abc as a rational number");
    expect(() => nanoCpus("0.0000000001")).toThrow("value is too precise");
  });
});

describe("environment flags", () => {
  const lookup = (name: string) => ({ HOME: "/root", EMPTY: "" })[name];

  it("parses an env file as docker does", () => {
    const text = "\ufeff# comment\n\n  A=1\nB= spaced value \nC=x=y\nHOME\nUNSET\nEMPTY\r\n";
    expect(parseEnvFile(text, lookup)).toEqual(["A=1", "B= spaced value ", "C=x=y", "HOME=/root", "EMPTY="]);
  });

  it("refuses variable names with spaces or no name", () => {
    expect(() => parseEnvFile("MY VAR=1\n", lookup)).toThrow("variable 'MY VAR' contains whitespaces");
    expect(() => parseEnvFile("=1\n", lookup)).toThrow("no variable name on line '=1'");
  });

  it("-e NAME takes the value from the environment, or stays bare", () => {
    expect(envFlag("A=b", lookup)).toBe("A=b");
    expect(envFlag("HOME", lookup)).toBe("HOME=/root");
    expect(envFlag("UNSET", lookup)).toBe("UNSET");
    expect(() => envFlag("=x", lookup)).toThrow("invalid environment variable: =x");
  });
});

describe("POST /containers/create body", () => {
  it("maps every flag", () => {
    const body = containerCreateBody(
      {
        env: ["B=2", "HOME"],
        envFile: ["/app.env"],
        workdir: "/srv",
        user: "1000:1000",
        entrypoint: "/bin/sh",
        hostname: "box",
        label: ["a=b", "flag"],
        memory: "64m",
        cpus: "1.5",
        pidsLimit: "100",
        readOnly: true,
        tmpfs: ["/run:rw,size=64m", "/tmp"],
        network: "host",
        rm: true,
      },
      "busybox",
      ["-c", "echo hi"],
      { readText: (path) => (path === "/app.env" ? "A=1\n" : ""), lookup: (name) => (name === "HOME" ? "/root" : undefined) },
    );
    expect(body).toEqual({
      Image: "busybox",
      Cmd: ["-c", "echo hi"],
      Entrypoint: ["/bin/sh"],
      Env: ["A=1", "B=2", "HOME=/root"],
      WorkingDir: "/srv",
      User: "1000:1000",
      Hostname: "box",
      Labels: { a: "b", flag: "" },
      Tty: false,
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      OpenStdin: false,
      StdinOnce: false,
      HostConfig: {
        Memory: 64 * 1024 * 1024,
        NanoCpus: 1_500_000_000,
        PidsLimit: 100,
        ReadonlyRootfs: true,
        Tmpfs: { "/run": "rw,size=64m", "/tmp": "" },
        NetworkMode: "host",
        AutoRemove: true,
      },
    });
  });

  it("leaves out what was not given: the image's defaults apply", () => {
    expect(containerCreateBody({}, "busybox", [], noFiles)).toEqual({
      Image: "busybox",
      Tty: false,
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      OpenStdin: false,
      StdinOnce: false,
      HostConfig: {},
    });
  });

  it("reports a bad flag value in docker's words, with status 125", () => {
    const bad = (flags: Parameters<typeof containerCreateBody>[0]) => () => containerCreateBody(flags, "busybox", [], noFiles);
    expect(bad({ memory: "lots" })).toThrow(new UsageError(`invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'`));
    expect(bad({ cpus: "x" })).toThrow(`invalid argument "x" for "--cpus" flag: failed to parse x as a rational number`);
    expect(bad({ pidsLimit: "ten" })).toThrow(`invalid argument "ten" for "--pids-limit" flag`);
    expect(bad({ tmpfs: ["run"] })).toThrow("mount path must be absolute");
    try {
      bad({ memory: "lots" })();
    } catch (error) {
      expect((error as UsageError).exitCode).toBe(125);
    }
  });

  it("reads env files with the given reader and reports their errors", () => {
    const throwing = {
      readText: () => {
        throw Object.assign(new Error("nope"), { code: "ENOENT", path: "/missing.env" });
      },
      lookup: () => undefined,
    };
    expect(() => containerCreateBody({ envFile: ["/missing.env"] }, "busybox", [], throwing)).toThrow(
      `invalid argument "/missing.env" for "--env-file" flag: open /missing.env: no such file or directory`,
    );
  });
});

describe("exit statuses of a container that could not run", () => {
  it.each([
    ['exec: "nope": executable file not found in $PATH', 127],
    ["exec /bin/app: no such file or directory", 127],
    ["exec /etc/passwd: permission denied", 126],
    ["something else failed", 125],
  ])("%s → %d", (message, code) => {
    const error = runFailure(new DaemonError(400, message));
    expect(error.exitCode).toBe(code);
    expect(error.display).toBe(`Error response from daemon: ${message}`);
  });
});

describe("the multiplexed stream", () => {
  it("splits frames into stdout and stderr, stdin frames going to stdout", () => {
    const data = Buffer.concat([frame(1, "out 1\n"), frame(2, "err\n"), frame(0, "in\n"), frame(1, "")]);
    expect(demultiplex(data)).toEqual({ stdout: "out 1\nin\n", stderr: "err\n" });
  });

  it("reassembles frames cut anywhere, byte by byte", () => {
    const data = Buffer.concat([frame(1, "hello\n"), frame(2, "wörld\n"), frame(1, "x".repeat(70_000))]);
    const totals = { stdout: 0, stderr: 0 };
    const demuxer = new StreamDemuxer((stream, payload) => {
      totals[stream] += payload.length;
    });
    for (const byte of data) demuxer.push(Buffer.from([byte]));
    expect(totals).toEqual({ stdout: 6 + 70_000, stderr: Buffer.byteLength("wörld\n") });
    expect(demuxer.leftover).toBe(0);
  });

  it("keeps an unfinished frame as leftover", () => {
    const demuxer = new StreamDemuxer(() => undefined);
    demuxer.push(frame(1, "partial").subarray(0, 10));
    expect(demuxer.leftover).toBe(10);
  });

  it("fails on an unknown stream type and reports a system error frame", () => {
    expect(() => demultiplex(frame(7, "x"))).toThrow("Unrecognized input header: 7");
    expect(() => demultiplex(frame(3, "boom"))).toThrow("error from daemon in stream: boom");
  });
});

describe("docker ps rows", () => {
  const summary = {
    Id: "5a2681a925d6f1b0c9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978877665544",
    Names: ["/web", "/other/alias"],
    Image: "registry.example/app@sha256:0123456789012345678901234567890123456789012345678901234567890123",
    Command: "sh -c echo started; sleep 600",
    Created: 1_700_000_000,
    Ports: [
      { IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
      { PrivatePort: 53, Type: "udp" },
    ],
    Labels: { tier: "web" },
    State: "running",
    Status: "Up 2 minutes",
    NetworkSettings: { Networks: { host: {} } },
  };

  it("truncates as docker does", () => {
    const [row] = containerRows([summary], { now: 1_700_000_000_000 + 3 * 60_000 });
    expect(row).toMatchObject({
      ID: "5a2681a925d6",
      Names: "web",
      Image: "registry.example/app",
      Command: '"sh -c echo started;…"',
      RunningFor: "3 minutes ago",
      Status: "Up 2 minutes",
      Ports: "0.0.0.0:8080->80/tcp, 53/udp",
      Labels: "tier=web",
      Networks: "host",
      State: "running",
    });
  });

  it("keeps everything with --no-trunc", () => {
    const [row] = containerRows([summary], { noTrunc: true });
    expect(row).toMatchObject({
      ID: summary.Id,
      Names: "web,other/alias",
      Image: summary.Image,
      Command: '"sh -c echo started; sleep 600"',
    });
  });
});

describe("--restart and the stats table", () => {
  it("parses restart policies as docker does", () => {
    expect(restartPolicyFlag("always")).toEqual({ Name: "always", MaximumRetryCount: 0 });
    expect(restartPolicyFlag("on-failure:5")).toEqual({ Name: "on-failure", MaximumRetryCount: 5 });
    expect(restartPolicyFlag("")).toEqual({ Name: "no", MaximumRetryCount: 0 });
    for (const bad of ["sometimes", "always:3", "on-failure:x", "on-failure:1:2"])
      expect(() => restartPolicyFlag(bad), bad).toThrow(UsageError);
  });
  it("computes CPU and memory columns from two samples", () => {
    const row = statsRow("web", {
      id: "0123456789abcdef0123",
      name: "/web",
      cpu_stats: { cpu_usage: { total_usage: 3_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 18_000_000_000 },
      memory_stats: { usage: 60 * 1024 * 1024, limit: 256 * 1024 * 1024, stats: { total_inactive_file: 10 * 1024 * 1024 } },
      networks: { eth0: { rx_bytes: 1500, tx_bytes: 2_500_000 } },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: "Read", value: 4096 },
          { op: "Write", value: 1_000_000 },
        ],
      },
      pids_stats: { current: 3 },
    });
    expect(row).toEqual({
      Container: "web",
      ID: "0123456789ab",
      Name: "web",
      CPUPerc: "100.00%",
      MemUsage: "50MiB / 256MiB",
      MemPerc: "19.53%",
      NetIO: "1.5kB / 2.5MB",
      BlockIO: "4.1kB / 1MB",
      PIDs: "3",
    });
  });
});
