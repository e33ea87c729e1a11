package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parts 4 and 5: MPI ping-pong between two vhosts on different nodes (the agents' data path: VXLAN
 * by default, the user-space overlay with {@code --data-path overlay}) against the same two vhosts
 * on one node and against plain mpirun across the same two nodes without Cohort; and the run time
 * of a fixed amount of communication under Cohort against plain mpirun.
 */
final class NetworkCost {
  private static final Pattern LINE =
      Pattern.compile("size (\\d+) rtt_us ([\\d.]+) mbps ([\\d.]+)");
  private static final Pattern ELAPSED = Pattern.compile("elapsed ([\\d.]+)");
  private final Cli cli;
  private final int reps;
  private final Path pingpong;

  NetworkCost(Cli cli, int reps, Path pingpong) {
    this.cli = cli;
    this.reps = reps;
    this.pingpong = pingpong;
  }

  /**
   * Part 4: one row per message size (median of the repetitions): the two vhosts on two nodes
   * (through the agents' data path), on one node (shared memory), plain mpirun forced onto TCP over
   * loopback — what TCP between two processes costs on this machine, with no overlay — and the
   * baseline: plain mpirun spanning the same two nodes ({@link PlainAcrossNodes}).
   */
  JsonArray overlay() {
    System.out.println("bench: ping-pong across nodes, n1+n2 against n1+n1 and plain mpirun");
    String[] sweep = {pingpong.toString(), "4194304", "0.3"};
    // On the user-space path the agents are long-running daemons: let their JIT compile the
    // forwarding path first, as it will have been on any node that has carried traffic.
    job("n1,n2", concat(List.of("mpirun", "-np", "2"), sweep));
    Map<Long, Map<String, Stats>> bySize = new TreeMap<>();
    List<String> plainAcross = PlainAcrossNodes.mpirun(cli);
    for (int i = 0; i < reps; i++) {
      collect(bySize, "plain_cross_node", cli.must(concat(plainAcross, sweep)).out());
      collect(bySize, "cross_node", job("n1,n2", concat(List.of("mpirun", "-np", "2"), sweep)));
      collect(bySize, "same_node", job("n1,n1", concat(List.of("mpirun", "-np", "2"), sweep)));
      collect(
          bySize,
          "plain_tcp",
          cli.must(
                  concat(
                      List.of(
                          "mpirun", "--allow-run-as-root", "-np", "2", "--mca", "btl", "self,tcp"),
                      sweep))
              .out());
    }
    JsonArray out = new JsonArray();
    bySize.forEach(
        (bytes, m) -> {
          JsonObject r = new JsonObject();
          r.addProperty("bytes", bytes);
          for (String k : List.of("cross_node", "same_node", "plain_tcp", "plain_cross_node")) {
            Stats rtt = m.get(k + "_rtt_us");
            Stats mbs = m.get(k + "_mb_s");
            if (rtt == null || mbs == null) {
              throw new IllegalStateException("no " + k + " figure for " + bytes + " bytes");
            }
            r.add(k + "_rtt_us", rtt.json());
            r.add(k + "_mb_s", mbs.json());
          }
          out.add(r);
        });
    if (out.isEmpty()) {
      throw new IllegalStateException("ping-pong printed nothing");
    }
    return out;
  }

  private static void collect(Map<Long, Map<String, Stats>> bySize, String kind, String output) {
    Matcher m = LINE.matcher(output);
    boolean any = false;
    while (m.find()) {
      Map<String, Stats> row =
          bySize.computeIfAbsent(Long.parseLong(m.group(1)), b -> new HashMap<>());
      row.computeIfAbsent(kind + "_rtt_us", k -> new Stats()).add(Double.parseDouble(m.group(2)));
      row.computeIfAbsent(kind + "_mb_s", k -> new Stats()).add(Double.parseDouble(m.group(3)));
      any = true;
    }
    if (!any) {
      throw new IllegalStateException("ping-pong (" + kind + ") printed nothing:\n" + output);
    }
  }

  private static String[] concat(List<String> head, String... tail) {
    List<String> all = new ArrayList<>(head);
    all.addAll(List.of(tail));
    return all.toArray(String[]::new);
  }

  /**
   * Part 5: the same fixed ping-pong (64 KiB messages, sized to take about 5 s with plain mpirun)
   * with plain mpirun and under Cohort, on one node (one vhost; shared memory) and over two vhosts
   * on two nodes (TCP between nodes; plain mpirun forced onto TCP over loopback, and sized for
   * that).
   */
  JsonObject steadyState() {
    System.out.println("bench: steady-state overhead");
    String bytes = "65536";
    List<String> shm = List.of("mpirun", "--allow-run-as-root", "-np", "2");
    List<String> tcp =
        List.of("mpirun", "--allow-run-as-root", "-np", "2", "--mca", "btl", "self,tcp");
    String trips = calibrate(shm, bytes, 5);
    // Sized like the one-node runs: on the kernel path two nodes cost what plain TCP costs.
    String tcpTrips = calibrate(tcp, bytes, 5);
    List<String> plainShm = new ArrayList<>(shm);
    plainShm.addAll(List.of(pingpong.toString(), "fixed", trips, bytes));
    List<String> plainTcp = new ArrayList<>(tcp);
    plainTcp.addAll(List.of(pingpong.toString(), "fixed", tcpTrips, bytes));
    List<String> plainAcross = PlainAcrossNodes.mpirun(cli);
    plainAcross.addAll(List.of(pingpong.toString(), "fixed", tcpTrips, bytes));
    Stats plainNodes = new Stats();
    Stats plain1 = new Stats();
    Stats cohort1 = new Stats();
    Stats plain2 = new Stats();
    Stats cohort2 = new Stats();
    // Warm the agents' forwarding path (as on any node that has carried traffic).
    job("n1,n2", "mpirun", "-np", "2", pingpong.toString(), "fixed", tcpTrips, bytes);
    // Runs of a few seconds on a shared 2-core machine vary by tens of percent: at least five
    // of each, interleaved, and the median.
    for (int i = 0; i < Math.max(reps, 5); i++) {
      plain1.add(elapsed(cli.must(plainShm.toArray(String[]::new)).out()));
      cohort1.add(
          elapsed(job("n1", "mpirun", "-np", "2", pingpong.toString(), "fixed", trips, bytes)));
      plain2.add(elapsed(cli.must(plainTcp.toArray(String[]::new)).out()));
      plainNodes.add(elapsed(cli.must(plainAcross.toArray(String[]::new)).out()));
      cohort2.add(
          elapsed(
              job("n1,n2", "mpirun", "-np", "2", pingpong.toString(), "fixed", tcpTrips, bytes)));
    }
    JsonObject r = new JsonObject();
    r.addProperty("round_trips", Long.parseLong(trips));
    r.addProperty("two_vhosts_round_trips", Long.parseLong(tcpTrips));
    r.addProperty("message_bytes", Long.parseLong(bytes));
    r.add("one_node_plain_s", plain1.json());
    r.add("one_node_cohort_s", cohort1.json());
    r.add("two_vhosts_plain_tcp_s", plain2.json());
    r.add("two_vhosts_cohort_s", cohort2.json());
    r.add("two_nodes_plain_s", plainNodes.json());
    r.addProperty("two_nodes_overhead", cohort2.min() / plainNodes.min() - 1);
    r.addProperty("two_nodes_overhead_of_medians", cohort2.median() / plainNodes.median() - 1);
    // This machine's noise only ever adds time, and in bursts (runs of the same program take
    // 5 s or 10-13 s, plain or not): the fastest of the interleaved runs is the estimate of
    // what each costs; the medians are reported beside it.
    r.addProperty("one_node_overhead", cohort1.min() / plain1.min() - 1);
    r.addProperty("two_vhosts_overhead", cohort2.min() / plain2.min() - 1);
    r.addProperty("one_node_overhead_of_medians", cohort1.median() / plain1.median() - 1);
    r.addProperty("two_vhosts_overhead_of_medians", cohort2.median() / plain2.median() - 1);
    System.out.printf(
        "  one node: plain %s s, cohort %s s; two vhosts: plain (tcp) %s s, " + "cohort %s s%n",
        plain1.cell(), cohort1.cell(), plain2.cell(), cohort2.cell());
    return r;
  }

  /** Round trips that take about {@code seconds} with {@code mpirun} (plain, on this machine). */
  private String calibrate(List<String> mpirun, String bytes, double seconds) {
    List<String> cmd = new ArrayList<>(mpirun);
    cmd.addAll(List.of(pingpong.toString(), "fixed", "2000", bytes));
    double s = elapsed(cli.must(cmd.toArray(String[]::new)).out());
    return Long.toString(Math.max(2000, Math.round(2000 * seconds / Math.max(s, 1e-3))));
  }

  /** Runs a job on {@code nodes} (one slot per vhost, two for a single vhost) to its end. */
  private String job(String nodes, String... command) {
    return cli.runToEnd(nodes, nodes.contains(",") ? 1 : 2, command);
  }

  private static double elapsed(String out) {
    Matcher m = ELAPSED.matcher(out);
    if (!m.find()) {
      throw new IllegalStateException("no elapsed time in:\n" + out);
    }
    return Double.parseDouble(m.group(1));
  }
}
