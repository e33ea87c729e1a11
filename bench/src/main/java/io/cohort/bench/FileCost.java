package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Part 7: what tracking the files a job writes adds to its checkpoint and restart. Three jobs of
 * one vhost on n1 run the filewriter program with the same memory: one appending to a 1 GiB file
 * (tracked by size and the digest of its tail), one rewriting 4 KiB blocks of a 100 MiB file in
 * place (copied into every image), and one without a file (the baseline). Their checkpoints and
 * restarts take turns, so that all three see the machine's same spells.
 */
final class FileCost {
  /**
   * The jobs' memory: a small simulation's. The file's cost does not depend on it, its share of the
   * checkpoint does (a 64 MB image checkpoints in ~0.4 s here, 512 MB in ~1.4 s).
   */
  static final int MEMORY_MB = 256;

  static final List<String> MODES = List.of("none", "append", "inplace");

  /** How long a job runs on after a checkpoint before it is killed and restarted from it. */
  private static final Duration RUN_ON = Duration.ofSeconds(1);

  private final Cli cli;
  private final int reps;
  private final Path filewriter;

  FileCost(Cli cli, int reps, Path bin) {
    this.cli = cli;
    this.reps = reps;
    this.filewriter = bin.resolve("filewriter");
  }

  /** One mode's measurements. */
  private static final class Mode {
    final Stats total = new Stats();
    final Stats frozen = new Stats();
    final Stats criu = new Stats();
    final Stats seal = new Stats();
    final Stats capture = new Stats();
    final Stats restart = new Stats();
    final Stats rollbackRestart = new Stats();
    long imageBytes;
    long bytesCopied;
    int trackedFiles;
  }

  JsonArray run() throws IOException, InterruptedException {
    // Under the bench's home, which the vhosts see (each has a private /tmp) and which is not an
    // agent's home (whose files are never tracked).
    Path dir = cli.home.resolve("files");
    DurableTree.delete(dir);
    Files.createDirectories(dir);
    Map<String, String> jobs = new LinkedHashMap<>();
    Map<String, Mode> m = new LinkedHashMap<>();
    for (String mode : MODES) {
      System.out.printf("bench: tracked files, starting the %s job%n", mode);
      String job =
          cli.run(
              "n1", 1, filewriter.toString(), mode, dir.toString(), Integer.toString(MEMORY_MB));
      cli.awaitOutput("n1", job, "ready", Duration.ofMinutes(5));
      jobs.put(mode, job);
      m.put(mode, new Mode());
    }
    // The first dump after a process filled its memory is slow (part 1): one unmeasured each.
    for (String job : jobs.values()) {
      cli.cohort(
          "rm", cli.cohort("checkpoint", job, "--json").json().get("checkpoint").getAsString());
    }
    for (int i = 0; i < reps; i++) {
      for (String mode : turn(i)) {
        String job = jobs.get(mode);
        Mode r = m.get(mode);
        JsonObject c = cli.cohort("checkpoint", job, "--json").json();
        String id = c.get("checkpoint").getAsString();
        JsonObject t = cli.checkpointRecord(job, id).getAsJsonObject("timings");
        r.total.add(CheckpointCost.num(t, "total_ms"));
        r.frozen.add(CheckpointCost.num(t, "freeze_ms"));
        r.criu.add(CheckpointCost.num(t, "criu_ms"));
        r.seal.add(CheckpointCost.num(t, "seal_ms"));
        r.capture.add(c.get("tracked_capture_ms").getAsDouble());
        r.imageBytes = c.get("image_bytes").getAsLong();
        r.bytesCopied = c.get("tracked_bytes_copied").getAsLong();
        r.trackedFiles = c.get("tracked_files").getAsInt();
        cli.cohort("rm", id);
      }
    }
    // A restart from a --stop checkpoint: every file is as the checkpoint left it, so the restart
    // only checks them (the tail digest; the whole file against its copy's digest).
    for (int i = 0; i < reps; i++) {
      for (String mode : turn(i)) {
        String job = jobs.get(mode);
        String id =
            cli.cohort("checkpoint", job, "--stop", "--json")
                .json()
                .get("checkpoint")
                .getAsString();
        m.get(mode)
            .restart
            .add(
                cli.cohort("restart", id, "--detach", "--json")
                    .json()
                    .get("restart_ms")
                    .getAsDouble());
        cli.cohort("rm", id);
      }
    }
    // A restart after the job ran on and was killed, as after a failure: the files have changed
    // since the checkpoint and are returned to it (the appended lines cut off; the rewritten file
    // written back from its copy), what they held kept beside them.
    for (int i = 0; i < reps; i++) {
      for (String mode : turn(i)) {
        String job = jobs.get(mode);
        String id = cli.cohort("checkpoint", job, "--json").json().get("checkpoint").getAsString();
        Thread.sleep(RUN_ON.toMillis());
        cli.cohort("kill", job);
        m.get(mode)
            .rollbackRestart
            .add(
                cli.cohort("restart", id, "--detach", "--json")
                    .json()
                    .get("restart_ms")
                    .getAsDouble());
        cli.cohort("rm", id);
      }
    }
    for (String job : jobs.values()) {
      cli.cohort("kill", job);
    }
    DurableTree.delete(dir);
    return rows(m);
  }

  /** The modes in the order of turn {@code i}: each goes first in one turn of three. */
  private static List<String> turn(int i) {
    List<String> order = new ArrayList<>(MODES);
    Collections.rotate(order, -i);
    return order;
  }

  private static JsonArray rows(Map<String, Mode> m) {
    Mode none = m.get("none");
    JsonArray out = new JsonArray();
    for (Map.Entry<String, Mode> e : m.entrySet()) {
      Mode r = e.getValue();
      JsonObject o = new JsonObject();
      o.addProperty("mode", e.getKey());
      o.addProperty(
          "file_mb",
          switch (e.getKey()) {
            case "append" -> 1024;
            case "inplace" -> 100;
            default -> 0;
          });
      o.addProperty("memory_mb", MEMORY_MB);
      o.addProperty("image_bytes", r.imageBytes);
      o.addProperty("tracked_files", r.trackedFiles);
      o.addProperty("tracked_bytes_copied", r.bytesCopied);
      o.add("checkpoint_ms", r.total.json());
      o.add("frozen_ms", r.frozen.json());
      o.add("criu_ms", r.criu.json());
      o.add("seal_ms", r.seal.json());
      o.add("capture_ms", r.capture.json());
      o.add("restart_ms", r.restart.json());
      o.add("rollback_restart_ms", r.rollbackRestart.json());
      o.addProperty("checkpoint_vs_none", r.total.median() / none.total.median());
      o.addProperty("frozen_vs_none", r.frozen.median() / none.frozen.median());
      o.addProperty("restart_vs_none", r.restart.median() / none.restart.median());
      o.addProperty(
          "rollback_restart_vs_none", r.rollbackRestart.median() / none.rollbackRestart.median());
      System.out.printf(
          "  %s: checkpoint %s ms (%.2f× none; frozen %s, criu %s, seal %s, capture %s, "
              + "%d file(s), %.0f MB copied); restart %s ms; after a rollback %s ms%n",
          e.getKey(),
          r.total.cell(),
          r.total.median() / none.total.median(),
          r.frozen.cell(),
          r.criu.cell(),
          r.seal.cell(),
          r.capture.cell(),
          r.trackedFiles,
          r.bytesCopied / 1e6,
          r.restart.cell(),
          r.rollbackRestart.cell());
      out.add(o);
    }
    return out;
  }
}
