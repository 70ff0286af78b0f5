// Bridge networks and published ports on a real minatod (CNI plugins, iptables, runc), driven by
// the stock docker CLI. Traffic goes only to 127.0.0.1, inside the containers' own network
// namespaces between their addresses on the networks this file creates, and to a network namespace
// this file creates (an "outside" host behind a veth).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { busyboxRootfs, EngineProcess, until } from "./support/engine-process.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface NetworkEntry {
  IPAddress: string;
  NetworkID: string;
  MacAddress: string;
  Aliases: string[] | null;
}

interface Inspect {
  Id: string;
  State: { Status: string; Pid: number; Error: string };
  NetworkSettings: {
    SandboxKey: string;
    IPAddress: string;
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
    Networks: Record<string, NetworkEntry>;
  };
  HostConfig: { NetworkMode: string };
}

const exec = (command: string, args: string[]): Promise<Run> =>
  new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
    });
  });

/** A free TCP port on 127.0.0.1 (bound and released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function httpGet(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const response = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
    return { status: response.statusCode, body: await response.body.text() };
  } catch {
    return undefined;
  }
}

/** The namespace standing for another host, and the host's address on the veth to it. */
const OUTSIDE_IP = "10.213.7.2";
const HOST_SIDE_IP = "10.213.7.1";

const HTTPD = ["sh", "-c", "echo hello-from-$(hostname) > /tmp/index.html && exec httpd -f -p 80 -h /tmp"];

describe("networks on minatod (CNI bridge and portmap, per-network iptables rules; as root)", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const docker = (args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile("docker", args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });
  const ok = async (args: string[]) => {
    const result = await docker(args);
    expect(result.code, `docker ${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout.trim();
  };
  const inspect = async (id: string) => (await engine.json<Inspect>("GET", `/containers/${id}/json`)).body;
  const iptables = async () => (await exec("iptables-save", [])).stdout;
  /** A file as the container sees it, read through its mount namespace. */
  const containerFile = async (name: string, path: string) =>
    (await exec("nsenter", ["-t", String((await inspect(name)).State.Pid), "-m", "cat", path])).stdout;
  /** The links in a container's network namespace. */
  const links = async (name: string) => {
    const out = (await exec("nsenter", [`--net=${(await inspect(name)).NetworkSettings.SandboxKey}`, "ip", "-o", "link", "show"])).stdout;
    return out
      .split("\n")
      .filter(Boolean)
      .map((line) => (line.split(": ")[1] as string).split("@")[0])
      .sort();
  };

  /** What a container's network leaves behind on the host, if anything. */
  async function leftovers(id: string, ip: string, networkId: string, bridge: string): Promise<string[]> {
    const found: string[] = [];
    const rules = await iptables();
    for (const line of rules.split("\n")) if (line.includes(id) || line.includes(`${ip}/32`) || line.includes(`${ip}:`)) found.push(line);
    if (existsSync(`/sys/class/net/${bridge}/brif`)) {
      for (const port of readdirSync(`/sys/class/net/${bridge}/brif`)) found.push(`veth ${port} on ${bridge}`);
    }
    const ipam = join(engine.dataRoot, "networks", "ipam", networkId);
    if (existsSync(join(ipam, ip))) found.push(`IPAM allocation ${ip}`);
    if (existsSync(join(engine.work, "exec", "netns", id))) found.push(`netns ${id}`);
    return found;
  }

  const bridgeOf = async (network: string) =>
    (await engine.json<{ Options: Record<string, string> }>("GET", `/networks/${network}`)).body.Options[
      "com.docker.network.bridge.name"
    ] as string;

  /** minatod's own chains, named after its data root as its default bridge is. */
  const chainsOf = async () => {
    const hash = (await bridgeOf("bridge")).slice("mnb-".length);
    return { forward: `MINATO-FORWARD-${hash}`, nat: `MINATO-POSTROUTING-${hash}` };
  };
  const must = async (command: string, args: string[]) => {
    const result = await exec(command, args);
    expect(result.code, `${command} ${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };

  /**
   * A network namespace standing for another host: one veth to the host (HOST_SIDE_IP on the host,
   * OUTSIDE_IP inside) and no other route, so it can answer a container only through NAT. A busybox
   * httpd serves "hello-from-outside" in it.
   */
  async function outsideHost() {
    const dir = join(work, "outside");
    await mkdir(join(dir, "www"), { recursive: true });
    await writeFile(join(dir, "www", "index.html"), "hello-from-outside\n");
    const file = join(dir, "netns");
    await writeFile(file, "");
    await must("unshare", [`--net=${file}`, "ip", "link", "set", "lo", "up"]);
    const hostIf = `mnto${process.pid % 100_000}`;
    const inside = (args: string[]) => must("nsenter", [`--net=${file}`, ...args]);
    await inside(["ip", "link", "add", "o0", "type", "veth", "peer", "name", hostIf, "netns", String(process.pid)]);
    await inside(["ip", "addr", "add", `${OUTSIDE_IP}/24`, "dev", "o0"]);
    await inside(["ip", "link", "set", "o0", "up"]);
    await must("ip", ["addr", "add", `${HOST_SIDE_IP}/24`, "dev", hostIf]);
    await must("ip", ["link", "set", hostIf, "up"]);
    const httpd: ChildProcess = spawn(
      "nsenter",
      [`--net=${file}`, "busybox", "httpd", "-f", "-p", `${OUTSIDE_IP}:8080`, "-h", join(dir, "www")],
      {
        stdio: "ignore",
      },
    );
    return {
      hostIf,
      /** An HTTP/1.0 GET from inside the namespace, with busybox nc: the whole answer, or "". */
      get: (host: string, port: number) =>
        new Promise<string>((resolve) => {
          const nc = execFile("nsenter", [`--net=${file}`, "busybox", "nc", "-w", "2", host, String(port)], (_error, stdout) =>
            resolve(stdout),
          );
          nc.stdin?.end("GET / HTTP/1.0\r\n\r\n");
        }),
      dispose: async () => {
        httpd.kill("SIGKILL");
        await exec("ip", ["link", "del", hostIf]);
        await exec("umount", [file]);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-networks-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    await ok(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
    await ok(["import", "--change", 'CMD ["/bin/sh"]', "--change", "EXPOSE 80", "--change", "EXPOSE 8125/udp", rootfs, "exposed:latest"]);
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    for (const name of ["appnet", "teardown-net", "busy-net", "rules-net", "keep-net", "rm-net"])
      await docker(["network", "rm", name]).catch(() => undefined);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("the predefined networks are listed, the default bridge on a subnet no host route uses", async () => {
    const names = (await ok(["network", "ls", "--format", "{{.Name}} {{.Driver}}"])).split("\n").sort();
    expect(names).toEqual(["bridge bridge", "host host", "none null"]);
    const bridge = (await engine.json<{ IPAM: { Config: { Subnet: string; Gateway: string }[] } }>("GET", "/networks/bridge")).body;
    const subnet = bridge.IPAM.Config[0]?.Subnet as string;
    expect(subnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    const bridgeDevice = await bridgeOf("bridge");
    // The only route to it is the engine's own bridge. Engines of other test files starting at the
    // same moment may put up a bridge on the same subnet for an instant: each claims a subnet by
    // creating its bridge and withdraws it when it finds another route (NetworkManager#claimSubnet).
    await vi.waitFor(
      async () => {
        const routes = (await exec("ip", ["-4", "route", "show", subnet])).stdout.trim().split("\n");
        expect(routes, routes.join(" | ")).toHaveLength(1);
        expect(routes[0]).toContain(bridgeDevice);
      },
      { timeout: 5000, interval: 100 },
    );
  });

  it("a busybox httpd published with -p 127.0.0.1:PORT:80 answers from the host; docker port and ps show it", async () => {
    const port = await freePort();
    const id = await ok(["run", "-d", "--name", "web", "-p", `127.0.0.1:${port}:80`, "busybox", ...HTTPD]);
    await until(async () => (await httpGet(`http://127.0.0.1:${port}/`))?.status === 200, "httpd behind the published port");
    const response = await httpGet(`http://127.0.0.1:${port}/`);
    expect(response?.body).toBe(`hello-from-${id.slice(0, 12)}\n`);
    expect(await ok(["port", "web"])).toBe(`80/tcp -> 127.0.0.1:${port}`);
    expect(await ok(["port", "web", "80"])).toBe(`127.0.0.1:${port}`);
    expect(await ok(["ps", "--filter", "name=web", "--format", "{{.Ports}}"])).toBe(`127.0.0.1:${port}->80/tcp`);
    const info = await inspect("web");
    expect(info.HostConfig.NetworkMode).toBe("bridge");
    expect(info.NetworkSettings.IPAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(info.NetworkSettings.Networks.bridge?.IPAddress).toBe(info.NetworkSettings.IPAddress);
    expect(info.NetworkSettings.SandboxKey).toBe(join(engine.work, "exec", "netns", id));
    await ok(["rm", "-f", "web"]);
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toBeUndefined();
  });

  it("-P publishes the image's EXPOSEd ports on random host ports", async () => {
    await ok(["run", "-d", "--name", "exposed", "-P", "exposed", ...HTTPD]);
    const ports = (await inspect("exposed")).NetworkSettings.Ports;
    expect(Object.keys(ports).sort()).toEqual(["80/tcp", "8125/udp"]);
    const tcp = ports["80/tcp"]?.[0];
    expect(tcp?.HostIp).toBe("0.0.0.0");
    expect(Number(tcp?.HostPort)).toBeGreaterThan(1024);
    expect(ports["8125/udp"]?.[0]?.HostPort).toMatch(/^\d+$/);
    await until(async () => (await httpGet(`http://127.0.0.1:${tcp?.HostPort}/`))?.status === 200, "httpd on the random port");
    expect(await ok(["port", "exposed", "80/tcp"])).toBe(`0.0.0.0:${tcp?.HostPort}`);
    await ok(["rm", "-f", "exposed"]);
  });

  it("containers on a user-defined network reach each other by name and by alias", async () => {
    await ok(["network", "create", "--subnet", "10.213.1.0/24", "--label", "purpose=test", "appnet"]);
    const inspected = JSON.parse(await ok(["network", "inspect", "appnet"])) as {
      Name: string;
      Driver: string;
      IPAM: { Config: { Subnet: string; Gateway: string }[] };
      Labels: Record<string, string>;
      Containers: Record<string, { Name: string; IPv4Address: string }>;
    }[];
    expect(inspected[0]).toMatchObject({ Name: "appnet", Driver: "bridge", Labels: { purpose: "test" } });
    expect(inspected[0]?.IPAM.Config).toEqual([{ Subnet: "10.213.1.0/24", Gateway: "10.213.1.1" }]);
    await ok([
      "run",
      "-d",
      "--name",
      "server",
      "--network",
      "appnet",
      "--network-alias",
      "api",
      "--ip",
      "10.213.1.50",
      "busybox",
      ...HTTPD,
    ]);
    const server = await inspect("server");
    expect(server.NetworkSettings.Networks.appnet).toMatchObject({ IPAddress: "10.213.1.50", Aliases: ["api"] });
    // nc rather than wget: Debian's static busybox wget crashes in containers without NSS libraries.
    const get = (host: string) => [
      "run",
      "--rm",
      "--network",
      "appnet",
      "busybox",
      "sh",
      "-c",
      `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 ${host} 80`,
    ];
    const byName = await docker(get("server"));
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toMatch(/^HTTP\/1\.[01] 200 OK/);
    expect(byName.stdout.endsWith(`\r\n\r\nhello-from-${server.Id.slice(0, 12)}\n`)).toBe(true);
    const byAlias = await docker(get("api"));
    expect(byAlias.stdout.endsWith(`hello-from-${server.Id.slice(0, 12)}\n`)).toBe(true);
    // A peer that starts later is added to the running server's /etc/hosts too.
    await ok(["run", "-d", "--name", "late", "--network", "appnet", "busybox", "sleep", "60"]);
    const late = await inspect("late");
    const hosts = await containerFile("server", "/etc/hosts");
    expect(hosts).toContain(`${late.NetworkSettings.Networks.appnet?.IPAddress}\tlate`);
    const network = JSON.parse(await ok(["network", "inspect", "appnet"]))[0] as {
      Containers: Record<string, { Name: string; IPv4Address: string }>;
    };
    expect(network.Containers[server.Id]).toMatchObject({ Name: "server", IPv4Address: "10.213.1.50/24" });
    // In use: 409 from the API, an error from the CLI.
    const busy = await engine.json<{ message: string }>("DELETE", "/networks/appnet");
    expect(busy.status).toBe(409);
    expect(busy.body.message).toMatch(/^error while removing network: network appnet id [0-9a-f]{64} has active endpoints$/);
    await ok(["rm", "-f", "late"]);
    expect(await containerFile("server", "/etc/hosts")).not.toContain("\tlate");
    await ok(["rm", "-f", "server"]);
    await ok(["network", "rm", "appnet"]);
    expect((await docker(["network", "inspect", "appnet"])).code).not.toBe(0);
  });

  it("connect and disconnect give a running container an interface on another network and take it away", async () => {
    await ok(["network", "create", "--subnet", "10.213.4.0/24", "busy-net"]);
    await ok(["run", "-d", "--name", "multi", "busybox", "sleep", "60"]);
    await ok(["network", "connect", "busy-net", "multi"]);
    expect(await links("multi")).toEqual(["eth0", "eth1", "lo"]);
    expect((await inspect("multi")).NetworkSettings.Networks["busy-net"]?.IPAddress).toMatch(/^10\.213\.4\./);
    await ok(["network", "disconnect", "busy-net", "multi"]);
    expect(await links("multi")).toEqual(["eth0", "lo"]);
    await ok(["rm", "-f", "multi"]);
    await ok(["network", "rm", "busy-net"]);
  });

  it("--network none has only loopback; host shares the host's; --add-host and --dns reach the container's files", async () => {
    expect(await ok(["run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"])).toBe("lo");
    expect((await inspect(await ok(["create", "--network", "none", "busybox"]))).NetworkSettings.Networks).toHaveProperty("none");
    // The host's links, the engine's default bridge among them.
    expect((await ok(["run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"])).split(/\s+/)).toContain(
      await bridgeOf("bridge"),
    );
    const files = await ok([
      "run",
      "--rm",
      "--add-host",
      "db.internal:10.213.9.9",
      "--dns",
      "10.213.9.53",
      "busybox",
      "cat",
      "/etc/hosts",
      "/etc/resolv.conf",
    ]);
    expect(files).toContain("10.213.9.9\tdb.internal");
    expect(files).toContain("nameserver 10.213.9.53");
  });

  it("a network brings its NAT and forwarding rules and takes them away; a container publishing no port adds none", async () => {
    const chains = await chainsOf();
    await ok(["network", "create", "--subnet", "10.213.6.0/24", "rules-net"]);
    const bridge = await bridgeOf("rules-net");
    const rules = await iptables();
    expect(rules).toContain(`-A ${chains.nat} -s 10.213.6.0/24 ! -o ${bridge} -j MASQUERADE`);
    expect(rules).toContain(`-A ${chains.forward} -i ${bridge} -j ACCEPT`);
    expect(rules).toContain(`-A ${chains.forward} -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`);
    expect(rules).toContain(`-A POSTROUTING -j ${chains.nat}`);
    expect(rules).toContain(`-A FORWARD -j ${chains.forward}`);
    const id = await ok(["run", "-d", "--network", "rules-net", "busybox", "sleep", "60"]);
    const ip = (await inspect(id)).NetworkSettings.Networks["rules-net"]?.IPAddress as string;
    expect(ip).toMatch(/^10\.213\.6\./);
    expect((await iptables()).split("\n").filter((line) => line.includes(id) || line.includes(`${ip}/32`))).toEqual([]);
    await ok(["rm", "-f", id]);
    await ok(["network", "rm", "rules-net"]);
    const after = await iptables();
    expect(after).not.toContain("10.213.6.0/24");
    expect(after).not.toContain(bridge);
  });

  it("a container's traffic to another host is masqueraded, and that host reaches its published port, past FORWARD drops", async () => {
    const outside = await outsideHost();
    // Whatever the host's FORWARD policy, traffic through this veth passes only by minatod's rules.
    const drops = [
      ["-i", outside.hostIf, "-j", "DROP"],
      ["-o", outside.hostIf, "-j", "DROP"],
    ];
    for (const rule of drops) await must("iptables", ["-A", "FORWARD", ...rule]);
    try {
      // The outside namespace has no route to the default bridge's subnet: only a masqueraded
      // connection (from 10.213.7.1) is answered.
      const out = await docker([
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${OUTSIDE_IP} 8080`,
      ]);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toMatch(/^HTTP\/1\.[01] 200 OK/);
      expect(out.stdout.endsWith("\r\n\r\nhello-from-outside\n")).toBe(true);

      await ok(["network", "create", "--subnet", "10.213.6.0/24", "rules-net"]);
      const port = await freePort();
      const id = await ok(["run", "-d", "--network", "rules-net", "-p", `${port}:80`, "busybox", ...HTTPD]);
      // From the other host to the host's address on its link: DNAT, then FORWARD into the bridge.
      let answer = "";
      await until(async () => {
        answer = await outside.get(HOST_SIDE_IP, port);
        return /^HTTP\/1\.[01] 200 OK/.test(answer);
      }, "the published port from the outside namespace");
      expect(answer.endsWith(`hello-from-${id.slice(0, 12)}\n`)).toBe(true);
      await ok(["rm", "-f", id]);
      await ok(["network", "rm", "rules-net"]);
    } finally {
      for (const rule of drops) await exec("iptables", ["-D", "FORWARD", ...rule]);
      await outside.dispose();
    }
  });

  it("run --rm gives back the address and the namespace before it returns; the veth goes with the namespace", async () => {
    await ok(["network", "create", "--subnet", "10.213.10.0/24", "rm-net"]);
    const net = JSON.parse(await ok(["network", "inspect", "rm-net"]))[0] as { Id: string };
    const bridge = await bridgeOf("rm-net");
    const cidfile = join(work, "rm.cid");
    const out = await ok(["run", "--rm", "--cidfile", cidfile, "--network", "rm-net", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"]);
    const ip = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1] as string;
    expect(ip).toMatch(/^10\.213\.10\./);
    const id = (await readFile(cidfile, "utf8")).trim();
    expect((await engine.json("GET", `/containers/${id}/json`)).status).toBe(404);
    expect(existsSync(join(engine.dataRoot, "networks", "ipam", net.Id, ip))).toBe(false);
    expect(existsSync(join(engine.work, "exec", "netns", id))).toBe(false);
    await until(async () => readdirSync(`/sys/class/net/${bridge}/brif`).length === 0, "the veth to go with its namespace");
    // Created and removed without a start: the namespace made at create goes too.
    const created = await ok(["create", "--network", "rm-net", "busybox"]);
    await ok(["rm", created]);
    expect(existsSync(join(engine.work, "exec", "netns", created))).toBe(false);
    await ok(["network", "rm", "rm-net"]);
  });

  it("stopping and removing leave no iptables rule, veth, IP allocation or namespace behind", async () => {
    await ok(["network", "create", "--subnet", "10.213.2.0/24", "teardown-net"]);
    const net = JSON.parse(await ok(["network", "inspect", "teardown-net"]))[0] as { Id: string };
    const bridge = await bridgeOf("teardown-net");
    const port = await freePort();
    const id = await ok(["run", "-d", "--name", "gone", "--network", "teardown-net", "-p", `127.0.0.1:${port}:80`, "busybox", ...HTTPD]);
    const ip = (await inspect(id)).NetworkSettings.Networks["teardown-net"]?.IPAddress as string;
    await until(async () => (await httpGet(`http://127.0.0.1:${port}/`))?.status === 200, "httpd");
    // While it runs, its rules, veth and address are there (so their absence later means something).
    expect((await leftovers(id, ip, net.Id, bridge)).length).toBeGreaterThanOrEqual(4);
    await ok(["stop", "-t", "1", "gone"]);
    expect(await leftovers(id, ip, net.Id, bridge)).toEqual([]);
    await ok(["start", "gone"]);
    await until(async () => (await httpGet(`http://127.0.0.1:${port}/`))?.status === 200, "httpd after restart");
    const again = (await inspect(id)).NetworkSettings.Networks["teardown-net"]?.IPAddress as string;
    await ok(["rm", "-f", "gone"]);
    expect(await leftovers(id, again, net.Id, bridge)).toEqual([]);
    await ok(["network", "rm", "teardown-net"]);
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
  });

  it("after minatod dies and the container with it, the next minatod removes its rules, address and namespace", async () => {
    const port = await freePort();
    const id = await ok(["run", "-d", "--name", "orphan", "-p", `127.0.0.1:${port}:80`, "busybox", ...HTTPD]);
    const info = await inspect(id);
    const ip = info.NetworkSettings.IPAddress;
    const networkId = info.NetworkSettings.Networks.bridge?.NetworkID as string;
    await engine.kill("SIGKILL");
    process.kill(info.State.Pid, "SIGKILL");
    await until(async () => !existsSync(`/proc/${info.State.Pid}`), "the container's process to end");
    expect((await leftovers(id, ip, networkId, "none")).length).toBeGreaterThan(0);
    await engine.restart();
    await until(async () => (await inspect(id)).State.Status === "exited", "the container to be seen as exited");
    expect(await leftovers(id, ip, networkId, "none")).toEqual([]);
    await ok(["rm", "orphan"]);
  });

  it("minatod puts its networks' rules back at start, drops those of networks it no longer has, and takes its own away at exit", async () => {
    const chains = await chainsOf();
    await ok(["network", "create", "--subnet", "10.213.8.0/24", "keep-net"]);
    const bridge = await bridgeOf("keep-net");
    const masquerade = `-A ${chains.nat} -s 10.213.8.0/24 ! -o ${bridge} -j MASQUERADE`;
    expect(await iptables()).toContain(masquerade);
    await engine.kill("SIGKILL");
    // While it is down its rules are flushed away, and its chain gets a rule of a network it does not have.
    await must("iptables", ["-t", "nat", "-F", chains.nat]);
    await must("iptables", ["-t", "nat", "-D", "POSTROUTING", "-j", chains.nat]);
    await must("iptables", ["-t", "nat", "-A", chains.nat, "-s", "10.213.11.0/24", "!", "-o", "mn-gone", "-j", "MASQUERADE"]);
    await engine.restart();
    const rules = await iptables();
    expect(rules).toContain(masquerade);
    expect(rules.split("\n").filter((line) => line === `-A POSTROUTING -j ${chains.nat}`)).toHaveLength(1);
    expect(rules).toContain(`-A FORWARD -j ${chains.forward}`);
    expect(rules).not.toContain("10.213.11.0/24");
    // No container runs: a stopping minatod leaves none of its rules behind.
    await engine.kill("SIGTERM");
    const stopped = await iptables();
    expect(stopped).not.toContain(chains.nat);
    expect(stopped).not.toContain(chains.forward);
    await engine.restart();
    expect(await iptables()).toContain(masquerade);
    await ok(["network", "rm", "keep-net"]);
    expect(await iptables()).not.toContain(bridge);
  });

  it("a restarted engine moves its default bridge off a subnet another bridge took while it was down", async () => {
    const other = await EngineProcess.start();
    const squatter = "mnt-squat";
    try {
      const subnetOf = async () =>
        (await other.json<{ IPAM: { Config: { Subnet: string }[] } }>("GET", "/networks/bridge")).body.IPAM.Config[0]?.Subnet as string;
      const first = await subnetOf();
      await other.kill("SIGTERM"); // a stopping minatod removes its idle bridges
      await must("ip", ["link", "add", squatter, "type", "bridge"]);
      await must("ip", ["addr", "add", first.replace(/\.0\/(\d+)$/, ".1/$1"), "dev", squatter]);
      await must("ip", ["link", "set", squatter, "up"]);
      await other.restart();
      const moved = await subnetOf();
      expect(moved).not.toBe(first);
      expect((await exec("ip", ["-4", "route", "show", first])).stdout).not.toContain("mnb-");
      await vi.waitFor(
        async () => {
          const routes = (await exec("ip", ["-4", "route", "show", moved])).stdout.trim().split("\n");
          expect(routes, routes.join(" | ")).toHaveLength(1);
          expect(routes[0]).not.toContain(squatter);
        },
        { timeout: 5000, interval: 100 },
      );
    } finally {
      await exec("ip", ["link", "del", squatter]);
      await other.dispose();
    }
  });

  it("bad input: a port in use, an overlapping subnet, an unknown network, --ip on the default bridge", async () => {
    // A host socket holds the port: the start fails with Docker's message and leaves nothing set up.
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", () => resolve()));
    const held = (holder.address() as { port: number }).port;
    try {
      const busy = await docker(["run", "-d", "--name", "clash", "-p", `127.0.0.1:${held}:80`, "busybox", "sleep", "60"]);
      expect(busy.code).toBe(125);
      expect(busy.stderr).toContain(`Bind for 127.0.0.1:${held} failed: port is already allocated`);
      const clash = await inspect("clash");
      expect(clash.State.Status).toBe("created");
      expect(clash.State.Error).toContain("port is already allocated");
      expect(existsSync(join(engine.work, "exec", "netns", clash.Id))).toBe(false);
      expect(await iptables()).not.toContain(clash.Id);
      await ok(["rm", "clash"]);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    // A port another container publishes is taken too, on any address for 0.0.0.0.
    const port = await freePort();
    await ok(["run", "-d", "--name", "first", "-p", `${port}:80`, "busybox", "sleep", "60"]);
    const second = await docker(["run", "-d", "--name", "second", "-p", `127.0.0.1:${port}:80`, "busybox", "sleep", "60"]);
    expect(second.stderr).toContain("port is already allocated");
    await ok(["rm", "-f", "first", "second"]);

    await ok(["network", "create", "--subnet", "10.213.3.0/24", "taken"]);
    const overlap = await docker(["network", "create", "--subnet", "10.213.3.128/25", "overlap"]);
    expect(overlap.code).not.toBe(0);
    expect(overlap.stderr).toContain("Pool overlaps with other one on this address space");
    const duplicate = await docker(["network", "create", "taken"]);
    expect(duplicate.stderr).toContain("network with name taken already exists");
    const hostBits = await engine.json<{ message: string }>("POST", "/networks/create", {
      body: JSON.stringify({ Name: "hostbits", IPAM: { Config: [{ Subnet: "10.213.5.7/24" }] } }),
      headers: { "content-type": "application/json" },
    });
    expect(hostBits.status).toBe(400);
    await ok(["network", "rm", "taken"]);

    const unknown = await docker(["run", "--rm", "--network", "no-such-net", "busybox", "true"]);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toContain("network no-such-net not found");
    expect(unknown.stderr).not.toContain("Unable to find image");
    expect((await engine.json("GET", "/networks/no-such-net")).status).toBe(404);
    const ipOnDefault = await docker(["run", "--rm", "--ip", "10.213.9.2", "busybox", "true"]);
    expect(ipOnDefault.stderr).toContain("user specified IP address is supported on user defined networks only");
    const predefined = await engine.json<{ message: string }>("DELETE", "/networks/bridge");
    expect(predefined.status).toBe(403);
    const badPort = await docker(["run", "--rm", "-p", "127.0.0.1:70000:80", "busybox", "true"]);
    expect(badPort.code).not.toBe(0);
  });
});
