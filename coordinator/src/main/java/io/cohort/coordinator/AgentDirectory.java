package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.NodeInfo;
import io.grpc.ManagedChannel;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * The node agents the coordinator can reach, by node name. In the embedded mode the one agent is
 * fixed and always there; the coordinator daemon learns its agents from their heartbeats and calls
 * a node down when it has not heard from it for {@code liveness}.
 */
final class AgentDirectory implements AutoCloseable {
  private record Entry(
      AgentClient client, ManagedChannel owned, HeartbeatRequest info, long lastHeardMillis) {}

  private final Map<String, Entry> agents = new ConcurrentHashMap<>();
  private final Clock clock;
  private final Duration liveness;
  private final Function<String, ManagedChannel> dial;
  private final java.util.function.BiFunction<String, ManagedChannel, AgentClient> clientFor;

  /** A fixed set of agents that are always considered alive (the embedded mode). */
  AgentDirectory(Map<String, AgentClient> fixed) {
    this.clock = Clock.systemUTC();
    this.liveness = null;
    this.dial = null;
    this.clientFor = null;
    fixed.forEach(
        (node, c) ->
            agents.put(
                node,
                new Entry(
                    c, null, HeartbeatRequest.newBuilder().setNode(node).build(), Long.MAX_VALUE)));
  }

  /** Agents known from heartbeats; {@code dial} opens a channel to an agent's address. */
  AgentDirectory(
      Clock clock,
      Duration liveness,
      Function<String, ManagedChannel> dial,
      java.util.function.BiFunction<String, ManagedChannel, AgentClient> clientFor) {
    this.clock = clock;
    this.liveness = liveness;
    this.dial = dial;
    this.clientFor = clientFor;
  }

  /**
   * Records a heartbeat; (re)connects when the agent is new or moved to another address. Returns
   * true when the node (re)registers: new to this coordinator, moved, or heard again after it was
   * called down.
   */
  boolean heartbeat(HeartbeatRequest hb) {
    if (dial == null) {
      throw CohortException.precondition("this coordinator has a fixed set of agents");
    }
    if (hb.getNode().isBlank() || hb.getAddress().isBlank()) {
      throw CohortException.invalid("a heartbeat needs a node name and an address");
    }
    boolean[] registered = {false};
    agents.compute(
        hb.getNode(),
        (node, old) -> {
          registered[0] = old == null || !alive(old);
          if (old != null && old.info.getAddress().equals(hb.getAddress())) {
            return new Entry(old.client, old.owned, hb, clock.millis());
          }
          registered[0] = true;
          if (old != null && old.owned != null) {
            old.owned.shutdownNow();
          }
          ManagedChannel ch = dial.apply(hb.getAddress());
          return new Entry(clientFor.apply(node, ch), ch, hb, clock.millis());
        });
    return registered[0];
  }

  /** The agent of a live node; NOT_FOUND for an unknown node, UNAVAILABLE for a dead one. */
  AgentClient agent(String node) {
    Entry e = agents.get(node);
    if (e == null) {
      throw CohortException.notFound(
          "node %s is not known (known nodes: %s)",
          node, nodes().isEmpty() ? "none" : String.join(", ", nodes()));
    }
    if (!alive(e)) {
      throw new CohortException(
          CohortException.Kind.UNAVAILABLE,
          String.format(
              "node %s is down (its agent was last heard %d s ago); see `cohort nodes`",
              node, (clock.millis() - e.lastHeardMillis) / 1000));
    }
    return e.client;
  }

  /** Where a node's agent serves (empty for the embedded, in-process agent). */
  String address(String node) {
    Entry e = agents.get(node);
    return e == null ? "" : e.info.getAddress();
  }

  /** Where a node's overlay endpoint listens (empty: the node has none). */
  String overlayAddress(String node) {
    Entry e = agents.get(node);
    return e == null ? "" : e.info.getOverlayAddress();
  }

  /** The identity of a node's image store, from its heartbeats (empty: not known). */
  String imageStore(String node) {
    Entry e = agents.get(node);
    return e == null ? "" : e.info.getImageStoreId();
  }

  boolean isAlive(String node) {
    Entry e = agents.get(node);
    return e != null && alive(e);
  }

  private boolean alive(Entry e) {
    return liveness == null || clock.millis() - e.lastHeardMillis <= liveness.toMillis();
  }

  /** Every known node, by name. */
  List<String> nodes() {
    return agents.keySet().stream().sorted().toList();
  }

  /** Every known node as the client API shows it (running vhosts filled in by the caller). */
  List<NodeInfo.Builder> describe() {
    List<NodeInfo.Builder> out = new ArrayList<>();
    for (String node : nodes()) {
      Entry e = agents.get(node);
      out.add(
          NodeInfo.newBuilder()
              .setNode(node)
              .setAddress(e.info.getAddress())
              .setAlive(alive(e))
              .setLastHeardMs(liveness == null ? 0 : clock.millis() - e.lastHeardMillis)
              .setKernel(e.info.getKernel())
              .setCriuVersion(e.info.getCriuVersion())
              .setImageStoreFreeBytes(e.info.getImageStoreFreeBytes())
              .setImageStoreId(e.info.getImageStoreId()));
    }
    return out;
  }

  @Override
  public void close() {
    agents
        .values()
        .forEach(
            e -> {
              if (e.owned != null) {
                e.owned.shutdownNow();
              }
            });
  }
}
