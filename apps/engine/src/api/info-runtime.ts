// The runtime half of GET /info (swagger SystemInfo): cgroups, OCI runtimes, swarm, live restore.
import { basename } from "node:path";
import { detectCgroupMode } from "@minato/runtime";

/** Fields dockerd's /info has about how containers run. */
export function runtimeInfo(runtimePath: string) {
  const name = basename(runtimePath);
  return {
    // Minato writes cgroup paths itself (cgroupsPath /minato/<id>), not through systemd.
    CgroupDriver: "cgroupfs",
    CgroupVersion: detectCgroupMode() === "unified" ? "2" : "1",
    Runtimes: { [name]: { path: runtimePath } },
    DefaultRuntime: name,
    // swagger SwarmInfo for a node that is not part of a swarm.
    Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
    // conmon keeps containers running while minatod is down or restarting; it finds them again at start.
    LiveRestoreEnabled: true,
  };
}
