// The Debian packages Minato needs, by purpose; each entry is [package, command it provides] (a
// command given as an absolute path is checked by path: CNI plugins are not on PATH). Used by
// scripts/setup.mjs to install them and by scripts/start.mjs to check them before starting minatod.

/** What minatod needs to run a container on a bridge network. */
const engine = [
  // runc as the OCI runtime, conmon as the containers' monitor.
  ["runc", "runc"],
  ["conmon", "conmon"],
  // Bridge networks and published ports: the CNI plugins, iptables for their NAT rules, iproute2
  // for network namespaces and links.
  ["containernetworking-plugins", "/usr/lib/cni/bridge"],
  ["iptables", "iptables"],
  ["iproute2", "ip"],
  // `--init`: tini (its static build) is bind-mounted into containers as PID 1, as Docker's docker-init.
  ["tini", "tini-static"],
  // zstd layers (pull, push --compression zstd) on Node 20, which has no zstd in node:zlib.
  ["zstd", "zstd"],
];

export const SYSTEM_PACKAGES = {
  engine,
  // Real peers the tests drive: skopeo as a client, CNCF Distribution as a registry, busybox-static
  // for a base image without internet, openssl for test certificates; and the engine's own needs.
  test: [
    ["skopeo", "skopeo"],
    ["docker-registry", "docker-registry"],
    ["busybox-static", "busybox"],
    ["openssl", "openssl"],
    // The stock docker CLI, driven against minatod (docker.io also ships dockerd, which is not started).
    ["docker.io", "docker"],
    // Interactive sessions (`run -it`, `exec -it`) are driven in a real terminal.
    ["tmux", "tmux"],
    // The registry's web UI is tested in a real browser (driven by playwright-core, never downloaded).
    ["chromium", "chromium"],
    // docker-compose 1.29 (docker-py) as a real client of minatod's API: networks, volumes, ports, health.
    ["docker-compose", "docker-compose"],
    // systemd-analyze verifies the units in deploy/systemd.
    ["systemd", "systemd-analyze"],
    // test/engine-metrics.test.ts parses minatod's scrapes with the Prometheus client's own text-format parser.
    ["python3-prometheus-client", "/usr/lib/python3/dist-packages/prometheus_client/parser.py"],
    // test/security.test.ts builds a static syscall probe (gcc and libc6-dev; node-gyp needs them too).
    ["build-essential", "cc"],
    ...engine,
  ],
  // CNCF Distribution and a load generator, for side-by-side benchmarks; dockerd (from docker.io)
  // is the peer bench/engine.mjs starts for its pull and push comparison and bench/containers.mjs
  // for running containers.
  bench: [
    ["docker-registry", "docker-registry"],
    ["wrk", "wrk"],
    ["skopeo", "skopeo"],
    ["docker.io", "dockerd"],
    // The second peer bench/containers.mjs runs containers with (its own storage root in a temp dir).
    ["podman", "podman"],
  ],
};
