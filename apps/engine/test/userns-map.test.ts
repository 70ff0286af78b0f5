import { describe, expect, it } from "vitest";
import { IdMap } from "../src/userns.js";

describe("IdMap (--userns-remap)", () => {
  const map = new IdMap(
    [
      { containerID: 0, hostID: 100000, size: 1000 },
      { containerID: 1000, hostID: 300000, size: 10 },
    ],
    [{ containerID: 0, hostID: 200000, size: 65536 }],
  );

  it("shifts container ids to host ids and back, range by range; ids outside are nobody", () => {
    expect(map.root).toEqual({ uid: 100000, gid: 200000 });
    expect(map.key).toBe("100000.200000");
    expect(map.hostOwner(0, 0)).toEqual({ uid: 100000, gid: 200000 });
    expect(map.hostOwner(999, 5)).toEqual({ uid: 100999, gid: 200005 });
    expect(map.hostOwner(1005, 0)).toEqual({ uid: 300005, gid: 200000 });
    expect(map.hostOwner(5000, 70000)).toEqual({ uid: 65534, gid: 65534 });
    expect(map.containerOwner(100000, 200000)).toEqual({ uid: 0, gid: 0 });
    expect(map.containerOwner(300009, 265535)).toEqual({ uid: 1009, gid: 65535 });
    expect(map.containerOwner(0, 0)).toEqual({ uid: 65534, gid: 65534 });
  });
});
