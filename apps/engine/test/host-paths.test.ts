import { describe, expect, it } from "vitest";
import { inContainerTerms } from "../src/api/host-paths.js";

const engine = { config: { dataRoot: "/var/lib/minato", execRoot: "/run/minato" } };
const id = "a".repeat(64);
const chain = "b".repeat(64);

describe("error messages in the container's and image's terms", () => {
  it("names a container's file by its path in the container, a layer's by the layer", () => {
    expect(inContainerTerms(`mknod /var/lib/minato/containers/${id}/rootfs/dev/mem: operation not permitted`, engine)).toBe(
      "mknod /dev/mem (in container aaaaaaaaaaaa): operation not permitted",
    );
    expect(inContainerTerms(`open /var/lib/minato/snapshots/${chain}/fs/etc/passwd: no such file`, engine)).toBe(
      "open /etc/passwd (in layer bbbbbbbbbbbb): no such file",
    );
    expect(inContainerTerms(`mount /var/lib/minato/containers/${id}/rootfs failed`, engine)).toBe(
      "mount / (in container aaaaaaaaaaaa) failed",
    );
  });

  it("keeps no other path under the data or exec root, and leaves other text alone", () => {
    const out = inContainerTerms("write /var/lib/minato/builds/build-x/context.tar: ENOSPC; socket /run/minato/c/x/attach", engine);
    expect(out).toBe("write <data-root>/builds/build-x/context.tar: ENOSPC; socket <exec-root>/c/x/attach");
    expect(out).not.toContain("/var/lib/minato");
    expect(inContainerTerms("No such container: abc", engine)).toBe("No such container: abc");
  });
});
