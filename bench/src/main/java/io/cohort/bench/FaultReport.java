package io.cohort.bench;

import static io.cohort.bench.Plots.median;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;

/** Part 9 in results.md: the table of phases × faults, and its rows of the targets. */
final class FaultReport {
  private FaultReport() {}

  /** A row of the targets' table. */
  record Target(String target, String measured, double ratio, boolean met) {}

  /** The markdown section of part 9, or "" if the results have none. */
  static String table(JsonObject r) {
    if (!r.has("fault_recovery")) {
      return "";
    }
    JsonObject f = r.getAsJsonObject("fault_recovery");
    List<JsonObject> cells = Bench.rows(f, "cells");
    double target = f.get("target_s").getAsDouble();
    List<String> faults = cells.stream().map(c -> c.get("fault").getAsString()).distinct().toList();
    StringBuilder md = new StringBuilder();
    md.append(
            String.format(
                "\n## 9. Faults inside a checkpoint: seconds from the fault to the job running "
                    + "again (decision lease %d s, target lease + 2 s = %.0f s)\n\n",
                f.get("lease_s").getAsInt(), target))
        .append(
            "A job of two vhosts (n1, n2); each fault is landed while the phase's fault point "
                + "holds the coordinator or both agents. Running again: no task of either vhost "
                + "stopped and the job's output grown; `--stop`: both vhosts ended. A cut node is "
                + "off the network for lease + 2 s: its cells also give when both vhosts were "
                + "unfrozen and how long after the join the job ran (or ended). Measured ")
        .append(f.get("date").getAsString())
        .append(", ")
        .append(f.get("repetitions").getAsInt())
        .append(" run(s) per cell (median, min–max); over the target in bold.\n\n")
        .append("| phase (fault point) | ")
        .append(String.join(" | ", faults))
        .append(" |\n| --- |")
        .append(" --- |".repeat(faults.size()))
        .append("\n");
    List<String> errors = new ArrayList<>();
    for (String phase : cells.stream().map(c -> c.get("phase").getAsString()).distinct().toList()) {
      List<JsonObject> row =
          cells.stream().filter(c -> c.get("phase").getAsString().equals(phase)).toList();
      JsonObject first = row.get(0);
      md.append(
          String.format(
              "| %s (%s%s) |",
              phase,
              first.get("point").getAsString(),
              first.get("stop").getAsBoolean() ? ", `--stop`" : ""));
      for (JsonObject c : row) {
        md.append(" ").append(cell(c, target)).append(" |");
        if (c.has("errors")) {
          for (JsonElement e : c.getAsJsonArray("errors")) {
            errors.add(phase + ", " + c.get("fault").getAsString() + ": " + e.getAsString());
          }
        }
      }
      md.append("\n");
    }
    for (String e : errors) {
      md.append("\n- failed: ").append(e);
    }
    return md.append(errors.isEmpty() ? "" : "\n").toString();
  }

  /**
   * The rows of the targets: the worst cell of the faults that kill something, against lease + 2 s;
   * for the cut node, which cannot run until it joins (lease + 2 s after the cut), the worst time
   * to unfrozen against the same bound, with the worst time to running after the join.
   */
  static List<Target> targets(JsonObject r) {
    if (!r.has("fault_recovery")) {
      return List.of();
    }
    JsonObject f = r.getAsJsonObject("fault_recovery");
    double target = f.get("target_s").getAsDouble();
    String bound =
        String.format("lease + 2 s (%.0f s, lease %d s)", target, f.get("lease_s").getAsInt());
    List<Target> out = new ArrayList<>();
    JsonObject worstKill = null;
    JsonObject worstCut = null;
    double afterJoin = Double.NaN;
    int failed = 0;
    for (JsonObject c : Bench.rows(f, "cells")) {
      failed += c.has("errors") ? c.getAsJsonArray("errors").size() : 0;
      if (c.get("fault").getAsString().equals("node cut")) {
        if (c.has("unfrozen_s") && (worstCut == null || worse(c, worstCut, "unfrozen_s"))) {
          worstCut = c;
        }
        if (c.has("after_join_s") && !(median(c, "after_join_s") <= afterJoin)) {
          afterJoin = median(c, "after_join_s");
        }
      } else if (c.has("recovered_s")
          && (worstKill == null || worse(c, worstKill, "recovered_s"))) {
        worstKill = c;
      }
    }
    String failures = failed == 0 ? "" : String.format("; %d run(s) failed", failed);
    if (worstKill != null) {
      double s = median(worstKill, "recovered_s");
      out.add(
          new Target(
              "a daemon or the client killed inside a checkpoint: the job running again ≤ "
                  + bound
                  + ", worst cell",
              String.format(
                  "%.1f s (%s%s%s)",
                  s,
                  where(worstKill),
                  worstKill.has("unfrozen_s")
                      ? String.format("; unfrozen at %.1f s", median(worstKill, "unfrozen_s"))
                      : "",
                  failures),
              s / target,
              s <= target && failed == 0));
    }
    if (worstCut != null) {
      double s = median(worstCut, "unfrozen_s");
      out.add(
          new Target(
              "a node cut off inside a checkpoint: the job unfrozen ≤ " + bound + ", worst phase",
              String.format(
                  "%.1f s (%s); running again %.1f s after the join at worst",
                  s, where(worstCut), afterJoin),
              s / target,
              s <= target));
    }
    return out;
  }

  private static boolean worse(JsonObject a, JsonObject b, String field) {
    return median(a, field) > median(b, field);
  }

  private static String where(JsonObject c) {
    return c.get("phase").getAsString() + ", " + c.get("fault").getAsString();
  }

  /**
   * "median (min–max)" of a cell, bold over the target; with when the vhosts were unfrozen, and for
   * a cut node how long after its join the job ran.
   */
  private static String cell(JsonObject c, double target) {
    if (!c.has("recovered_s")) {
      return "failed";
    }
    String s = seconds(c.getAsJsonObject("recovered_s"));
    if (median(c, "recovered_s") > target) {
      s = "**" + s + "**";
    }
    List<String> more = new ArrayList<>();
    // When the vhosts were unfrozen: for a cut node, and wherever the job ran only well after it.
    if (c.has("unfrozen_s")
        && (c.has("after_join_s") || median(c, "recovered_s") - median(c, "unfrozen_s") >= 0.5)) {
      more.add("unfrozen " + seconds(c.getAsJsonObject("unfrozen_s")));
    }
    if (c.has("after_join_s")) {
      more.add(
          median(c, "after_join_s") < 0 // a --stop vhost ends on its own past the lease
              ? "before the join"
              : seconds(c.getAsJsonObject("after_join_s")) + " after the join");
    }
    // A killed daemon's restart is part of the fault: over the target, say how long after it.
    if (c.has("after_restart_s") && median(c, "recovered_s") > target) {
      more.add(seconds(c.getAsJsonObject("after_restart_s")) + " after the restart");
    }
    if (c.has("errors")) {
      more.add(c.getAsJsonArray("errors").size() + " failed");
    }
    return more.isEmpty() ? s : s + " (" + String.join("; ", more) + ")";
  }

  private static String seconds(JsonObject stats) {
    String m = String.format("%.1f", stats.get("median").getAsDouble());
    return stats.get("n").getAsInt() == 1
        ? m
        : String.format(
            "%s (%.1f–%.1f)", m, stats.get("min").getAsDouble(), stats.get("max").getAsDouble());
  }
}
