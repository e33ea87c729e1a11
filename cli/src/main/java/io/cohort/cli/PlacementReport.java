package io.cohort.cli;

import io.cohort.proto.v1.ImageSource;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.RestartResponse;
import io.cohort.proto.v1.VhostPlacement;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What `run` and `restart` tell the user of where the job's vhosts went, of the nodes named with
 * --nodes that got none, and (restart) of where each image came from (the coordinator's placement
 * rule is in its Placement).
 */
final class PlacementReport {
  private PlacementReport() {}

  /** "vhost 7-0 on n1", or "vhosts 7-0 on n3, 7-1 on n3". */
  static String where(JobInfo job) {
    StringBuilder b = new StringBuilder(job.getVhostsCount() == 1 ? "vhost " : "vhosts ");
    for (VhostPlacement v : job.getVhostsList()) {
      b.append(v.getVhostId()).append(" on ").append(v.getNode()).append(", ");
    }
    return b.substring(0, b.length() - 2);
  }

  /** The nodes named that got no vhost, in the order named. */
  static List<String> unused(List<String> named, JobInfo job) {
    List<String> used = job.getVhostsList().stream().map(VhostPlacement::getNode).toList();
    return named.stream().distinct().filter(n -> !used.contains(n)).toList();
  }

  /** Says so on {@code err} when some of the nodes named got no vhost. */
  static void noteUnused(PrintStream err, List<String> named, JobInfo job) {
    List<String> unused = unused(named, job);
    if (!unused.isEmpty()) {
      err.printf(
          "cohort: %s %s left unused: %d vhost(s) over %d nodes named%n",
          unused.size() == 1 ? "node" : "nodes",
          String.join(", ", unused),
          job.getVhostsCount(),
          named.stream().distinct().count());
    }
  }

  /** The vhosts as JSON: [{"vhost": ID, "node": NODE}, ...]. */
  static List<Map<String, String>> json(JobInfo job) {
    return job.getVhostsList().stream()
        .map(
            v -> {
              Map<String, String> m = new LinkedHashMap<>();
              m.put("vhost", v.getVhostId());
              m.put("node", v.getNode());
              return m;
            })
        .toList();
  }

  /** Where a restart took each vhost's image, as JSON. */
  static List<Map<String, Object>> sources(RestartResponse r) {
    return r.getSourcesList().stream()
        .map(
            s -> {
              Map<String, Object> m = new LinkedHashMap<>();
              m.put("vhost", s.getVhostId());
              m.put("node", s.getNode());
              m.put("from_node", s.getFromNode());
              m.put("copy", s.getCopy());
              m.put("bytes", s.getBytes());
              return m;
            })
        .toList();
  }

  /**
   * One line per vhost whose image did not come from where it was written, or was brought over:
   * "image of 7-1: partner copy on n3 (in place)", "... original on n1, 64.0 MB copied to n3".
   */
  static void noteSources(PrintStream err, RestartResponse r) {
    for (ImageSource s : r.getSourcesList()) {
      boolean original = s.getCopy().startsWith("original");
      if (original && s.getBytes() == 0) {
        continue; // restored where it was written: nothing to say
      }
      err.printf(
          "cohort: image of %s: %s%s%n",
          s.getVhostId(),
          s.getCopy(),
          s.getBytes() == 0
              ? " (restored in place)"
              : String.format(", %.1f MB copied to %s", s.getBytes() / 1e6, s.getNode()));
    }
  }
}
