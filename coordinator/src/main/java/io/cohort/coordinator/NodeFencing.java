package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.FenceNodeResponse;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.NodeRecord;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Nodes declared dead. A node that is down may be a dead machine or one only cut off from the
 * network with its vhosts still running; the coordinator cannot tell, so a person (`cohort nodes
 * fence`) or the configured dead-after time decides. From then on the node's vhosts count as gone:
 * kill and restart --replace of its jobs go ahead and leave those vhosts in the job's {@code
 * vhosts_to_end}; nothing new is placed on it. If it is heard again it rejoins: {@link
 * JobReconciler#nodeBack} ends those vhosts first and only then calls {@link #forget}, after which
 * the node takes work again. The declaration is in the catalog, so it outlives a restart of the
 * coordinator.
 */
final class NodeFencing {
  private static final Logger log = LoggerFactory.getLogger(NodeFencing.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final Clock clock;

  /** Null: nodes are declared dead only by hand. */
  private final Duration deadAfter;

  NodeFencing(Catalog catalog, AgentDirectory agents, Clock clock, Duration deadAfter) {
    this.catalog = catalog;
    this.agents = agents;
    this.clock = clock;
    this.deadAfter = deadAfter;
    catalog.deadNodes().forEach(agents::declareDead);
  }

  /** Declares a node that is down dead; a node already declared is left as it is. */
  FenceNodeResponse fence(String node, String reason) {
    if (!agents.known().contains(node)) {
      agents.agent(node); // NOT_FOUND, with the known nodes
    }
    if (!agents.isDead(node)) {
      if (agents.isAlive(node)) {
        throw CohortException.precondition(
            "node %s is up (its agent was heard %.1f s ago): only a node that is down can be "
                + "declared dead. If it misbehaves, stop its agent (or cut it off) first",
            node, agents.silentMillis(node) / 1000.0);
      }
      NodeRecord r =
          NodeRecord.newBuilder()
              .setNode(node)
              .setDeadSinceUnixMs(clock.millis())
              .setReason(reason)
              .build();
      catalog.saveDeadNode(r);
      agents.declareDead(r);
      log.warn("node {} declared dead ({})", node, reason);
    }
    FenceNodeResponse.Builder out = FenceNodeResponse.newBuilder();
    for (JobRecord j : catalog.jobs()) {
      if (j.getInfo().getState() == JobState.JOB_STATE_RUNNING) {
        for (VhostPlacement v : j.getInfo().getVhostsList()) {
          if (v.getNode().equals(node)) {
            out.addStaleVhosts(v.getVhostId() + " (job " + j.getInfo().getJobId() + ")");
          }
        }
      }
    }
    agents.describe().stream()
        .filter(b -> b.getNode().equals(node))
        .findFirst()
        .map(NodeInfo.Builder::build)
        .ifPresent(out::setNode);
    return out.build();
  }

  /** Declares dead every node down for longer than the dead-after time (if one is set). */
  void fenceOverdue() {
    if (deadAfter == null) {
      return;
    }
    for (String node : agents.known()) {
      if (!agents.isDead(node)
          && !agents.isAlive(node)
          && agents.silentMillis(node) > deadAfter.toMillis()) {
        try {
          fence(node, "down for more than " + deadAfter.toSeconds() + " s");
        } catch (RuntimeException e) {
          log.warn("cannot declare node {} dead: {}", node, e.getMessage());
        }
      }
    }
  }

  /** A rejoining node's stale vhosts are ended: it is no longer dead and takes work again. */
  void forget(String node) {
    catalog.deleteDeadNode(node);
    agents.rejoined(node);
    log.info("node {} is back: its stale vhosts are ended and it takes work again", node);
  }
}
