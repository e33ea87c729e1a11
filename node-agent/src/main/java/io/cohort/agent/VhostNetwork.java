package io.cohort.agent;

import io.cohort.proto.v1.JobNetworkPlan;
import java.util.ArrayList;
import java.util.List;

/**
 * A vhost's link to its node and the routes between a job's vhosts: what the agent asks of the
 * node's network. {@link IpVhostNetwork} does it with iproute2; tests use a fake. Every method is
 * idempotent, so a retried or repeated call changes nothing more.
 */
interface VhostNetwork {
  /**
   * MTU of the vhosts' links and of the overlay's TUN. Nothing of a vhost's traffic crosses a
   * physical link as it is (between nodes it rides the overlay's TCP connection), so the links take
   * the largest IP packet: every packet costs the overlay the same work whatever its size, and with
   * 1500-byte packets it tops out at a few tens of MB/s.
   */
  String MTU = "65000";

  /**
   * Creates the link of a vhost (whose init is {@code pid}) with its address, and routes it in its
   * job's table ({@code plan}).
   */
  void attach(long pid, String vhostId, String address, JobNetworkPlan plan);

  /**
   * After a restore (CRIU re-created the vhost's side of the link): configures the node side again,
   * and the vhost's permanent entry for its gateway.
   */
  void reattach(long pid, String vhostId, String address, JobNetworkPlan plan);

  /**
   * Removes what this node held for a job whose last vhost here is gone: the rule that sends its
   * block to its table, and the table. Idempotent.
   */
  void removeJob(JobNetworkPlan plan);

  /**
   * The plan of a vhost with an address; refuses a request without one (from a coordinator older
   * than the plans), which would leave the vhost unrouted.
   */
  static JobNetworkPlan requirePlan(String address, JobNetworkPlan plan) {
    if (!address.isEmpty() && (plan.getSubnet().isEmpty() || plan.getTable() == 0)) {
      throw io.cohort.common.CohortException.invalid(
          "the request gives vhost address %s but no network plan (subnet, table): the "
              + "coordinator is older than this agent; run the same version on both",
          address);
    }
    return plan;
  }

  /**
   * Removes the node side of a vhost's link left by an earlier incarnation (its network namespace
   * can outlive its processes). Only called when that incarnation is known dead: a stale link still
   * carrying the vhost's address would answer the job's restored connections with resets.
   */
  void removeStale(String vhostId);

  /** The CRIU option that names the vhost's external link at a dump. */
  static List<String> dumpOptions(String address) {
    return address.isEmpty() ? List.of() : List.of("--external", "veth[eth0]");
  }

  /** The CRIU option that plugs the restored vhost's link into its node-side name. */
  static List<String> restoreOptions(String vhostId, String address) {
    return address.isEmpty() ? List.of() : List.of("--external", "veth[eth0]:" + hostVeth(vhostId));
  }

  /** Node-side name of a vhost's veth (at most 15 characters). */
  static String hostVeth(String vhostId) {
    String name = "cv" + vhostId;
    if (name.length() > 15) {
      throw io.cohort.common.CohortException.invalid(
          "vhost id %s is too long for an interface name", vhostId);
    }
    return name;
  }

  /** Hostfile lines for mpirun: every vhost address with its slots. */
  static List<String> hostfile(List<String> peers, int slots) {
    List<String> lines = new ArrayList<>();
    for (String p : peers) {
      lines.add(p + " slots=" + slots);
    }
    return lines;
  }
}
