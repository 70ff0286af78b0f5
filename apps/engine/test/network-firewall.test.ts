// The per-network iptables rules minatod installs (networks/firewall.ts), as iptables-restore input.
import { describe, expect, it } from "vitest";
import { NetworkFirewall } from "../src/networks/firewall.js";

describe("per-network iptables rules", () => {
  it("a bridge network gets Docker's masquerade rule and forward accepts; an internal one only its own traffic", () => {
    const firewall = new NetworkFirewall("0123abcd");
    expect(firewall.forwardChain).toBe("MINATO-FORWARD-0123abcd");
    expect(firewall.natChain).toBe("MINATO-POSTROUTING-0123abcd");
    expect(firewall.natChain.length).toBeLessThanOrEqual(28);
    const script = firewall.script([
      { bridge: "mnb-0123abcd", subnet: "172.17.0.0/16", internal: false },
      { bridge: "mn-000000000001", subnet: "10.1.0.0/24", internal: true },
    ]);
    expect(script.split("\n")).toEqual([
      "*filter",
      // Declaring the chain flushes it: the rules below are all it holds afterwards.
      ":MINATO-FORWARD-0123abcd - [0:0]",
      "-A MINATO-FORWARD-0123abcd -o mnb-0123abcd -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT",
      "-A MINATO-FORWARD-0123abcd -i mnb-0123abcd -j ACCEPT",
      "-A MINATO-FORWARD-0123abcd -i mn-000000000001 -o mn-000000000001 -j ACCEPT",
      "-A MINATO-FORWARD-0123abcd -i mn-000000000001 -j DROP",
      "-A MINATO-FORWARD-0123abcd -o mn-000000000001 -j DROP",
      "COMMIT",
      "*nat",
      ":MINATO-POSTROUTING-0123abcd - [0:0]",
      "-A MINATO-POSTROUTING-0123abcd -s 172.17.0.0/16 ! -o mnb-0123abcd -j MASQUERADE",
      "COMMIT",
      "",
    ]);
  });

  it("the default data root's chains have no suffix; no networks leave both chains empty", () => {
    const firewall = new NetworkFirewall("");
    expect(firewall.script([])).toBe("*filter\n:MINATO-FORWARD - [0:0]\nCOMMIT\n*nat\n:MINATO-POSTROUTING - [0:0]\nCOMMIT\n");
  });
});
