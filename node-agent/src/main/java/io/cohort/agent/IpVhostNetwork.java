package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import io.cohort.proto.v1.JobNetworkPlan;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@link VhostNetwork} with iproute2: a veth pair per vhost, the vhost side ({@code eth0}) inside
 * the vhost with the vhost's address as a /32, the node side ({@code HOST_VETH}) in the agent's
 * network namespace. Plain L3 routing: the vhost's default route goes to {@value #GATEWAY}, which
 * the node side owns; the node has a /32 route per local vhost and forwards between them, each job
 * with its own routing table (see {@link #isolate}). Every command runs through {@link
 * ProcessRunner}, with a deadline.
 */
final class IpVhostNetwork implements VhostNetwork {
  /** Link-local gateway address every vhost uses; owned by each node-side veth. */
  static final String GATEWAY = "169.254.1.1";

  /**
   * MAC address of every node-side veth (locally administered, the gateway's address in its last
   * four bytes). CRIU restores a vhost's neighbour table with its image, so the vhost comes back
   * sure of its gateway's MAC; with the random MAC of a new veth, it sent its first packets after a
   * restart to a MAC nobody had, dropped without a trace until the entry was probed again
   * (KernelPathIT: 150 to 170 datagrams after each restart). Each veth is its own link: one MAC on
   * all of them is no conflict.
   */
  static final String GATEWAY_MAC = "02:00:a9:fe:01:01";

  /**
   * The node refuses every packet its vhosts address to the node itself. A vhost's traffic crosses
   * the node only to be forwarded (to its job's other vhosts, or into the overlay); what is
   * delivered to the node is for its daemons (the agent, the overlay port, a coordinator on the
   * same machine), which a job has no business calling. The rule is on nftables' input hook, which
   * forwarded packets never take, for every vhost link (the {@code cv} prefix of {@link
   * VhostNetwork#hostVeth}); the routing rules alone cannot do it, as the kernel's local table is
   * looked up before any of them. One transaction, so a repeat changes nothing: the table and chain
   * are added if missing and the chain is emptied and filled again. It is applied before every
   * vhost link comes up, not once per agent: a firewall reload that flushed the node's rules
   * (Debian's nftables.conf starts with {@code flush ruleset}) must not leave the next vhost open.
   */
  static final String GUARD =
      "add table inet cohort; "
          + "add chain inet cohort vhosts_in "
          + "{ type filter hook input priority filter; policy accept; }; "
          + "flush chain inet cohort vhosts_in; "
          + "add rule inet cohort vhosts_in iifname \"cv*\" reject with icmpx type admin-prohibited";

  /** MTU of the vhosts' links ({@link DataPath#vhostMtu}). */
  private final String mtu;

  IpVhostNetwork(int mtu) {
    this.mtu = Integer.toString(mtu);
  }

  @Override
  public void removeStale(String vhostId) {
    String host = VhostNetwork.hostVeth(vhostId);
    if (ProcessRunner.run("ip", "link", "show", host).ok()) {
      ProcessRunner.run("ip", "link", "del", host);
    }
  }

  @Override
  public void attach(long pid, String vhostId, String address, JobNetworkPlan plan) {
    String host = VhostNetwork.hostVeth(vhostId);
    guardNode();
    removeStale(vhostId);
    run(
        "ip",
        "link",
        "add",
        host,
        "mtu",
        mtu,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "mtu",
        mtu,
        "netns",
        Long.toString(pid));
    String ns = "--net=/proc/" + pid + "/ns/net";
    run("nsenter", ns, "ip", "addr", "add", address + "/32", "dev", "eth0");
    run("nsenter", ns, "ip", "link", "set", "eth0", "up");
    run("nsenter", ns, "ip", "route", "add", GATEWAY, "dev", "eth0", "scope", "link");
    run("nsenter", ns, "ip", "route", "add", "default", "via", GATEWAY, "dev", "eth0");
    configureHostSide(host, address, plan);
    knowGateway(pid);
  }

  @Override
  public void reattach(long pid, String vhostId, String address, JobNetworkPlan plan) {
    guardNode();
    configureHostSide(VhostNetwork.hostVeth(vhostId), address, plan);
    knowGateway(pid);
  }

  /**
   * The vhost knows its gateway's MAC for good (a permanent neighbour entry; CRIU's images keep
   * it): it never resolves it. A restored vhost whose entry was being resolved when it was dumped,
   * or whose kernel probed the gateway while the node side was not attached yet, lost its first few
   * hundred packets after a restart until a new resolution succeeded (KernelPathIT).
   */
  private static void knowGateway(long pid) {
    run(
        "nsenter",
        "--net=/proc/" + pid + "/ns/net",
        "ip",
        "neigh",
        "replace",
        GATEWAY,
        "lladdr",
        GATEWAY_MAC,
        "dev",
        "eth0",
        "nud",
        "permanent");
  }

  @Override
  public void removeJob(JobNetworkPlan plan) {
    String table = Integer.toString(plan.getTable());
    // Either may be gone already (a second kill, an agent restarted): nothing to do then.
    ProcessRunner.run("ip", "rule", "del", "from", plan.getSubnet(), "lookup", table);
    ProcessRunner.run("ip", "route", "flush", "table", table);
  }

  /**
   * The node side of a vhost's veth: up, owning the gateway address, answering ARP for the node,
   * and a /32 route to the vhost.
   */
  private void configureHostSide(String host, String address, JobNetworkPlan plan) {
    run("ip", "addr", "replace", GATEWAY + "/32", "dev", host);
    run("ip", "link", "set", host, "address", GATEWAY_MAC, "mtu", mtu, "up");
    sysctl("net/ipv4/ip_forward", "1");
    sysctl("net/ipv4/conf/" + host + "/proxy_arp", "1");
    sysctl("net/ipv4/conf/" + host + "/rp_filter", "0");
    sysctl("net/ipv4/conf/all/rp_filter", "0");
    run("ip", "route", "replace", address + "/32", "dev", host);
    isolate(host, address, plan);
  }

  /**
   * Jobs are isolated from each other: traffic from a job's block (its plan's subnet) is routed
   * with that job's own table, which holds only the job's vhosts and an unreachable default. A
   * vhost can reach its job's other vhosts and nothing else.
   */
  private static void isolate(String host, String address, JobNetworkPlan plan) {
    String subnet = plan.getSubnet();
    String table = Integer.toString(plan.getTable());
    ProcessRunner.run("ip", "rule", "del", "from", subnet, "lookup", table); // may be absent
    run("ip", "rule", "add", "from", subnet, "lookup", table, "priority", "100");
    run("ip", "route", "replace", "unreachable", "default", "table", table);
    run("ip", "route", "replace", address + "/32", "dev", host, "table", table);
  }

  private static void guardNode() {
    String failure;
    try {
      ProcessRunner.Result r = ProcessRunner.run("nft", GUARD);
      failure = r.ok() ? null : r.output().strip();
    } catch (CohortException cannotStart) {
      failure = cannotStart.getMessage(); // no nft on this node
    }
    if (failure != null) {
      throw CohortException.precondition(
          "cannot keep this node's vhosts away from its daemons: %s; install nftables "
              + "(`cohort setup` does)",
          failure);
    }
  }

  private static void sysctl(String key, String value) {
    try {
      Files.writeString(Path.of("/proc/sys", key), value);
    } catch (IOException e) {
      throw CohortException.internal("cannot set " + key + "=" + value + ": " + e, e);
    }
  }

  /** Runs an iproute2 (or nsenter) command; a failure is an error with its output. */
  static void run(String... cmd) {
    ProcessRunner.check("node networking", cmd);
  }
}
