package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Part 3: a coordinated checkpoint of an MPI job over 1, 2 and 4 vhosts, one per node: the total,
 * each phase, and the barrier's own overhead — the time that is neither CRIU writing the images nor
 * the seal digesting and syncing them (coordination, RPCs, commit, resume).
 */
final class BarrierCost {
  private final Cli cli;
  private final int reps;
  private final Path ring;

  BarrierCost(Cli cli, int reps, Path ring) {
    this.cli = cli;
    this.reps = reps;
    this.ring = ring;
  }

  /**
   * For each count, the job spread one vhost per node; for counts above one, also the same vhosts
   * all on n1, where the checkpoint needs no cut between nodes: the difference of the two frozen
   * times is what the cut adds.
   */
  JsonArray run(List<Integer> vhostCounts) {
    JsonArray out = new JsonArray();
    for (int k : vhostCounts) {
      List<String> spread = new ArrayList<>();
      for (int i = 1; i <= k; i++) {
        spread.add("n" + i);
      }
      JsonObject r = measure(spread, new Stats(), new Stats());
      if (k > 1) {
        JsonObject one = measure(Collections.nCopies(k, "n1"), new Stats(), new Stats());
        r.add("one_node", one);
        r.addProperty(
            "cut_added_frozen_ms",
            r.getAsJsonObject("frozen_ms").get("median").getAsDouble()
                - one.getAsJsonObject("frozen_ms").get("median").getAsDouble());
      }
      out.add(r);
    }
    return out;
  }

  /** Starts the ring, one rank in a vhost on each of {@code nodes}, and waits until it runs. */
  String startRing(List<String> nodes) {
    // No partner copies (part 8 measures them): the copy of one checkpoint would load the 2
    // cores during the next, and the two layouts would not compare.
    String job =
        cli.run(
            String.join(",", nodes),
            1,
            List.of("--images", "none"),
            "mpirun",
            "-np",
            Integer.toString(nodes.size()),
            ring.toString(),
            "1000000",
            "20");
    cli.awaitOutput("n1", job, "iter 20 ", Duration.ofMinutes(2));
    return job;
  }

  /** One coordinated checkpoint of {@code job}: its record's timings; the checkpoint goes. */
  JsonObject checkpointOnce(String job) {
    String id = cli.cohort("checkpoint", job, "--json").json().get("checkpoint").getAsString();
    JsonObject t = cli.checkpointRecord(job, id).getAsJsonObject("timings");
    cli.cohort("rm", id);
    return t;
  }

  /**
   * Checkpoints of a job with one vhost on each of {@code nodes}; their totals are also added to
   * {@code total}, and CRIU's time in them to {@code criuTotal} (a part that compares runs gathers
   * them over several).
   */
  JsonObject measure(List<String> nodes, Stats total, Stats criuTotal) {
    int k = nodes.size();
    System.out.printf("bench: coordinated checkpoint, %d vhost(s) on %s%n", k, nodes);
    String job = startRing(nodes);
    Stats overhead = new Stats();
    Stats prepare = new Stats();
    Stats dump = new Stats();
    Stats criu = new Stats();
    Stats seal = new Stats();
    Stats commit = new Stats();
    Stats resume = new Stats();
    Stats publish = new Stats();
    Stats frozen = new Stats();
    for (int i = 0; i < Math.max(reps, 5); i++) { // a few hundred ms each: noisy here
      JsonObject t = checkpointOnce(job);
      double tot = CheckpointCost.num(t, "total_ms");
      total.add(tot);
      prepare.add(CheckpointCost.num(t, "prepare_ms"));
      dump.add(CheckpointCost.num(t, "dump_ms"));
      criu.add(CheckpointCost.num(t, "criu_ms"));
      criuTotal.add(CheckpointCost.num(t, "criu_ms"));
      seal.add(CheckpointCost.num(t, "seal_ms"));
      commit.add(CheckpointCost.num(t, "commit_ms"));
      resume.add(CheckpointCost.num(t, "resume_ms"));
      publish.add(CheckpointCost.num(t, "publish_ms"));
      frozen.add(CheckpointCost.num(t, "freeze_ms"));
      overhead.add(tot - CheckpointCost.num(t, "criu_ms") - CheckpointCost.num(t, "seal_ms"));
    }
    cli.cohort("kill", job);
    JsonObject r = new JsonObject();
    r.addProperty("vhosts", k);
    r.add("total_ms", total.json());
    r.add("barrier_overhead_ms", overhead.json());
    r.add("prepare_ms", prepare.json());
    r.add("dump_ms", dump.json());
    r.add("criu_ms", criu.json());
    r.add("seal_ms", seal.json());
    r.add("commit_ms", commit.json());
    r.add("resume_ms", resume.json());
    r.add("publish_ms", publish.json());
    r.add("frozen_ms", frozen.json());
    System.out.printf(
        "  total %s ms, overhead %s ms (criu %s, resume %s, seal %s, publish %s, " + "frozen %s)%n",
        total.cell(),
        overhead.cell(),
        criu.cell(),
        resume.cell(),
        seal.cell(),
        publish.cell(),
        frozen.cell());
    return r;
  }
}
