package io.cohort.agent;

import io.cohort.common.ProcessRunner;
import io.cohort.proto.v1.JobNetworkPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The kernel data path of a job between nodes: one VXLAN device per job on each of its nodes, with
 * the incarnation's VXLAN id (from the plan), programmed from the job's placement. A vhost on
 * another node is a /32 route through the device in the job's table, a permanent neighbour entry
 * with that node's device address and an FDB entry sending that address to the node's fabric
 * address; nothing of a packet goes through user space.
 *
 * <p>Every node's device has a MAC derived from its fabric address ({@link #mac}), so a node needs
 * nothing from the others but the placement. Packets that arrive on the device carry the job's
 * VXLAN id (a device of another job or incarnation never sees them) and are routed by the job's
 * rule (their source is in the job's block) to the local vhost's veth.
 */
final class KernelPath {
  static final String VXLAN_PORT = "4789";

  /**
   * The node's table that sends everything to the agent (the overlay's TUN): what arrives from
   * other nodes with a marker's source, and while the job is frozen here, all of the job's
   * arrivals.
   */
  static final String TO_AGENT_TABLE = "99999";

  /** Rule priorities: before the jobs' own rules (100). */
  private static final String MARKER_PRIORITY = "90";

  private static final String DIVERT_PRIORITY = "91";

  /** This node's address on the fabric (the VXLAN packets' source). */
  private final String local;

  private final int mtu;

  /** Prefix of every command: empty in the agent; {@code ip netns exec NS} in tests. */
  private final List<String> in;

  KernelPath(String localAddress, DataPath path) {
    this(localAddress, path, List.of());
  }

  KernelPath(String localAddress, DataPath path, List<String> in) {
    this.local = localAddress;
    this.mtu = path.fabricMtu() - DataPath.VXLAN_OVERHEAD;
    this.in = List.copyOf(in);
  }

  /** A vhost of the job on another node, and that node's fabric address. */
  record Remote(String address, String nodeAddress) {}

  /** Name of the job's device on every node: one per table, so one per block of the pool. */
  static String device(JobNetworkPlan plan) {
    return "cx" + plan.getTable();
  }

  /** The MAC of a node's VXLAN devices: locally administered, its fabric address inside. */
  static String mac(String nodeAddress) {
    String[] o = nodeAddress.split("\\.");
    return String.format(
        "02:c0:%02x:%02x:%02x:%02x",
        Integer.parseInt(o[0]),
        Integer.parseInt(o[1]),
        Integer.parseInt(o[2]),
        Integer.parseInt(o[3]));
  }

  /**
   * (Re)creates the job's device for the incarnation of {@code plan} and routes the job's remote
   * vhosts through it. A device of an earlier incarnation is replaced: its VXLAN id is no longer
   * accepted here.
   */
  void configure(JobNetworkPlan plan, List<Remote> remote) {
    String dev = device(plan);
    String table = Integer.toString(plan.getTable());
    remove(plan);
    run(
        "ip",
        "link",
        "add",
        dev,
        "type",
        "vxlan",
        "id",
        Integer.toString(plan.getVni()),
        "local",
        local,
        "dstport",
        VXLAN_PORT,
        "nolearning");
    run("ip", "link", "set", dev, "address", mac(local), "mtu", Integer.toString(mtu), "up");
    run("sysctl", "-qw", "net.ipv4.conf." + dev + ".rp_filter=0");
    Map<String, String> nodes = new TreeMap<>();
    for (Remote r : remote) {
      nodes.put(r.nodeAddress(), mac(r.nodeAddress()));
      run(
          "ip",
          "neigh",
          "replace",
          r.address(),
          "lladdr",
          mac(r.nodeAddress()),
          "dev",
          dev,
          "nud",
          "permanent");
      run("ip", "route", "replace", r.address() + "/32", "dev", dev, "table", table);
    }
    for (Map.Entry<String, String> n : nodes.entrySet()) {
      run("bridge", "fdb", "replace", n.getValue(), "dev", dev, "dst", n.getKey());
    }
    // The peers' markers come through the device like the job's packets, from the block's
    // markers' address: they always go to the agent.
    run("ip", "route", "replace", "default", "dev", VhostOverlay.TUN, "table", TO_AGENT_TABLE);
    run(rule("add", dev, MARKER_PRIORITY, "from", plan.getMarkerAddress()));
  }

  /**
   * From now on every packet of the job that arrives from another node goes to the agent instead of
   * the vhosts (the job is frozen here); the agent records or holds them.
   */
  void divert(JobNetworkPlan plan) {
    String dev = device(plan);
    // One `ip` on the dump's path (each costs the agent about 12 ms here before CRIU can start):
    // the kernel refuses a second identical rule, so only a rule left by an earlier divert makes
    // the add fail, and only then is it taken away first.
    if (!ProcessRunner.run(command(rule("add", dev, DIVERT_PRIORITY))).ok()) {
      undivert(plan);
      run(rule("add", dev, DIVERT_PRIORITY));
    }
  }

  /**
   * The job's packets from other nodes reach its vhosts again. Idempotent. One delete: there is at
   * most one such rule, the kernel refuses an identical second one.
   */
  void undivert(JobNetworkPlan plan) {
    ProcessRunner.run(command(rule("del", device(plan), DIVERT_PRIORITY)));
  }

  /** Removes the job's device (and with it its neighbour and FDB entries and routes), its rules. */
  void remove(JobNetworkPlan plan) {
    String dev = device(plan);
    undivert(plan);
    deleteRules(dev, MARKER_PRIORITY); // rules outlive the device they name
    if (ProcessRunner.run(command("ip", "link", "show", dev)).ok()) {
      run("ip", "link", "del", dev);
    }
  }

  /** {@code ip rule OP iif DEV [MATCH...] lookup TO_AGENT priority PRIORITY}. */
  private static String[] rule(String op, String dev, String priority, String... match) {
    List<String> r = new ArrayList<>(List.of("ip", "rule", op, "iif", dev));
    r.addAll(List.of(match));
    r.addAll(List.of("lookup", TO_AGENT_TABLE, "priority", priority));
    return r.toArray(String[]::new);
  }

  /** Deletes every rule of {@code dev} at {@code priority} (one added twice is there twice). */
  private void deleteRules(String dev, String priority) {
    while (ProcessRunner.run(command(rule("del", dev, priority))).ok()) {
      // next one
    }
  }

  private String[] command(String... cmd) {
    List<String> all = new ArrayList<>(in);
    all.addAll(List.of(cmd));
    return all.toArray(String[]::new);
  }

  private void run(String... cmd) {
    IpVhostNetwork.run(command(cmd));
  }
}
