package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonElement;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.parallel.Execution;
import org.junit.jupiter.api.parallel.ExecutionMode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fault matrix: for each phase of the checkpoint barrier and each fault, a job of two vhosts
 * (one on n1, one on n2) runs again within the lease (or, for --stop, is stopped at the committed
 * checkpoint), the checkpoint is committed everywhere or listed nowhere, {@code ps} and {@code
 * kill} work, and the previous checkpoint restarts with the output of an uninterrupted run (the
 * restarted jobs run on beside the next cells; the last test compares their output).
 *
 * <p>Each fault lands inside its phase because the daemons are built with fault points ({@code
 * COHORT_FAULT_POINTS}): the test holds the coordinator or both agents at the phase's point, waits
 * until it is reached, injects the fault, then lets them go. {@link FaultLeaseIT} lands the faults
 * in the dump of a real 1 GB job instead.
 */
// Beside the other classes (on its own cluster); its own tests one after another, in order.
@Execution(ExecutionMode.CONCURRENT)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FaultMatrixIT {
  /** The agents' --decision-lease on this cluster: short, so the matrix stays quick. */
  static final Duration LEASE = Duration.ofSeconds(4);

  /** The bound the issue sets: lease + 2 s; allowed here twice over for a loaded 2-core machine. */
  static final Duration BOUND = LEASE.plusSeconds(2);

  private static CohortHarness cohort;
  private static Path holds;

  private static final RestartedJobs restarted = new RestartedJobs();

  /** Outputs of uninterrupted runs, by command. */
  private static final Map<String, String> references = new HashMap<>();

  /** Fault → recovery seconds, by phase; printed at the end. */
  private static final Map<String, Double> recovery = new TreeMap<>();

  /** A phase, the fault point that holds it, and whether it is a --stop checkpoint. */
  enum Phase {
    PREPARE("coordinator.prepare", false),
    DUMP("agent.dump", false),
    SEAL("agent.seal", false),
    COMMIT("coordinator.commit", false),
    PUBLISH("coordinator.publish", false),
    STOP("coordinator.publish", true);

    final String point;
    final boolean stop;

    Phase(String point, boolean stop) {
      this.point = point;
      this.stop = stop;
    }

    /** Points held on both agents: the test waits until both reach them. */
    boolean onAgents() {
      return point.startsWith("agent.");
    }
  }

  enum Fault {
    COORDINATOR_KILLED,
    AGENT_KILLED,
    NODE_CUT,
    CLIENT_KILLED
  }

  /**
   * Whether the checkpoint must end committed. Before the record, a fault aborts it, unless only
   * the client went (the epoch is not the client's). A fault at the commit point lands before the
   * record: a dead coordinator never writes it, while a coordinator that lives writes it as soon as
   * it is let go (its agents' images were all sealed), and it stands.
   */
  static boolean committed(Phase phase, Fault fault) {
    return switch (phase) {
      case PREPARE, DUMP, SEAL -> fault == Fault.CLIENT_KILLED;
      case COMMIT -> fault != Fault.COORDINATOR_KILLED;
      case PUBLISH, STOP -> true;
    };
  }

  static Stream<Arguments> matrix() {
    List<Arguments> cells = new ArrayList<>();
    for (Fault f : Fault.values()) {
      for (Phase p : Phase.values()) {
        cells.add(Arguments.of(p, f));
      }
    }
    return cells.stream();
  }

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("matrix");
    holds = Files.createDirectories(cohort.home.resolve("fault-points"));
    cohort.extraEnv.put("COHORT_FAULT_POINTS", holds.toString());
    cohort.clusterUp(
        2,
        "cohortfm",
        "198.18.86",
        "--decision-lease",
        LEASE.toSeconds() + "s",
        "--image-policy",
        "none");
  }

  @AfterAll
  static void down() throws Exception {
    recovery.forEach((cell, s) -> System.out.printf("FaultMatrixIT: %-32s %5.1f s%n", cell, s));
    cohort.closeCluster();
  }

  @ParameterizedTest(name = "{1} during {0}")
  @Order(1)
  @Execution(ExecutionMode.SAME_THREAD)
  @MethodSource("matrix")
  void noFaultLeavesTheJobFrozen(Phase phase, Fault fault) throws Exception {
    cohort.awaitNodesUp(2);
    // A job that outlives the fault and its recovery by a margin, also on a loaded machine (the
    // matrix runs beside the other test classes); its restart from the previous checkpoint then
    // runs about as long, beside the next cells.
    int seconds = fault == Fault.NODE_CUT ? 40 : 30;
    String[] command = CohortHarness.cRing(2, seconds * 50, 20);
    String expected = references.get(String.join(" ", command));
    if (expected == null) {
      expected = ReferenceRuns.reference(command);
      references.put(String.join(" ", command), expected);
    }
    List<String> args =
        new ArrayList<>(List.of("run", "--detach", "--json", "--nodes", "n1,n2", "--"));
    args.addAll(List.of(command));
    String job = cohort.cohort(args.toArray(String[]::new)).ok().json().get("job").getAsString();
    Path log = cohort.clusterLog("n1", job);
    CohortHarness.awaitFile(log, "iter 20 ", Duration.ofSeconds(90));
    String previous = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    String ckpt = job + "." + (Long.parseLong(previous.substring(job.length() + 1)) + 1);
    long[] inits = {cohort.vhostInit("n1", job + "-0"), cohort.vhostInit("n2", job + "-1")};

    Path hold = Files.createFile(holds.resolve(phase.point + ".hold"));
    Path err = cohort.home.resolve("checkpoint-" + ckpt + ".err");
    List<String> ckptArgs = new ArrayList<>(List.of("checkpoint", job));
    if (phase.stop) {
      ckptArgs.add("--stop");
    }
    Process client =
        cohort.start(ProcessBuilder.Redirect.to(err.toFile()), ckptArgs.toArray(String[]::new));
    CompletableFuture<Double> recovered;
    try {
      awaitReached(phase, ckpt);
      inject(fault, client);
      // Timed from the fault, beside the fault's second half (a restart, the cut lasting).
      long t0 = System.nanoTime();
      recovered =
          CompletableFuture.supplyAsync(
              () -> phase.stop ? untilEnded(inits, t0) : untilNotFrozen(inits, t0));
    } finally {
      Files.deleteIfExists(hold);
    }
    afterInjection(fault);

    // The job runs again (or, --stop, ends) within the bound, and moves on.
    double seconds0 = recovered.get(BOUND.plusSeconds(90).toSeconds(), TimeUnit.SECONDS);
    if (!phase.stop) {
      long at = Files.size(log);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (Files.size(log) <= at) {
        assertTrue(System.nanoTime() < deadline, "the job's output does not move on");
        Thread.sleep(50);
      }
    }
    recovery.put(phase + " / " + fault, seconds0);

    // The checkpoint is committed everywhere or listed nowhere; which one is known.
    boolean isCommitted = awaitSettled(job, ckpt);
    assertEquals(committed(phase, fault), isCommitted, "the outcome of " + ckpt);
    assertTrue(client.waitFor(90, TimeUnit.SECONDS), "the client ends");
    String said = Files.readString(err);
    if (fault == Fault.COORDINATOR_KILLED) {
      assertTrue(said.contains("lost the coordinator"), said);
    } else if (fault != Fault.CLIENT_KILLED) {
      assertEquals(isCommitted, client.exitValue() == 0, said);
    }

    // ps and kill work; the previous checkpoint restarts as an uninterrupted run.
    cohort.cohort(Duration.ofSeconds(30), "ps").ok();
    if (phase.stop) {
      assertEquals("JOB_STATE_STOPPED", cohort.state(job));
      assertEquals(ckpt, cohort.job(job).get("latest_checkpoint").getAsString());
    } else {
      assertEquals("JOB_STATE_RUNNING", cohort.state(job));
      cohort.cohort(Duration.ofSeconds(60), "kill", job).ok();
      for (long init : inits) {
        awaitGone(init);
      }
    }
    cohort.cohort("restart", previous, "--detach").ok();
    // It runs to its end while the next cells run; the last test compares its output.
    restarted.add(phase + " / " + fault, job, previous, expected);
  }

  /** Every job restarted from its previous checkpoint ends as an uninterrupted run would. */
  @Test
  @Order(2)
  @Execution(ExecutionMode.SAME_THREAD)
  void everyPreviousCheckpointRestartedAsAnUninterruptedRun() {
    restarted.assertEachEndedAsUninterrupted(cohort, matrix().count());
  }

  /** Waits until the point is reached for {@code ckpt} (by both agents, for an agent point). */
  private static void awaitReached(Phase phase, String ckpt) throws Exception {
    Path reached = holds.resolve(phase.point + ".reached");
    int wanted = phase.onAgents() ? 2 : 1;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      long n =
          Files.exists(reached)
              ? Files.readAllLines(reached).stream()
                  .filter(l -> l.equals(ckpt) || l.startsWith(ckpt + "/"))
                  .count()
              : 0;
      if (n >= wanted) {
        return;
      }
      if (System.nanoTime() > deadline) {
        fail("the checkpoint never reached " + phase.point);
      }
      Thread.sleep(20);
    }
  }

  private static void inject(Fault fault, Process client) throws Exception {
    switch (fault) {
      case COORDINATOR_KILLED -> kill(cohort.daemonPid("coordinator"));
      case AGENT_KILLED -> kill(cohort.daemonPid("n2"));
      case NODE_CUT -> cohort.cohort("cluster", "cut", "n2").ok();
      case CLIENT_KILLED -> client.destroyForcibly();
    }
  }

  /** The fault's second half, the held daemons let go: restart, or the cut outlasting the lease. */
  private static void afterInjection(Fault fault) throws Exception {
    switch (fault) {
      case COORDINATOR_KILLED -> cohort.cohort("cluster", "start", "coordinator").ok();
      case AGENT_KILLED -> cohort.cohort("cluster", "start", "n2").ok();
      case NODE_CUT -> {
        try {
          long until = System.nanoTime() + LEASE.plusSeconds(2).toNanos();
          while (System.nanoTime() < until) {
            // ps works while a node is cut off.
            cohort.cohort(Duration.ofSeconds(30), "ps").ok();
            Thread.sleep(500);
          }
        } finally {
          cohort.cohort("cluster", "join", "n2").ok();
        }
      }
      case CLIENT_KILLED -> cohort.cohort(Duration.ofSeconds(30), "ps").ok();
    }
    cohort.awaitNodesUp(2);
  }

  private static void kill(long pid) {
    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
  }

  /** Seconds from {@code t0} until no task of the job's vhosts is stopped (T or t). */
  private static double untilNotFrozen(long[] inits, long t0) {
    long deadline = t0 + BOUND.plusSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      boolean held = false;
      for (long init : inits) {
        assertTrue(ProcessHandle.of(init).isPresent(), "vhost init " + init + " ended");
        held |= !ProcTasks.stoppedTasks(init).isEmpty();
      }
      if (!held) {
        return (System.nanoTime() - t0) / 1e9;
      }
      sleep(20);
    }
    return fail("the job is still frozen");
  }

  /** Seconds from {@code t0} until the --stop job's vhosts have ended. */
  private static double untilEnded(long[] inits, long t0) {
    for (long init : inits) {
      try {
        awaitGone(init);
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    }
    return (System.nanoTime() - t0) / 1e9;
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void awaitGone(long pid) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
      assertTrue(System.nanoTime() < deadline, "pid " + pid + " still runs");
      Thread.sleep(50);
    }
  }

  /**
   * Waits until the checkpoint is committed everywhere (listed, and its image on both nodes) or
   * listed nowhere (not listed, no image of it left, published or pending); returns which.
   */
  private static boolean awaitSettled(String job, String ckpt) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    String seen = "";
    while (System.nanoTime() < deadline) {
      boolean listed = false;
      for (JsonElement c : cohort.checkpoints(job)) {
        listed |= c.getAsJsonObject().get("checkpoint_id").getAsString().equals(ckpt);
      }
      int images = 0;
      int pending = 0;
      for (String node : List.of("n1", "n2")) {
        Path store = cohort.home.resolve("cluster/nodes/" + node + "/images");
        images += Files.isDirectory(store.resolve(ckpt)) ? count(store.resolve(ckpt)) : 0;
        pending += Files.exists(store.resolve(".pending/" + ckpt)) ? 1 : 0;
      }
      if (listed && images == 2 && pending == 0) {
        return true;
      }
      if (!listed && images == 0 && pending == 0) {
        return false;
      }
      seen = "listed " + listed + ", " + images + " images, " + pending + " pending";
      Thread.sleep(500); // each look starts a CLI (a JVM): not too often on 2 cores
    }
    return fail(ckpt + " is neither committed everywhere nor listed nowhere: " + seen);
  }

  private static int count(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return (int) s.count();
    }
  }
}
