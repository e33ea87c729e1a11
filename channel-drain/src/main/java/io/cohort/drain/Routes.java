package io.cohort.drain;

import java.util.Collection;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which node hosts each vhost address. Thread-safe and updatable at any time (for example when a
 * restart places a job's vhosts on other nodes); the overlay reads it for every packet it sends.
 * One instance may be shared by several overlays (tests do).
 */
public final class Routes {

  private final ConcurrentHashMap<Integer, String> nodeByAddress = new ConcurrentHashMap<>();

  /** Routes {@code address} to {@code node} (replacing any previous route). */
  public void put(int address, String node) {
    nodeByAddress.put(address, Objects.requireNonNull(node, "node"));
  }

  /** Removes the route of {@code address}, if any. */
  public void remove(int address) {
    nodeByAddress.remove(address);
  }

  /**
   * Replaces every route whose address is in {@code routes}; others stay. Not atomic as a whole.
   */
  public void putAll(Map<Integer, String> routes) {
    routes.forEach(this::put);
  }

  /** The node hosting {@code address}, or null if there is no route. */
  public String nodeOf(int address) {
    return nodeByAddress.get(address);
  }

  /** The nodes hosting any of {@code addresses} (unrouted ones are skipped), sorted. */
  public Set<String> nodesOf(Collection<Integer> addresses) {
    Set<String> nodes = new TreeSet<>();
    for (int address : addresses) {
      String node = nodeByAddress.get(address);
      if (node != null) {
        nodes.add(node);
      }
    }
    return nodes;
  }

  /** A copy of all routes. */
  public Map<Integer, String> snapshot() {
    return Map.copyOf(nodeByAddress);
  }
}
