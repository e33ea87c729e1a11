package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Part 9: the time from a fault inside a checkpoint to the job running again, for each phase of the
 * barrier and each fault, against the target of lease + 2 s.
 *
 * <p>The part has its own cluster of 2 nodes (prefix {@value #PREFIX}, subnet {@value #SUBNET}, in
 * its own home): its daemons are started with fault points ({@code COHORT_FAULT_POINTS}) and a
 * decision lease of {@link #LEASE}. For each cell a job of two vhosts (the C ring, rank 0 on n1,
 * rank 1 on n2) takes one checkpoint, then a second one while the phase's fault point is held: once
 * the coordinator (or both agents) reached it, the fault is injected, the hold removed and the
 * fault completed in the background (a killed daemon started again; a cut node kept off the network
 * for lease + 2 s, then joined), while this class polls the vhosts every 50 ms. Recovered: no task
 * of either vhost is stopped (T or t in /proc) and the job's output has grown since; for a {@code
 * --stop} checkpoint, both vhosts' inits have exited. The job is killed after each cell.
 */
final class FaultRecovery {
  static final String PREFIX = "cohortbf";
  static final String SUBNET = "198.18.96";

  /** The agents' decision lease on this part's cluster. */
  static final Duration LEASE = Duration.ofSeconds(4);

  /** The target: the job runs again within lease + 2 s of the fault. */
  static final Duration TARGET = LEASE.plusSeconds(2);

  /** A cell not recovered by then is recorded as failed. */
  private static final Duration GIVE_UP = Duration.ofSeconds(60);

  private static final long POLL_MS = 50;

  /** A phase of the barrier, held at its fault point (see FaultPoints in proto). */
  enum Phase {
    PREPARE,
    DUMP,
    SEAL,
    COMMIT,
    PUBLISH,
    /** A --stop checkpoint, held once committed, where its vhosts wait to end. */
    STOP;

    String point() {
      return switch (this) {
        case PREPARE -> "coordinator.prepare";
        case DUMP -> "agent.dump";
        case SEAL -> "agent.seal";
        case COMMIT -> "coordinator.commit";
        case PUBLISH, STOP -> "coordinator.publish";
      };
    }

    boolean stop() {
      return this == STOP;
    }

    /** How many daemons reach the point per checkpoint: both agents, or the coordinator. */
    int reachers() {
      return point().startsWith("agent.") ? 2 : 1;
    }
  }

  enum Fault {
    COORDINATOR_KILLED,
    AGENT_KILLED,
    NODE_CUT,
    CLIENT_KILLED;

    String label() {
      return name().toLowerCase().replace('_', ' ');
    }
  }

  /**
   * One measurement: seconds to running again (or ended), to unfrozen, and from the fault's end
   * (the cut node's join, the killed daemon's restart) to running again.
   */
  private record Sample(double recovered, double unfrozen, double afterBack) {}

  private final Path repo;
  private final Path home;
  private final Path holds;
  private final int reps;
  private final Path ring;
  private final Cli cli;
  private Cluster cluster;

  FaultRecovery(Path repo, Path home, int reps, Path ring) {
    this.repo = repo;
    this.home = home;
    this.holds = home.resolve("fault-points");
    this.reps = reps;
    this.ring = ring;
    this.cli = new Cli(repo, home, Map.of("COHORT_FAULT_POINTS", holds.toString()));
  }

  JsonObject run() throws IOException, InterruptedException {
    Files.createDirectories(holds);
    JsonObject out = new JsonObject();
    out.addProperty("date", Instant.now().toString());
    out.addProperty("repetitions", reps);
    out.addProperty("lease_s", LEASE.toSeconds());
    out.addProperty("target_s", TARGET.toSeconds());
    JsonArray cells = new JsonArray();
    try {
      cluster =
          Cluster.up(
              cli,
              2,
              PREFIX,
              SUBNET,
              "--decision-lease",
              LEASE.toSeconds() + "s",
              "--image-policy",
              "none");
      for (Fault fault : Fault.values()) {
        for (Phase phase : Phase.values()) {
          cells.add(cell(phase, fault));
        }
      }
    } finally {
      releaseHolds();
      Cli.Result down =
          cli.exec(
              List.of(repo.resolve("cohort").toString(), "cluster", "down"), Duration.ofMinutes(2));
      if (down.rc() != 0) {
        System.err.println(
            "bench: part 9: `cohort cluster down` failed (COHORT_HOME="
                + home
                + "), take it down by hand:\n"
                + down.err());
      }
    }
    out.add("cells", cells);
    return out;
  }

  private JsonObject cell(Phase phase, Fault fault) throws IOException, InterruptedException {
    System.out.printf("bench: fault recovery, %s during %s%n", fault.label(), phase);
    Stats recovered = new Stats();
    Stats unfrozen = new Stats();
    Stats afterBack = new Stats();
    JsonArray errors = new JsonArray();
    for (int i = 0; i < reps; i++) {
      try {
        Sample s = once(phase, fault);
        recovered.add(s.recovered());
        if (!Double.isNaN(s.unfrozen())) {
          unfrozen.add(s.unfrozen());
        }
        if (!Double.isNaN(s.afterBack())) {
          afterBack.add(s.afterBack());
        }
        System.out.printf(
            "  %s in %.2f s (unfrozen %.2f s, after the %s %.2f s)%n",
            phase.stop() ? "ended" : "running again",
            s.recovered(),
            s.unfrozen(),
            fault == Fault.NODE_CUT ? "join" : "restart",
            s.afterBack());
      } catch (RuntimeException | IOException e) {
        System.out.println("  failed: " + e.getMessage());
        errors.add(e.getMessage());
      }
    }
    JsonObject c = new JsonObject();
    c.addProperty("phase", phase.name().toLowerCase());
    c.addProperty("point", phase.point());
    c.addProperty("stop", phase.stop());
    c.addProperty("fault", fault.label());
    putIfAny(c, "recovered_s", recovered);
    putIfAny(c, "unfrozen_s", unfrozen);
    putIfAny(c, fault == Fault.NODE_CUT ? "after_join_s" : "after_restart_s", afterBack);
    if (!errors.isEmpty()) {
      c.add("errors", errors);
    }
    return c;
  }

  private static void putIfAny(JsonObject o, String key, Stats s) {
    if (!Double.isNaN(s.median())) {
      o.add(key, s.json());
    }
  }

  /** One job, one faulted checkpoint; the job is gone (killed, or stopped) when this returns. */
  private Sample once(Phase phase, Fault fault) throws IOException, InterruptedException {
    cluster.awaitNodesUp(2, Duration.ofMinutes(1));
    String job = cli.run("n1,n2", 1, "mpirun", "-np", "2", ring.toString(), "1000000", "10");
    long[] inits = {};
    Process client = null;
    boolean injected = false;
    CompletableFuture<Long> completion = null;
    try {
      cli.awaitOutput("n1", job, "iter 20 ", Duration.ofMinutes(2));
      String previous =
          cli.cohort("checkpoint", job, "--json").json().get("checkpoint").getAsString();
      String ckpt = job + "." + (Long.parseLong(previous.substring(job.length() + 1)) + 1);
      inits =
          new long[] {
            VhostTasks.init(cli, "n1", job + "-0"), VhostTasks.init(cli, "n2", job + "-1")
          };
      long t0;
      Path hold = Files.createFile(holds.resolve(phase.point() + ".hold"));
      try {
        client =
            cli.start(
                home.resolve(ckpt + ".client.txt"),
                phase.stop()
                    ? new String[] {"checkpoint", job, "--stop"}
                    : new String[] {"checkpoint", job});
        awaitReached(phase, ckpt);
        injected = true;
        inject(fault, client);
        t0 = System.nanoTime();
      } finally {
        Files.deleteIfExists(hold);
      }
      long start = t0;
      completion = CompletableFuture.supplyAsync(() -> complete(fault, start));
      Sample s =
          phase.stop()
              ? new Sample(awaitEnded(inits, t0), Double.NaN, Double.NaN)
              : awaitRunning(inits, cli.log("n1", job), t0);
      long joined = completion.join();
      return joined == 0
          ? s
          : new Sample(s.recovered(), s.unfrozen(), s.recovered() - (joined - t0) / 1e9);
    } finally {
      tidy(fault, job, inits, client, completion, injected);
    }
  }

  /** Waits until the point is reached for {@code ckpt} by as many daemons as reach it. */
  private void awaitReached(Phase phase, String ckpt) throws IOException, InterruptedException {
    Path reached = holds.resolve(phase.point() + ".reached");
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    while (true) {
      long n = 0;
      if (Files.exists(reached)) {
        try (Stream<String> lines = Files.lines(reached)) {
          n = lines.filter(l -> l.equals(ckpt) || l.startsWith(ckpt + "/")).count();
        }
      }
      if (n >= phase.reachers()) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(ckpt + " never reached " + phase.point());
      }
      Thread.sleep(20);
    }
  }

  /** The fault's first half, landed while the point is held. */
  private void inject(Fault fault, Process client) {
    switch (fault) {
      case COORDINATOR_KILLED -> sigkill(cluster.pid("coordinator"));
      case AGENT_KILLED -> sigkill(cluster.pid("n2"));
      case NODE_CUT -> cli.cohort("cluster", "cut", "n2");
      case CLIENT_KILLED -> client.destroyForcibly();
    }
  }

  private static void sigkill(long pid) {
    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
  }

  /**
   * The fault's second half, run beside the polling: the killed daemon started again, or the cut
   * node joined once it was off for lease + 2 s (past the lease: its agent has aborted on its own).
   * Returns when the node joined or the daemon was started again (System.nanoTime), or 0.
   */
  private long complete(Fault fault, long t0) {
    switch (fault) {
      case COORDINATOR_KILLED -> {
        cli.cohort("cluster", "start", "coordinator");
        return System.nanoTime();
      }
      case AGENT_KILLED -> {
        cli.cohort("cluster", "start", "n2");
        return System.nanoTime();
      }
      case NODE_CUT -> {
        try {
          Thread.sleep(Math.max(0, (t0 + TARGET.toNanos() - System.nanoTime()) / 1_000_000));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        } finally {
          cli.cohort("cluster", "join", "n2");
        }
        return System.nanoTime();
      }
      case CLIENT_KILLED -> {}
    }
    return 0;
  }

  /**
   * Seconds from {@code t0} until no task of the vhosts is stopped and the output has grown since
   * they were first seen so; with the seconds until they were first seen unfrozen.
   */
  private static Sample awaitRunning(long[] inits, Path log, long t0)
      throws IOException, InterruptedException {
    long deadline = t0 + GIVE_UP.toNanos();
    double unfrozen = Double.NaN;
    long base = -1;
    List<String> stopped = List.of();
    while (System.nanoTime() < deadline) {
      stopped = new ArrayList<>();
      for (long init : inits) {
        if (!VhostTasks.alive(init)) {
          throw new IllegalStateException("the job died: vhost init " + init + " ended");
        }
        stopped.addAll(VhostTasks.stopped(init));
      }
      long size = Files.size(log);
      double now = (System.nanoTime() - t0) / 1e9;
      if (!stopped.isEmpty()) {
        unfrozen = Double.NaN;
        base = -1;
      } else if (base < 0) {
        unfrozen = now;
        base = size;
      } else if (size > base) {
        return new Sample(now, unfrozen, Double.NaN);
      }
      Thread.sleep(POLL_MS);
    }
    throw new IllegalStateException(
        String.format(
            "the job is not running %d s after the fault (stopped tasks: %s; unfrozen at %.1f s)",
            GIVE_UP.toSeconds(), stopped, unfrozen));
  }

  /** Seconds from {@code t0} until the --stop job's vhosts have exited. */
  private static double awaitEnded(long[] inits, long t0) throws InterruptedException {
    long deadline = t0 + GIVE_UP.toNanos();
    for (long init : inits) {
      while (VhostTasks.alive(init)) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              String.format(
                  "vhost init %d still runs %d s after the fault (stopped tasks: %s)",
                  init, GIVE_UP.toSeconds(), VhostTasks.stopped(init)));
        }
        Thread.sleep(POLL_MS);
      }
    }
    return (System.nanoTime() - t0) / 1e9;
  }

  /**
   * After a cell, whatever happened in it: the fault undone (the node joined, the daemon running),
   * the client ended, the job killed and its vhosts gone, so that the next cell starts clean.
   */
  private void tidy(
      Fault fault,
      String job,
      long[] inits,
      Process client,
      CompletableFuture<Long> completion,
      boolean injected)
      throws IOException, InterruptedException {
    releaseHolds();
    boolean completed = false;
    if (completion != null) {
      try {
        completion.join();
        completed = true;
      } catch (RuntimeException e) {
        System.out.println("  the fault's second half failed: " + e.getMessage());
      }
    }
    if (injected && !completed) { // the fault may still be in place: undo it
      switch (fault) {
        case COORDINATOR_KILLED -> bestEffort("cluster", "start", "coordinator");
        case AGENT_KILLED -> bestEffort("cluster", "start", "n2");
        case NODE_CUT -> bestEffort("cluster", "join", "n2");
        case CLIENT_KILLED -> {}
      }
    }
    if (client != null && !client.waitFor(90, TimeUnit.SECONDS)) {
      System.out.println("  the `cohort checkpoint` client still ran after 90 s: killed");
      client.destroyForcibly().waitFor();
    }
    boolean running = false;
    for (long init : inits) {
      running |= VhostTasks.alive(init);
    }
    if (running || inits.length == 0) {
      // A coordinator started again answers once it has recovered its catalog: `cluster start`
      // returns before that.
      try {
        cluster.awaitNodesUp(2, Duration.ofMinutes(1));
      } catch (IllegalStateException e) {
        System.out.println("  " + e.getMessage());
      }
      bestEffort("kill", job);
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    for (long init : inits) {
      while (VhostTasks.alive(init) && System.nanoTime() < deadline) {
        Thread.sleep(POLL_MS);
      }
      if (VhostTasks.alive(init)) {
        // Cohort left it running (its job may count as stopped, so `cohort kill` refuses): end it
        // here, a pid namespace's init takes the whole vhost with it, so the next cells run alone.
        System.out.printf(
            "  vhost init %d of %s still runs after `cohort kill`: SIGKILL%n", init, job);
        sigkill(init);
      }
    }
  }

  private void bestEffort(String... args) {
    List<String> cmd = new ArrayList<>(List.of(repo.resolve("cohort").toString()));
    cmd.addAll(List.of(args));
    Cli.Result r = cli.exec(cmd, Duration.ofMinutes(2));
    if (r.rc() != 0) {
      System.out.println("  `cohort " + String.join(" ", args) + "` failed: " + r.err().strip());
    }
  }

  /** Removes every hold, so that no daemon stays held (they would wait out the hold limit). */
  private void releaseHolds() throws IOException {
    if (Files.isDirectory(holds)) {
      try (Stream<Path> s = Files.list(holds)) {
        for (Path p : s.filter(p -> p.toString().endsWith(".hold")).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }
}
