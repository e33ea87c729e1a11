package io.cohort.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * `./cohort bench`: what Cohort costs, side by side with bare CRIU and the machine's limits, on an
 * emulated cluster of 4 nodes. Prints a table and writes results.json, results.md and PNG plots
 * into the output directory (docs/benchmarks by default).
 *
 * <pre>
 * usage: Bench [--parts 1,2,3,4,5,6,7,8,9,10] [--reps N] [--sizes MB,MB,...] [--out DIR]
 *              [--baseline DIR]
 *        Bench --report [--out DIR]     (results.md and plots again from results.json)
 * </pre>
 *
 * results.json is written after every part, so an interrupted run keeps what it measured. Parts 9
 * (faults) and 10 (authentication, against the build in --baseline; only with that option) run on
 * clusters of their own, after the others' is down.
 */
public final class Bench {
  private Bench() {}

  public static void main(String[] args) throws Exception {
    Set<Integer> parts = new TreeSet<>(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
    int reps = 3;
    List<Integer> sizes = List.of(64, 512, 2048);
    boolean reportOnly = false;
    Path baseline = null;
    boolean partsGiven = false;
    Path repo = Path.of(System.getProperty("cohort.repo", ".")).toAbsolutePath().normalize();
    Path out = repo.resolve("docs/benchmarks");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--parts" -> {
          parts =
              Arrays.stream(args[++i].split(","))
                  .map(Integer::valueOf)
                  .collect(Collectors.toCollection(TreeSet::new));
          partsGiven = true;
        }
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--sizes" ->
            sizes = Arrays.stream(args[++i].split(",")).map(Integer::valueOf).toList();
        case "--out" -> out = Path.of(args[++i]).toAbsolutePath();
        case "--report" -> reportOnly = true;
        case "--baseline" -> baseline = Path.of(args[++i]).toAbsolutePath().normalize();
        default -> {
          System.err.println(
              "usage: cohort bench [--parts 1,2,3,4,5,6,7,8,9,10] [--reps N] "
                  + "[--sizes 64,512,2048] [--out DIR] [--baseline DIR]\n"
                  + "       cohort bench --report [--out DIR]");
          System.exit(2);
        }
      }
    }
    if (baseline != null && !partsGiven) {
      parts.add(10);
    }
    if (parts.contains(10) && baseline == null) {
      System.err.println(
          "part 10 compares with a build from before authentication: give it with --baseline DIR");
      System.exit(2);
    }
    Path json = out.resolve("results.json");
    if (reportOnly) {
      report(com.google.gson.JsonParser.parseString(Files.readString(json)).getAsJsonObject(), out);
      return;
    }
    Path home = Path.of("/var/lib/cohort-bench");
    DurableTree.delete(home);
    Files.createDirectories(home);
    Files.createDirectories(out);
    Cli cli = new Cli(repo, home);

    // A run of some parts keeps the other parts' figures of the last run.
    JsonObject results =
        !parts.containsAll(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9)) && Files.exists(json)
            ? com.google.gson.JsonParser.parseString(Files.readString(json)).getAsJsonObject()
            : new JsonObject();
    results.add("machine", Machine.describe(cli));
    if (parts.stream().anyMatch(p -> p <= 8)) {
      // The date and repetitions of parts 1-8; part 9 records its own.
      results.addProperty("date", Instant.now().toString());
      results.addProperty("repetitions", reps);
      measure(results, json, parts, reps, sizes, cli, repo);
    }
    if (!results.has("date")) { // a first run of part 9 alone
      results.addProperty("date", Instant.now().toString());
      results.addProperty("repetitions", reps);
    }
    if (parts.contains(9)) {
      results.add(
          "fault_recovery",
          new FaultRecovery(
                  repo, home.resolve("faults"), reps, repo.resolve("mpi-tests/target/mpi/ring"))
              .run());
      save(results, json);
    }
    if (parts.contains(10)) {
      results.add(
          "security",
          new SecurityCost(
                  repo,
                  baseline,
                  home.resolve("security"),
                  reps,
                  repo.resolve("mpi-tests/target/mpi/ring"))
              .run());
      save(results, json);
    }
    report(results, out);
  }

  /** Parts 1-8, on the benchmarks' cluster of 4 nodes. */
  private static void measure(
      JsonObject results,
      Path json,
      Set<Integer> parts,
      int reps,
      List<Integer> sizes,
      Cli cli,
      Path repo)
      throws Exception {
    Path bin = repo.resolve("bench/target/bin");
    try (Cluster cluster = Cluster.up(cli, 4)) {
      if (parts.contains(6)) {
        JsonObject idle = new JsonObject();
        Thread.sleep(3000); // let the daemons settle after start-up
        idle.addProperty("coordinator_mib", Rss.kib(cluster.pid("coordinator")) / 1024.0);
        idle.addProperty("agent_mib", Rss.kib(cluster.pid("n1")) / 1024.0);
        results.add("footprint_idle", idle);
        save(results, json);
      }
      if (parts.contains(1) || parts.contains(2) || parts.contains(6)) {
        CheckpointCost cost = new CheckpointCost(cluster, reps, bin);
        results.add("checkpoint_vs_memory", cost.run(sizes));
        JsonObject busy = new JsonObject();
        busy.addProperty("coordinator_mib", cost.coordinatorPeakMib);
        busy.addProperty("agent_mib", cost.agentPeakMib);
        results.add("footprint_checkpoint_peak", busy);
        save(results, json);
      }
      if (parts.contains(3)) {
        results.add(
            "coordinated_checkpoint",
            new BarrierCost(cli, reps, repo.resolve("mpi-tests/target/mpi/ring"))
                .run(List.of(1, 2, 4)));
        save(results, json);
      }
      NetworkCost net = new NetworkCost(cli, reps, bin.resolve("pingpong"));
      if (parts.contains(4)) {
        results.add("overlay_pingpong", net.overlay());
        save(results, json);
      }
      if (parts.contains(5)) {
        results.add("steady_state", net.steadyState());
        save(results, json);
      }
      if (parts.contains(7)) {
        results.add("tracked_files", new FileCost(cli, reps, bin).run());
        save(results, json);
      }
      if (parts.contains(8)) {
        results.add("partner_copies", new PartnerCost(cluster, reps, bin).run());
        save(results, json);
      }
    }
  }

  private static void save(JsonObject results, Path json) throws java.io.IOException {
    Files.writeString(json, new GsonBuilder().setPrettyPrinting().create().toJson(results) + "\n");
  }

  private static void report(JsonObject results, Path out) throws java.io.IOException {
    Report report = new Report(results);
    String md = report.markdown();
    Files.writeString(out.resolve("results.md"), md, StandardCharsets.UTF_8);
    report.plots(new Plots(out));
    System.out.println();
    System.out.println(md);
    System.out.println("bench: wrote results.json, results.md and plots in " + out);
  }

  /** The rows of an array result, or none. */
  static List<JsonObject> rows(JsonObject results, String key) {
    List<JsonObject> out = new ArrayList<>();
    if (results.has(key)) {
      for (JsonElement e : results.getAsJsonArray(key)) {
        out.add(e.getAsJsonObject());
      }
    }
    return out;
  }

  static JsonArray array(JsonObject results, String key) {
    return results.has(key) ? results.getAsJsonArray(key) : new JsonArray();
  }
}
