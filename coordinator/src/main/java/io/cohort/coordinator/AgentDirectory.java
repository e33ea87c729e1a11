package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.NodeRecord;
import io.cohort.proto.v1.NodeState;
import io.cohort.proto.v1.VhostPlacement;
import io.grpc.ManagedChannel;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

  /** Nodes declared dead, with their record ({@link NodeFencing}); absent: not declared. */
  private final Map<String, NodeRecord> dead = new ConcurrentHashMap<>();

  /** Nodes declared dead and heard again, whose stale vhosts are being ended. */
  private final Set<String> rejoining = ConcurrentHashMap.newKeySet();

  /**
   * Nodes the catalog names (jobs' vhosts, images) that may not have registered yet: shown as down
   * and refused as UNAVAILABLE until they do, not as unknown.
   */
  private final Set<String> expected = ConcurrentHashMap.newKeySet();

  private final long startMillis;

  private final Clock clock;
  private final Duration liveness;
  private final Function<String, ManagedChannel> dial;
  private final java.util.function.BiFunction<String, ManagedChannel, AgentClient> clientFor;

  /** A fixed set of agents that are always considered alive (the embedded mode). */
  AgentDirectory(Map<String, AgentClient> fixed) {
    this.clock = Clock.systemUTC();
    this.startMillis = clock.millis();
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
    this.startMillis = clock.millis();
    this.liveness = liveness;
    this.dial = dial;
    this.clientFor = clientFor;
  }

  /** Nodes the catalog names: known to be part of the cluster, registered or not. */
  void expect(java.util.Collection<String> nodes) {
    expected.addAll(nodes);
  }

  /** Whether agents are learnt from heartbeats (the daemon), not fixed (the embedded mode). */
  boolean learnsFromHeartbeats() {
    return dial != null;
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
          AgentClient client = clientFor.apply(node, ch);
          // A call to a node unheard for twice the liveness ends (cut off, not yet called down).
          client.heardWhile(() -> silentMillis(node) <= 2 * liveness.toMillis());
          return new Entry(client, ch, hb, clock.millis());
        });
    return registered[0];
  }

  /**
   * The agent of a node that is up and may take work; NOT_FOUND for an unknown node, UNAVAILABLE
   * for one that is down, declared dead or rejoining (the message says which and what to do).
   */
  AgentClient agent(String node) {
    NodeRecord r = dead.get(node);
    Entry e = r == null ? known(node) : null;
    if (r != null) {
      throw new CohortException(
          CohortException.Kind.UNAVAILABLE,
          rejoining.contains(node)
              ? String.format(
                  "node %s was declared dead and is back: its stale vhosts are being ended "
                      + "before it takes work again; retry in a moment",
                  node)
              : String.format(
                  "node %s was declared dead (%s); it takes work again once its agent is back",
                  node, r.getReason()));
    }
    if (!alive(e)) {
      throw new CohortException(
          CohortException.Kind.UNAVAILABLE,
          String.format(
              "node %s is down (its agent was last heard %d s ago). If it will not come back, "
                  + "declare it dead with `cohort nodes fence %s` and retry; see `cohort nodes`",
              node, (clock.millis() - e.lastHeardMillis) / 1000, node));
    }
    return e.client;
  }

  /**
   * The agent of a node that is heard, even one declared dead and rejoining: for ending its stale
   * vhosts and removing orphan images, and nothing else.
   */
  AgentClient agentForCleanup(String node) {
    Entry e = agents.get(node);
    if (e == null || !alive(e)) {
      throw new CohortException(
          CohortException.Kind.UNAVAILABLE, String.format("node %s is down", node));
    }
    return e.client;
  }

  /**
   * Ends a vhost where its node is heard (even a node rejoining); false when the node cannot be
   * reached, so the vhost is left to end when it is back. Another failure is thrown.
   */
  boolean endVhost(VhostPlacement v) {
    try {
      agentForCleanup(v.getNode()).kill(v.getVhostId());
      return true;
    } catch (CohortException e) {
      if (e.kind() != CohortException.Kind.UNAVAILABLE) {
        throw e;
      }
      return false;
    }
  }

  private Entry known(String node) {
    Entry e = agents.get(node);
    if (e == null && expected.contains(node)) {
      throw new CohortException(
          CohortException.Kind.UNAVAILABLE,
          String.format(
              "node %s has not registered with this coordinator since it started %d s ago (its "
                  + "agent is down or cannot reach the coordinator); what runs there is not known "
                  + "until it does. See `cohort nodes`",
              node, (clock.millis() - startMillis) / 1000));
    }
    if (e == null) {
      throw CohortException.notFound(
          "node %s is not known (known nodes: %s)",
          node, nodes().isEmpty() ? "none" : String.join(", ", nodes()));
    }
    return e;
  }

  /** Marks a node declared dead (from the catalog at start, or now). */
  void declareDead(NodeRecord r) {
    dead.put(r.getNode(), r);
  }

  /** A node declared dead is heard again: it rejoins (true the first time it is heard). */
  boolean startRejoin(String node) {
    return dead.containsKey(node) && rejoining.add(node);
  }

  /** A rejoining node could not end its stale vhosts: the next heartbeat tries again. */
  void rejoinFailed(String node) {
    rejoining.remove(node);
  }

  /** A rejoining node's stale vhosts are ended: it takes work again. */
  void rejoined(String node) {
    dead.remove(node);
    rejoining.remove(node);
  }

  boolean isDead(String node) {
    return dead.containsKey(node);
  }

  /**
   * Milliseconds since a node was last heard (0 for the embedded agent; for a node the catalog
   * names that has not registered, since this coordinator started; -1: unknown).
   */
  long silentMillis(String node) {
    Entry e = agents.get(node);
    if (e == null) {
      return expected.contains(node) ? clock.millis() - startMillis : -1;
    }
    return liveness == null ? 0 : clock.millis() - e.lastHeardMillis;
  }

  /** Of {@code nodes}, the one unheard the longest if that is longer than {@code silence}. */
  java.util.Optional<String> unheard(java.util.Collection<String> nodes, Duration silence) {
    return nodes.stream()
        .distinct()
        .filter(n -> silentMillis(n) > silence.toMillis())
        .max(java.util.Comparator.comparingLong(this::silentMillis));
  }

  /** Why a barrier aborts when {@code node} was unheard for {@code millis} during {@code phase}. */
  static CohortException unheardDuring(String node, long millis, Object phase) {
    return new CohortException(
        CohortException.Kind.UNAVAILABLE,
        String.format(
            "the agent of node %s has not been heard for %.1f s during %s (its node is down or"
                + " cut off, or the agent stopped)",
            node, millis / 1e3, phase));
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

  /** Heard recently (whether or not it was declared dead). */
  boolean isAlive(String node) {
    Entry e = agents.get(node);
    return e != null && alive(e);
  }

  /** Up and taking work: heard recently and not declared dead. */
  boolean isUsable(String node) {
    return isAlive(node) && !dead.containsKey(node);
  }

  private boolean alive(Entry e) {
    return liveness == null || clock.millis() - e.lastHeardMillis <= liveness.toMillis();
  }

  /** Every node heard since this coordinator started, by name. */
  List<String> nodes() {
    return agents.keySet().stream().sorted().toList();
  }

  /** Every node heard, declared dead, or named by the catalog, by name. */
  List<String> known() {
    java.util.TreeSet<String> names = new java.util.TreeSet<>(agents.keySet());
    names.addAll(dead.keySet());
    names.addAll(expected);
    return List.copyOf(names);
  }

  /**
   * Every known node as the client API shows it (running vhosts filled in by the caller), including
   * nodes declared dead or named by the catalog that this coordinator has not heard since it
   * started (down).
   */
  List<NodeInfo.Builder> describe() {
    List<NodeInfo.Builder> out = new ArrayList<>();
    for (String node : known()) {
      Entry e = agents.get(node);
      NodeRecord r = dead.get(node);
      boolean alive = e != null && alive(e);
      NodeInfo.Builder b =
          NodeInfo.newBuilder()
              .setNode(node)
              .setAlive(alive)
              .setState(
                  r == null
                      ? (alive ? NodeState.NODE_STATE_UP : NodeState.NODE_STATE_DOWN)
                      : (rejoining.contains(node)
                          ? NodeState.NODE_STATE_REJOINING
                          : NodeState.NODE_STATE_DEAD));
      if (e != null) {
        b.setAddress(e.info.getAddress())
            .setLastHeardMs(liveness == null ? 0 : clock.millis() - e.lastHeardMillis)
            .setKernel(e.info.getKernel())
            .setCriuVersion(e.info.getCriuVersion())
            .setImageStoreFreeBytes(e.info.getImageStoreFreeBytes())
            .setImageStoreId(e.info.getImageStoreId())
            .setOverlayPacketsIn(e.info.getOverlayPacketsIn())
            .setOverlayPacketsOut(e.info.getOverlayPacketsOut());
      }
      if (r != null) {
        b.setDeadSinceUnixMs(r.getDeadSinceUnixMs()).setDeadReason(r.getReason());
      }
      out.add(b);
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
