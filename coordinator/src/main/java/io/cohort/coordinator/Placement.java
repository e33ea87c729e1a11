package io.cohort.coordinator;

import io.cohort.common.CohortException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Where the vhosts of a job go: the node of each vhost, by vhost index, and the nodes named but
 * left without a vhost. The one place for the rule that `--nodes` follows (run and restart alike,
 * mirrored in the CLI's --help and docs/user-guide.md):
 *
 * <ul>
 *   <li>Names all different: a <b>set</b>. The K vhosts are spread over its N nodes as evenly as
 *       possible: every node gets K/N of them, and the K mod N left over go one each to the nodes
 *       with the fewest running vhosts (ties: in the order listed). With more nodes than vhosts,
 *       the K least busy nodes get one each and the others are left unused. The vhosts fill the
 *       chosen nodes in the order listed, in runs (vhost 0 on the first), so neighbouring ranks
 *       share a node.
 *   <li>A name repeated: a vhost-by-vhost <b>mapping</b>. Entry i is the node of vhost i, so the
 *       list must have exactly K entries.
 *   <li>K names all different read both ways give the same placement (vhost i on the i-th node
 *       named), so a list that is both a set and a mapping is never ambiguous.
 * </ul>
 *
 * Every node named must be known and up, even one that ends up unused: a typo or a down node is
 * refused before anything changes, not silently skipped.
 */
record Placement(List<String> nodes, List<String> unused) {

  /**
   * The vhosts of a job on the nodes named ({@code vhosts} 0: one per entry, the list read as
   * given). {@code running} counts the running vhosts per node (absent: none); {@code requireUp}
   * throws NOT_FOUND for an unknown node and UNAVAILABLE for a down one.
   */
  static Placement onNodes(
      List<String> named, int vhosts, Map<String, Integer> running, Consumer<String> requireUp) {
    if (named.isEmpty()) {
      throw CohortException.invalid(
          "no node named: give --nodes NODE[,NODE...] (see `cohort "
              + "nodes`), or leave --nodes out to let Cohort choose");
    }
    for (String n : named) {
      if (n.isBlank()) {
        throw CohortException.invalid("--nodes %s has an empty node name", String.join(",", named));
      }
    }
    int k = vhosts > 0 ? vhosts : named.size();
    List<String> distinct = named.stream().distinct().toList();
    boolean mapping = distinct.size() < named.size();
    if (mapping && named.size() != k) {
      throw CohortException.invalid(
          "--nodes %s names a node twice, so it is read as the node "
              + "of each vhost in turn and needs one entry per vhost: %d vhost(s), %d entries. To "
              + "spread the vhosts over nodes instead, name each node once (e.g. --nodes %s)",
          String.join(",", named), k, named.size(), String.join(",", distinct));
    }
    distinct.forEach(requireUp); // before anything changes
    if (mapping) {
      return new Placement(List.copyOf(named), List.of());
    }
    return spread(distinct, k, running);
  }

  /**
   * With no node named: every vhost on the live node with the fewest running vhosts (ties: by
   * name). One node, so the job needs no overlay between nodes.
   */
  static Placement onLeastBusy(List<String> live, int vhosts, Map<String, Integer> running) {
    String node =
        live.stream()
            .min(
                Comparator.comparing((String n) -> running.getOrDefault(n, 0))
                    .thenComparing(n -> n))
            .orElseThrow(
                () ->
                    new CohortException(
                        CohortException.Kind.UNAVAILABLE,
                        "no node is up to run the job (see `cohort nodes`)"));
    return new Placement(Collections.nCopies(Math.max(1, vhosts), node), List.of());
  }

  private static Placement spread(List<String> set, int k, Map<String, Integer> running) {
    int n = set.size();
    // The least busy nodes (stable: ties keep the listed order) take the vhosts left over.
    List<String> byLoad = new ArrayList<>(set);
    byLoad.sort(Comparator.comparing((String s) -> running.getOrDefault(s, 0)));
    java.util.Set<String> extra = new HashSet<>(byLoad.subList(0, k % n));
    List<String> nodes = new ArrayList<>(k);
    List<String> unused = new ArrayList<>();
    for (String s : set) {
      int count = k / n + (extra.contains(s) ? 1 : 0);
      if (count == 0) {
        unused.add(s);
      }
      nodes.addAll(Collections.nCopies(count, s));
    }
    return new Placement(List.copyOf(nodes), List.copyOf(unused));
  }
}
