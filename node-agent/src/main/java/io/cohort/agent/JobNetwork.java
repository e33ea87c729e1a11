package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.VhostRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A job's network on this node beyond each vhost's own link: routes to its vhosts on other nodes
 * (through the overlay), the packets to re-inject into restored vhosts, and the go signal (the
 * ready file) that lets the vhosts' commands start once every node knows where every vhost of the
 * job is.
 */
final class JobNetwork {
  private static final Logger log = LoggerFactory.getLogger(JobNetwork.class);

  /** Created in a vhost's directory when its command may start. */
  static final String READY_FILE = "net-ready";

  private final String node;
  private final String who;
  private final VhostRecords records;
  private final VhostNetwork network;

  /** Null on the user-space path: remote vhosts are routed into the overlay's TUN. */
  private final KernelPath kernel;

  /** Null when this node has no overlay (the embedded mode). */
  private final VhostOverlay overlay;

  /**
   * Packets in flight towards each restored vhost at its checkpoint, by vhost id, written into its
   * network once the job's network is configured again (every vhost restored and routed).
   */
  private final Map<String, List<byte[]>> restoredInflight = new ConcurrentHashMap<>();

  JobNetwork(
      String node,
      VhostRecords records,
      VhostOverlay overlay,
      VhostNetwork network,
      KernelPath kernel) {
    this.node = node;
    this.kernel = kernel;
    this.network = network;
    this.who = "agent " + node;
    this.records = records;
    this.overlay = overlay;
  }

  /** Where this node's overlay listens ("" when it has none). */
  String overlayAddress() {
    if (overlay == null) {
      return "";
    }
    return overlay.address().getHostString() + ":" + overlay.address().getPort();
  }

  /** A restored vhost gets {@code packets} once its job's network is configured. */
  void holdForRestored(String vhostId, List<byte[]> packets) {
    if (packets.isEmpty()) {
      restoredInflight.remove(vhostId);
    } else {
      restoredInflight.put(vhostId, packets);
    }
  }

  /**
   * Where every vhost of a job lives: remote ones are routed through the overlay. Then the job's
   * local vhosts may start their commands.
   */
  void configure(ConfigureJobNetworkRequest req) {
    Ids.requireJob(req.getJobId());
    boolean remote = req.getVhostsList().stream().anyMatch(v -> !v.getNode().equals(node));
    if (remote && overlay == null) {
      throw CohortException.precondition(
          "node %s has no overlay: vhosts of job %s on other nodes cannot be reached from it",
          node, req.getJobId());
    }
    if (overlay != null && req.getVhostsCount() > 0 && !req.getVhosts(0).getAddress().isEmpty()) {
      // Even with every vhost here: the overlay must learn this incarnation's key, or a vhost
      // of an earlier one on a node cut off could still reach these through it.
      JobNetworkPlan plan = VhostNetwork.requirePlan(req.getVhosts(0).getAddress(), req.getPlan());
      overlay.configureJob(
          req.getJobId(),
          plan,
          req.getVhostsList().stream()
              .map(
                  v ->
                      new VhostOverlay.VhostRoute(
                          v.getAddress(), v.getNode(), v.getOverlayAddress()))
              .toList(),
          req.getNetworkKey(),
          kernel != null && remote ? kernel : null);
      if (kernel != null && remote) {
        // Every node of the job programs its side from the same placement before any vhost's
        // command starts (the coordinator releases the head's node last).
        kernel.configure(
            plan,
            req.getVhostsList().stream()
                .filter(v -> !v.getNode().equals(node))
                .map(v -> new KernelPath.Remote(v.getAddress(), hostOf(v.getOverlayAddress())))
                .toList());
      }
    }
    for (String vhostId : records.ofJob(req.getJobId())) {
      injectInflight(vhostId);
      try {
        Files.writeString(records.vhostDir(vhostId).resolve(READY_FILE), "");
      } catch (IOException e) {
        throw DurableFiles.failure("cannot start vhost " + vhostId, e);
      }
    }
  }

  /**
   * The last vhost of a job on this node is gone ({@code last} is its record): removes what the
   * node held for the job (routes, rule, the overlay's state of it).
   */
  void remove(VhostRecord last) {
    if (last.hasPlan()) {
      network.removeJob(last.getPlan());
      if (kernel != null) {
        kernel.remove(last.getPlan());
      }
    }
    if (overlay != null) {
      overlay.removeJob(last.getJobId());
    }
  }

  /** The host of a "host:port" overlay address: the node's address on the fabric. */
  private static String hostOf(String hostPort) {
    return hostPort.substring(0, hostPort.lastIndexOf(':'));
  }

  /**
   * Writes the packets that were in flight towards a restored vhost at its checkpoint into its
   * network, as if they arrived now: TCP takes what it has not seen and acknowledges it, and drops
   * as a duplicate anything it already has. Without this, the senders' TCP would send them again
   * after a retransmission timeout.
   */
  private void injectInflight(String vhostId) {
    List<byte[]> packets = restoredInflight.remove(vhostId);
    if (packets == null) {
      return;
    }
    if (overlay == null) {
      log.warn(
          "{}: {} packets in flight towards {} not re-injected: this node has no overlay "
              + "(TCP will send them again)",
          who,
          packets.size(),
          vhostId);
      return;
    }
    try {
      overlay.injectLocal(packets);
      log.info(
          "{}: re-injected {} packets in flight towards {} at its checkpoint",
          who,
          packets.size(),
          vhostId);
    } catch (IOException e) {
      log.warn(
          "{}: cannot re-inject the packets in flight towards {} ({}); TCP will send them "
              + "again",
          who,
          vhostId,
          e.getMessage());
    }
  }
}
