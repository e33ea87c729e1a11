package io.cohort.bench;

import com.google.gson.JsonObject;
import java.util.List;

/** Part 10 in results.md: each measurement before and after authentication, and the target. */
final class SecurityReport {
  private SecurityReport() {}

  private static final List<String[]> ROWS =
      List.of(
          new String[] {"checkpoint_1_vhost_ms", "checkpoint total, 1 vhost"},
          new String[] {"checkpoint_4_vhosts_ms", "checkpoint total, 4 vhosts (4 nodes)"},
          new String[] {"ps_local_ms", "`cohort ps` on the coordinator's machine (whole process)"},
          new String[] {"ps_tcp_ms", "`cohort ps` through the TCP port (whole process)"});

  /** The markdown section of part 10, or "" if the results have none. */
  static String table(JsonObject r) {
    if (!r.has("security")) {
      return "";
    }
    JsonObject s = r.getAsJsonObject("security");
    StringBuilder md = new StringBuilder();
    md.append(
            "\n## 10. Authentication: the same measurements before and after, in one run\n\n"
                + "Before: plaintext gRPC, every caller root (commit ")
        .append(s.get("baseline_commit").getAsString())
        .append("). After: this build (commit ")
        .append(s.get("commit").getAsString())
        .append(
            "): mutual TLS between the daemons, the client socket's peer credentials on the "
                + "coordinator's machine, TLS and a MUNGE credential through its TCP port, "
                + "checkpoint records and manifests signed. "
                + (s.has("design")
                    ? "Design: " + s.get("design").getAsString() + ". "
                    : "The builds take turns, a cluster each. ")
                + "Measured ")
        .append(s.get("date").getAsString())
        .append(
            "; median (min–max), ms. Target: at most 5 % or 10 ms added, whichever is "
                + "larger.\n\n")
        .append(
            "| measurement | before | after | added | met |\n| --- | --- | --- | --- | --- |\n");
    for (String[] row : ROWS) {
      md.append(row(s, row[0], row[0], row[1], true));
    }
    // A user's job after is held against root's before (every job was root's then): since run
    // 5, root's job that took turns with it; in older results, all of root's.
    String paired = s.getAsJsonObject("before").has("user_checkpoint_1_vhost_ms") ? "user_" : "";
    if (s.getAsJsonObject("after").has("user_checkpoint_1_vhost_ms")) {
      md.append(
          row(
              s,
              paired + "checkpoint_1_vhost_ms",
              "user_checkpoint_1_vhost_ms",
              "checkpoint total, 1 vhost, a user's job (before: root's)",
              true));
      md.append(
          row(
              s,
              paired + "checkpoint_4_vhosts_ms",
              "user_checkpoint_4_vhosts_ms",
              "checkpoint total, 4 vhosts, a user's job (before: root's)",
              true));
    }
    if (s.getAsJsonObject("before").has("criu_1_vhost_ms")) {
      md.append(
          "\nCRIU's own time within those checkpoints (authentication does not change how CRIU "
              + "is run for a root job; its spread is most of the totals'):\n\n"
              + "| measurement | before | after | added | |\n| --- | --- | --- | --- | --- |\n");
      md.append(row(s, "criu_1_vhost_ms", "criu_1_vhost_ms", "CRIU, 1 vhost", false));
      md.append(row(s, "criu_4_vhosts_ms", "criu_4_vhosts_ms", "CRIU, 4 vhosts", false));
      if (s.getAsJsonObject("after").has("user_criu_1_vhost_ms")) {
        md.append(
            row(
                s,
                paired + "criu_1_vhost_ms",
                "user_criu_1_vhost_ms",
                "CRIU, 1 vhost, a user's",
                false));
        md.append(
            row(
                s,
                paired + "criu_4_vhosts_ms",
                "user_criu_4_vhosts_ms",
                "CRIU, 4 vhosts, a user's",
                false));
      }
    }
    return md.toString();
  }

  private static String row(
      JsonObject s, String beforeKey, String afterKey, String label, boolean target) {
    JsonObject before = s.getAsJsonObject("before").getAsJsonObject(beforeKey);
    JsonObject after = s.getAsJsonObject("after").getAsJsonObject(afterKey);
    double b = before.get("median").getAsDouble();
    double a = after.get("median").getAsDouble();
    // Rounded before formatting, so that a difference of less than half a unit reads 0, not -0.
    double ms = Math.round(a - b) + 0.0;
    double percent = Math.round(1000 * (a - b) / b) / 10.0 + 0.0;
    return String.format(
        "| %s | %s | %s | %+.0f ms (%+.1f %%) | %s |\n",
        label, cell(before), cell(after), ms, percent, !target ? "" : met(b, a) ? "yes" : "**no**");
  }

  /** Within the target: at most 5 % or 10 ms more, whichever is larger. */
  static boolean met(double before, double after) {
    return after - before <= Math.max(0.05 * before, 10);
  }

  private static String cell(JsonObject stats) {
    return String.format(
        "%.0f (%.0f–%.0f)",
        stats.get("median").getAsDouble(),
        stats.get("min").getAsDouble(),
        stats.get("max").getAsDouble());
  }
}
