package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostRoute;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * The vhosts of jobs across nodes, as run and restart both need them: how many run where, the
 * overlay a job spanning nodes needs, the routes between its vhosts, and ending them.
 */
final class JobVhosts {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Catalog catalog;
  private final AgentDirectory agents;

  JobVhosts(Catalog catalog, AgentDirectory agents) {
    this.catalog = catalog;
    this.agents = agents;
  }

  /** Running vhosts per node (absent: none), from the records of running jobs. */
  Map<String, Integer> runningByNode() {
    Map<String, Integer> running = new HashMap<>();
    for (JobRecord r : catalog.jobs()) {
      if (r.getInfo().getState() == JobState.JOB_STATE_RUNNING) {
        r.getInfo().getVhostsList().forEach(v -> running.merge(v.getNode(), 1, Integer::sum));
      }
    }
    return running;
  }

  /** Vhosts of one job on different nodes talk through the overlay: every node needs one. */
  void requireOverlay(List<String> nodes) {
    if (nodes.stream().distinct().count() <= 1) {
      return;
    }
    for (String n : nodes.stream().distinct().toList()) {
      agents.agent(n); // NOT_FOUND or UNAVAILABLE with the reason
      if (agents.overlayAddress(n).isEmpty()) {
        throw CohortException.precondition(
            "node %s has no overlay endpoint, so vhosts of one "
                + "job cannot span it and other nodes; put them on one node (e.g. --nodes %s)",
            n, nodes.get(0));
      }
    }
  }

  /**
   * A new key for an incarnation's network: random, so a vhost of an earlier incarnation left
   * running on a node that was cut off never shares it.
   */
  static String newNetworkKey() {
    byte[] key = new byte[8];
    RANDOM.nextBytes(key);
    return HexFormat.of().formatHex(key);
  }

  /**
   * Tells every node of a job where all its vhosts are, its network plan and the incarnation's
   * network key; starts vhosts waiting for it.
   */
  void configureNetwork(
      String jobId, List<VhostPlacement> vhosts, String networkKey, JobNetworkPlan plan) {
    if (vhosts.size() < 2) {
      return;
    }
    ConfigureJobNetworkRequest.Builder req =
        ConfigureJobNetworkRequest.newBuilder()
            .setJobId(jobId)
            .setNetworkKey(networkKey)
            .setPlan(plan);
    for (VhostPlacement v : vhosts) {
      req.addVhosts(
          VhostRoute.newBuilder()
              .setAddress(v.getAddress())
              .setNode(v.getNode())
              .setOverlayAddress(agents.overlayAddress(v.getNode())));
    }
    for (String n : headLast(vhosts)) {
      agents.agent(n).configureJobNetwork(req.build());
    }
  }

  /**
   * Lets a restored incarnation run: every node of the job releases the vhosts it holds, the head's
   * node last (as at the start of a run).
   */
  void releaseRestored(String jobId, List<VhostPlacement> vhosts) {
    for (String n : headLast(vhosts)) {
      agents.agent(n).releaseRestored(jobId);
    }
  }

  /** The nodes of a job, the head's last: its mpirun starts the job when its node lets it go. */
  private static List<String> headLast(List<VhostPlacement> vhosts) {
    List<String> nodes =
        new ArrayList<>(vhosts.stream().map(VhostPlacement::getNode).distinct().toList());
    Collections.reverse(nodes);
    return nodes;
  }

  /**
   * Ends a job's vhosts where their node is up; returns those whose node is down or declared dead,
   * to be ended when it is back (the caller records them in the job's {@code vhosts_to_end}).
   * Another failure is thrown.
   */
  List<VhostPlacement> endOrLeave(List<VhostPlacement> vhosts) {
    return vhosts.stream().filter(v -> !agents.endVhost(v)).toList();
  }

  /**
   * Refuses (before anything is changed) when one of a job's running vhosts is on a node that is
   * down and not declared dead: it may be only cut off, with the vhost still running, so nothing
   * may take its place yet.
   */
  void requireNoneOnDownNodes(String jobId, List<VhostPlacement> vhosts) {
    for (VhostPlacement v : vhosts) {
      if (!agents.isAlive(v.getNode()) && !agents.isDead(v.getNode())) {
        throw new CohortException(
            CohortException.Kind.UNAVAILABLE,
            String.format(
                "cannot replace job %s: its vhost %s is on node %s, which is down and may still "
                    + "run it. %s",
                jobId, v.getVhostId(), v.getNode(), declareOrWait(v.getNode())));
      }
    }
  }

  /**
   * Refuses while a vhost left to end ({@code vhosts_to_end}, which the reconcile step has just
   * tried to end) is on a node not declared dead: it could not be reached and may still run.
   */
  void requireNoneLeft(JobRecord rec) {
    for (VhostPlacement v : rec.getVhostsToEndList()) {
      if (!agents.isDead(v.getNode())) {
        throw new CohortException(
            CohortException.Kind.UNAVAILABLE,
            String.format(
                "job %s cannot restart yet: its vhost %s on node %s could not be ended (the node "
                    + "is down or cannot be reached) and may still run. %s",
                rec.getInfo().getJobId(), v.getVhostId(), v.getNode(), declareOrWait(v.getNode())));
      }
    }
  }

  private static String declareOrWait(String node) {
    return String.format(
        "If %s is dead, declare it (`cohort nodes fence %s`) and retry; if it comes back, its "
            + "vhosts are ended and you can retry then",
        node, node);
  }

  /** Ends vhosts a failed run or restart started, best effort: the caller throws its failure. */
  void killQuietly(List<VhostPlacement> started) {
    for (VhostPlacement v : started) {
      try {
        agents.agent(v.getNode()).kill(v.getVhostId());
      } catch (RuntimeException ignored) {
        // best effort: the run or restart failed anyway
      }
    }
  }
}
