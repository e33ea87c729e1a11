package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostRoute;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The vhosts of jobs across nodes, as run and restart both need them: how many run where, the
 * overlay a job spanning nodes needs, the routes between its vhosts, and ending them.
 */
final class JobVhosts {
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

  /** Tells every node of a job where all its vhosts are; starts vhosts waiting for it. */
  void configureNetwork(String jobId, List<VhostPlacement> vhosts) {
    if (vhosts.size() < 2) {
      return;
    }
    ConfigureJobNetworkRequest.Builder req =
        ConfigureJobNetworkRequest.newBuilder().setJobId(jobId);
    for (VhostPlacement v : vhosts) {
      req.addVhosts(
          VhostRoute.newBuilder()
              .setAddress(v.getAddress())
              .setNode(v.getNode())
              .setOverlayAddress(agents.overlayAddress(v.getNode())));
    }
    // Nodes of other vhosts first, the head's node last: its mpirun starts when released.
    List<String> nodes =
        new ArrayList<>(vhosts.stream().map(VhostPlacement::getNode).distinct().toList());
    Collections.reverse(nodes);
    for (String n : nodes) {
      agents.agent(n).configureJobNetwork(req.build());
    }
  }

  /** Ends every vhost of a job; a failure is thrown. */
  void kill(JobInfo info) {
    for (VhostPlacement v : info.getVhostsList()) {
      agents.agent(v.getNode()).kill(v.getVhostId());
    }
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
