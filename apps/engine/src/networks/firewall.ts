// The iptables rules of bridge networks, kept per network as Docker keeps them rather than per
// container as CNI's bridge `ipMasq` and `firewall` plugins make them: a container's start and stop
// then touch no iptables rule at all (only `portmap` does, for containers publishing ports): its
// setup is netlink work and an address from host-local.
//
// Each daemon owns two chains, reached from FORWARD (filter) and POSTROUTING (nat):
//   nat     -s SUBNET ! -o BRIDGE -j MASQUERADE         outbound NAT (Docker's rule, one per network)
//   filter  -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
//           -i BRIDGE -j ACCEPT                         replies, published ports, and what containers send
// and for an internal network only its bridge-local traffic passes (Docker drops the rest too).
// Both chains are rewritten whole from the networks that exist, in one `iptables-restore --noflush`
// (declaring a user chain flushes it: iptables-restore(8)), so rules of removed networks never
// linger: at daemon start, at network create and remove.
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface FirewallNetwork {
  bridge: string;
  subnet: string;
  internal: boolean;
}

export class NetworkFirewall {
  readonly forwardChain: string;
  readonly natChain: string;
  /** Rewrites run one after another, each with the networks as they are when its turn comes. */
  #queue: Promise<unknown> = Promise.resolve();

  /** `suffix` tells several daemons' chains apart ("" for the default data root). */
  constructor(suffix: string) {
    // Chain names are at most 28 characters (XT_EXTENSION_MAXNAMELEN - 1): 18 + "-" + 8 fit.
    this.forwardChain = `MINATO-FORWARD${suffix ? `-${suffix}` : ""}`;
    this.natChain = `MINATO-POSTROUTING${suffix ? `-${suffix}` : ""}`;
  }

  /** The restore script that makes both chains hold exactly these networks' rules. */
  script(networks: FirewallNetwork[]): string {
    const filter = [`:${this.forwardChain} - [0:0]`];
    const nat = [`:${this.natChain} - [0:0]`];
    for (const net of networks) {
      const f = `-A ${this.forwardChain}`;
      if (net.internal) {
        filter.push(`${f} -i ${net.bridge} -o ${net.bridge} -j ACCEPT`, `${f} -i ${net.bridge} -j DROP`, `${f} -o ${net.bridge} -j DROP`);
        continue;
      }
      // DNAT: connections portmap redirected to a container, from other hosts (Docker accepts
      // them with a rule per published port; the conntrack state covers them all).
      filter.push(`${f} -o ${net.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`, `${f} -i ${net.bridge} -j ACCEPT`);
      nat.push(`-A ${this.natChain} -s ${net.subnet} ! -o ${net.bridge} -j MASQUERADE`);
    }
    return ["*filter", ...filter, "COMMIT", "*nat", ...nat, "COMMIT", ""].join("\n");
  }

  /**
   * Installs the rules of the networks `current` returns (replacing whatever the chains held) and the
   * jumps to them. `current` is read when this rewrite's turn comes, so the last one wins with the
   * latest state.
   */
  sync(current: () => FirewallNetwork[]): Promise<void> {
    const next = this.#queue.then(async () => {
      const child = run("iptables-restore", ["-w", "--noflush"]);
      child.child.stdin?.end(this.script(current()));
      await child.catch((error) => {
        throw new Error(`iptables-restore: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
      });
      await this.#jump("filter", "FORWARD", this.forwardChain);
      await this.#jump("nat", "POSTROUTING", this.natChain);
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** First in the built-in chain, once: ahead of a DROP policy and of other engines' rules. */
  async #jump(table: string, from: string, to: string): Promise<void> {
    const exists = await run("iptables", ["-w", "-t", table, "-C", from, "-j", to]).then(
      () => true,
      () => false,
    );
    if (!exists) await run("iptables", ["-w", "-t", table, "-I", from, "1", "-j", to]);
  }

  /** As `sync`, synchronously (minatod is shutting down); with no networks the jumps and chains go. */
  syncNow(networks: FirewallNetwork[]): void {
    if (networks.length > 0) {
      spawnSync("iptables-restore", ["-w", "--noflush"], { input: this.script(networks), stdio: ["pipe", "ignore", "ignore"] });
      return;
    }
    for (const [table, from, chain] of [
      ["filter", "FORWARD", this.forwardChain],
      ["nat", "POSTROUTING", this.natChain],
    ] as const) {
      // -D removes one occurrence a call; a jump added twice by hand still goes.
      for (let i = 0; i < 8; i++) {
        if (spawnSync("iptables", ["-w", "-t", table, "-D", from, "-j", chain], { stdio: "ignore" }).status !== 0) break;
      }
      spawnSync("iptables", ["-w", "-t", table, "-F", chain], { stdio: "ignore" });
      spawnSync("iptables", ["-w", "-t", table, "-X", chain], { stdio: "ignore" });
    }
  }
}
