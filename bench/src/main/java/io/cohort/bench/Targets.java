package io.cohort.bench;

import static io.cohort.bench.Plots.median;
import static io.cohort.bench.Plots.min;

import com.google.gson.JsonObject;
import java.util.List;

/** The targets of the benchmarks, each with what a run measured, its ratio and whether met. */
final class Targets {
  private final JsonObject r;
  private final StringBuilder md = new StringBuilder();

  private Targets(JsonObject results) {
    this.r = results;
  }

  /** The markdown table of the targets for the results {@code r}. */
  static String table(JsonObject r) {
    return new Targets(r).table();
  }

  private String table() {
    md.append("\n## Targets\n\n| target | measured | ratio | met |\n| --- | --- | --- | --- |\n");
    for (JsonObject c : Bench.rows(r, "checkpoint_vs_memory")) {
      double got = median(c, "cohort_checkpoint_ms");
      double bare = median(c, "bare_criu_dump_ms");
      double limit = 1.25 * bare + 100;
      row(
          String.format(
              "checkpoint ≤ 1.25 × bare CRIU + 100 ms (%d MB)", c.get("memory_mb").getAsInt()),
          String.format("%.0f ms vs bare %.0f ms (limit %.0f)", got, bare, limit),
          got / bare,
          got <= limit);
    }
    List<JsonObject> big = Bench.rows(r, "checkpoint_vs_memory");
    if (!big.isEmpty()) {
      JsonObject c = big.get(big.size() - 1);
      double image = c.get("image_write_rate_mb_s").getAsDouble();
      double disk = c.get("disk_rate_mb_s").getAsDouble();
      row(
          String.format(
              "image write rate ≥ 70 %% of disk fsync'd rate (%d MB)",
              c.get("memory_mb").getAsInt()),
          String.format("%.0f MB/s vs %.0f MB/s", image, disk),
          image / disk,
          image >= 0.7 * disk);
    }
    for (JsonObject b : Bench.rows(r, "coordinated_checkpoint")) {
      int k = b.get("vhosts").getAsInt();
      if (k == 4) {
        double o = median(b, "barrier_overhead_ms");
        row("barrier overhead ≤ 50 ms at 4 vhosts", String.format("%.0f ms", o), o / 50, o <= 50);
      }
      if (b.has("cut_added_frozen_ms")) {
        double added = b.get("cut_added_frozen_ms").getAsDouble();
        row(
            String.format("the cut adds ≤ 20 ms to the freeze at %d nodes vs one node", k),
            String.format(
                "%+.0f ms (%.0f vs %.0f)",
                added, median(b, "frozen_ms"), median(b.getAsJsonObject("one_node"), "frozen_ms")),
            Math.max(added, 0) / 20,
            added <= 20);
      }
    }
    for (JsonObject p : Bench.rows(r, "overlay_pingpong")) {
      long bytes = p.get("bytes").getAsLong();
      if (!p.has("plain_cross_node_mb_s")) {
        continue; // results from before the baseline
      }
      if (bytes == 1 << 20) {
        double ratio = median(p, "cross_node_mb_s") / median(p, "plain_cross_node_mb_s");
        row(
            "two nodes: 1 MB throughput ≥ 90 % of plain mpirun across them",
            String.format(
                "%.0f vs %.0f MB/s",
                median(p, "cross_node_mb_s"), median(p, "plain_cross_node_mb_s")),
            ratio,
            ratio >= 0.9);
      }
      if (bytes == 8) {
        double added = median(p, "cross_node_rtt_us") - median(p, "plain_cross_node_rtt_us");
        row(
            "two nodes: 8 B round trip ≤ plain mpirun across them + 10 µs",
            String.format(
                "%+.1f µs (%.1f vs %.1f)",
                added, median(p, "cross_node_rtt_us"), median(p, "plain_cross_node_rtt_us")),
            Math.max(added, 0) / 10,
            added <= 10);
      }
    }
    if (r.has("steady_state")) {
      JsonObject s = r.getAsJsonObject("steady_state");
      double o = s.get("one_node_overhead").getAsDouble();
      row(
          "steady-state overhead ≤ 3 % on one node",
          String.format(
              "%+.1f %% (%.2f vs %.2f s, " + "fastest runs)",
              o * 100, min(s, "one_node_cohort_s"), min(s, "one_node_plain_s")),
          Math.max(o, 0) / 0.03,
          o <= 0.03);
      if (s.has("two_nodes_overhead")) {
        double t = s.get("two_nodes_overhead").getAsDouble();
        row(
            "steady-state overhead ≤ 3 % on two nodes (vs plain mpirun across them)",
            String.format(
                "%+.1f %% (%.2f vs %.2f s, fastest runs)",
                t * 100, min(s, "two_vhosts_cohort_s"), min(s, "two_nodes_plain_s")),
            Math.max(t, 0) / 0.03,
            t <= 0.03);
      }
    }
    for (JsonObject f : Bench.rows(r, "tracked_files")) {
      if (f.get("mode").getAsString().equals("append")) {
        double ratio = f.get("checkpoint_vs_none").getAsDouble();
        JsonObject none =
            Bench.rows(r, "tracked_files").stream()
                .filter(n -> n.get("mode").getAsString().equals("none"))
                .findFirst()
                .orElseThrow();
        row(
            "a 1 GB append-only file adds ≤ 5 % to the checkpoint",
            String.format(
                "%.0f vs %.0f ms without (%+.1f %%)",
                median(f, "checkpoint_ms"), median(none, "checkpoint_ms"), (ratio - 1) * 100),
            ratio,
            ratio <= 1.05);
      }
    }
    for (FaultReport.Target t : FaultReport.targets(r)) {
      row(t.target(), t.measured(), t.ratio(), t.met());
    }
    for (String k : List.of("footprint_idle", "footprint_checkpoint_peak")) {
      if (r.has(k)) {
        JsonObject f = r.getAsJsonObject(k);
        for (String who : List.of("coordinator", "agent")) {
          double mib = f.get(who + "_mib").getAsDouble();
          row(
              who
                  + " ≤ 256 MB resident ("
                  + (k.endsWith("idle") ? "idle" : "checkpoint peak")
                  + ")",
              String.format("%.0f MiB", mib),
              mib / 256,
              mib <= 256);
        }
      }
    }
    return md.toString();
  }

  private void row(String target, String measured, double ratio, boolean met) {
    md.append("| ")
        .append(target)
        .append(" | ")
        .append(measured)
        .append(" | ")
        .append(String.format("%.2f", ratio))
        .append(" | ")
        .append(met ? "yes" : "**no**")
        .append(" |\n");
  }
}
