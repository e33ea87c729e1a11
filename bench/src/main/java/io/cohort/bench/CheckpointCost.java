package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Parts 1 and 2: checkpoint and restart of one vhost holding 64 MB to 2 GB of real content (the
 * memfill program), through Cohort, against a bare `criu dump` / `criu restore` of an identical
 * vhost with the same options, and against writing as many bytes to the same disk with fsync. Also
 * samples the daemons' resident memory during the checkpoints (part 6).
 */
final class CheckpointCost {
  /** The options Cohort's agent gives CRIU for every dump and restore (CriuEngine). */
  private static final List<String> CRIU_OPTS =
      List.of(
          "--tcp-established",
          "--network-lock",
          "nftables",
          "--ext-mount-map",
          "auto",
          "--enable-external-masters",
          "--enable-external-sharing",
          "-v3");

  private final Cluster cluster;
  private final Cli cli;
  private final int reps;
  private final Path memfill;
  private final Path scratch;
  double coordinatorPeakMib;
  double agentPeakMib;

  CheckpointCost(Cluster cluster, int reps, Path bin) {
    this.cluster = cluster;
    this.cli = cluster.cli;
    this.reps = reps;
    this.memfill = bin.resolve("memfill");
    this.scratch = cli.home.resolve("bare");
  }

  JsonArray run(List<Integer> sizesMb) throws IOException {
    JsonArray out = new JsonArray();
    for (int mb : sizesMb) {
      out.add(measure(mb));
    }
    return out;
  }

  private JsonObject measure(int mb) throws IOException {
    System.out.printf("bench: checkpoint cost, %d MB%n", mb);
    Stats total = new Stats();
    Stats frozen = new Stats();
    Stats criu = new Stats();
    Stats seal = new Stats();
    Stats restart = new Stats();
    long imageBytes = 0;
    String job = start(mb);
    long pid =
        cli.job(job).getAsJsonArray("vhosts").get(0).getAsJsonObject().get("pid").getAsLong();
    // Cohort's checkpoint and a bare `criu dump --leave-running` of the very same vhost take
    // turns, so that neither side gets the machine's quieter moments. The first dump after a
    // process filled its memory is slow whoever runs CRIU (3 s instead of 1 s at 2 GB here):
    // one unmeasured checkpoint and one unmeasured bare dump first.
    cli.cohort(
        "rm", cli.cohort("checkpoint", job, "--json").json().get("checkpoint").getAsString());
    cli.must(
        criu(
            "dump",
            "-t",
            Long.toString(pid),
            "-D",
            fresh("dump").toString(),
            "-o",
            "dump.log",
            "--leave-running"));
    Stats bareDump = new Stats();
    Stats bareSync = new Stats();
    try (Rss coord = new Rss(cluster.pid("coordinator"));
        Rss agent = new Rss(cluster.pid("n1"))) {
      for (int i = 0; i < reps; i++) {
        JsonObject c = cli.cohort("checkpoint", job, "--json").json();
        String id = c.get("checkpoint").getAsString();
        JsonObject t = cli.checkpointRecord(job, id).getAsJsonObject("timings");
        total.add(num(t, "total_ms"));
        frozen.add(num(t, "freeze_ms"));
        criu.add(num(t, "criu_ms"));
        seal.add(num(t, "seal_ms"));
        imageBytes = c.get("image_bytes").getAsLong();
        cli.cohort("rm", id);

        Path dir = fresh("dump");
        bareDump.add(
            cli.timed(
                criu(
                    "dump",
                    "-t",
                    Long.toString(pid),
                    "-D",
                    dir.toString(),
                    "-o",
                    "dump.log",
                    "--leave-running")));
        bareSync.add(cli.timed(syncCommand(dir)));
        DurableTree.delete(dir);
      }
      coordinatorPeakMib = Math.max(coordinatorPeakMib, coord.peakMib());
      agentPeakMib = Math.max(agentPeakMib, agent.peakMib());
    }
    for (int i = 0; i < reps; i++) {
      String id =
          cli.cohort("checkpoint", job, "--stop", "--json").json().get("checkpoint").getAsString();
      restart.add(
          cli.cohort("restart", id, "--detach", "--json").json().get("restart_ms").getAsDouble());
      cli.awaitOutput("n1", job, "ready", Duration.ofMinutes(2));
      cli.cohort("rm", id);
    }
    cli.cohort("kill", job);

    // The same program in an identical vhost, dumped (and killed) then restored by CRIU alone.
    Stats bareRestore = new Stats();
    String twin = start(mb);
    pid = cli.job(twin).getAsJsonArray("vhosts").get(0).getAsJsonObject().get("pid").getAsLong();
    for (int i = 0; i < reps; i++) {
      Path dir = fresh("dump");
      cli.must(criu("dump", "-t", Long.toString(pid), "-D", dir.toString(), "-o", "dump.log"));
      bareRestore.add(
          cli.timed(
              criu(
                  "restore",
                  "-D",
                  dir.toString(),
                  "-d",
                  "--root",
                  "/",
                  "--pidfile",
                  dir.resolve("restored.pid").toString(),
                  "-o",
                  "restore.log")));
      pid = Long.parseLong(Files.readString(dir.resolve("restored.pid")).strip());
    }
    cli.must("kill", "-KILL", Long.toString(pid)); // the restored vhost's init: ends the tree
    DurableTree.delete(scratch);
    cli.exec(List.of(cli.repo.resolve("cohort").toString(), "kill", twin), Duration.ofMinutes(1));

    // The disk: as many bytes, written and fsync'd.
    Stats disk = new Stats();
    Path f = fresh("disk").resolve("data");
    long blocks = Math.max(1, (imageBytes + (4 << 20) - 1) >> 22);
    for (int i = 0; i < reps; i++) {
      disk.add(
          cli.timed(
              "dd",
              "if=/dev/zero",
              "of=" + f,
              "bs=4M",
              "count=" + blocks,
              "conv=fsync",
              "status=none"));
      Files.deleteIfExists(f);
    }
    DurableTree.delete(scratch);

    JsonObject r = new JsonObject();
    r.addProperty("memory_mb", mb);
    r.addProperty("image_bytes", imageBytes);
    r.add("cohort_checkpoint_ms", total.json());
    r.add("cohort_frozen_ms", frozen.json());
    r.add("cohort_criu_ms", criu.json());
    r.add("cohort_seal_ms", seal.json());
    r.add("bare_criu_dump_ms", bareDump.json());
    r.add("bare_criu_sync_ms", bareSync.json());
    r.add("disk_write_fsync_ms", disk.json());
    r.add("cohort_restart_ms", restart.json());
    r.add("bare_criu_restore_ms", bareRestore.json());
    double bare = bareDump.median();
    r.addProperty("checkpoint_vs_bare", total.median() / bare);
    r.addProperty("checkpoint_target_ms", 1.25 * bare + 100);
    r.addProperty("image_write_rate_mb_s", imageBytes / 1e3 / (criu.median() + seal.median()));
    r.addProperty("disk_rate_mb_s", blocks * 4.194304 * 1e3 / disk.median());
    System.out.printf(
        "  image %.0f MB: cohort checkpoint %s ms (frozen %s, criu %s, seal %s); "
            + "bare criu dump %s ms (+ sync %s); disk %s ms; restart %s ms vs bare restore %s ms%n",
        imageBytes / 1e6,
        total.cell(),
        frozen.cell(),
        criu.cell(),
        seal.cell(),
        bareDump.cell(),
        bareSync.cell(),
        disk.cell(),
        restart.cell(),
        bareRestore.cell());
    return r;
  }

  private String start(int mb) {
    String job = cli.run("n1", 1, memfill.toString(), Integer.toString(mb));
    cli.awaitOutput("n1", job, "ready", Duration.ofMinutes(5));
    return job;
  }

  /** CRIU as the agent on n1 runs it: in n1's network namespace, with the agent's options. */
  private String[] criu(String... args) {
    List<String> cmd =
        new ArrayList<>(
            List.of("ip", "netns", "exec", cluster.namespace("n1"), "/opt/cohort/bin/criu"));
    cmd.addAll(List.of(args));
    cmd.addAll(CRIU_OPTS);
    return cmd.toArray(String[]::new);
  }

  private static String[] syncCommand(Path dir) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("sync"));
    try (var s = Files.list(dir)) {
      s.forEach(p -> cmd.add(p.toString()));
    }
    cmd.add(dir.toString());
    return cmd.toArray(String[]::new);
  }

  private Path fresh(String name) throws IOException {
    Path d = scratch.resolve(name);
    DurableTree.delete(d);
    Files.createDirectories(d);
    return d;
  }

  static double num(JsonObject o, String field) {
    return o.has(field) ? o.get(field).getAsDouble() : 0;
  }
}
