package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * No fault leaves a job frozen (the agents' decision lease, the coordinator's recovery of open
 * epochs), and a node not registered after a coordinator restart does not block the rest.
 *
 * <p>Each case restarts its job from the previous checkpoint and leaves it running beside the next
 * cases (as the agents and the node come and go under it); the last test compares their output with
 * an uninterrupted run.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FaultLeaseIT {
  /** The agents' --decision-lease on this cluster. */
  private static final Duration LEASE = Duration.ofSeconds(10);

  private static CohortHarness cohort;
  private static Path holds;

  private static final RestartedJobs restarted = new RestartedJobs();

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("lease");
    holds = Files.createDirectories(cohort.home.resolve("fault-points"));
    cohort.extraEnv.put("COHORT_FAULT_POINTS", holds.toString());
    cohort.clusterUp(
        2,
        "cohortfl",
        "198.18.84",
        "--decision-lease",
        LEASE.toSeconds() + "s",
        "--image-policy",
        "none"); // no partner copy competes with the dumps for the disk
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  private static String run(String node, String... command) {
    List<String> args =
        new ArrayList<>(List.of("run", "--detach", "--json", "--nodes", node, "--"));
    args.addAll(List.of(command));
    return cohort.cohort(args.toArray(String[]::new)).ok().json().get("job").getAsString();
  }

  /**
   * The coordinator is SIGKILLed while CRIU writes the image of a job of about 1 GB (two ranks of
   * 512 MiB each: the dump takes seconds, and the test checks that the kill landed inside the
   * freeze) and stays down. The agent's lease lets the job go on its own; the restarted coordinator
   * finds the epoch open and aborts it; the checkpoint is listed nowhere and its image is gone; the
   * previous checkpoint restarts and the job ends as an uninterrupted run.
   */
  @Test
  @Order(1)
  void aCoordinatorKilledDuringTheDumpLeavesTheJobRunningWithinTheLease() throws Exception {
    // Long enough to run on through the kill, the lease and the coordinator's restart.
    LargeJob large = LargeJob.start(1000, 80);
    String job = large.job();
    String expected = large.expected();
    Path log = large.log();
    String first = large.first();
    long init = large.init();

    Path err = cohort.home.resolve("checkpoint-" + job + ".err");
    Process checkpoint = cohort.start(ProcessBuilder.Redirect.to(err.toFile()), "checkpoint", job);
    String second = job + ".2";
    Path dumping =
        cohort.home.resolve("cluster/nodes/n1/images/.pending/" + second + "/" + job + "-0/criu");
    awaitDumping(checkpoint, second, job + "-0");
    ProcessHandle.of(cohort.daemonPid("coordinator")).ifPresent(ProcessHandle::destroyForcibly);
    long killed = System.nanoTime();

    // The coordinator stays down: only the agent's lease can let the job go.
    boolean sawFrozen = false;
    long released = 0;
    long deadline = killed + TimeUnit.SECONDS.toNanos(60 + LEASE.toSeconds() + 15);
    while (System.nanoTime() < deadline) {
      List<String> held = ProcTasks.stoppedTasks(init);
      if (held.isEmpty() && sawFrozen) {
        released = System.nanoTime();
        break;
      }
      sawFrozen |= !held.isEmpty();
      Thread.sleep(100);
    }
    assertTrue(sawFrozen, "the kill must land while CRIU holds the job frozen");
    assertTrue(
        released != 0,
        "the job's tasks are still stopped "
            + ProcTasks.stoppedTasks(init)
            + " with the coordinator gone");
    System.out.printf(
        "FaultLeaseIT: job running again %.1f s after the coordinator's kill (lease %d s)%n",
        (released - killed) / 1e9, LEASE.toSeconds());
    assertTrue(checkpoint.waitFor(60, TimeUnit.SECONDS));
    assertNotEquals(0, checkpoint.exitValue());
    String said = Files.readString(err);
    assertTrue(said.contains("lost the coordinator") && said.contains("cohort ps " + job), said);
    int lines = Files.readString(log).split("\n").length;
    CohortHarness.awaitFile(log, "iter " + (lines + 1) * 10 + " ", Duration.ofSeconds(60));

    cohort.cohort("cluster", "start", "coordinator").ok();
    cohort.awaitNodesUp(2);
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    assertEquals(1, cohort.checkpoints(job).size(), "the aborted checkpoint is not listed");
    Path images = cohort.home.resolve("cluster/nodes/n1/images");
    deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline
        && (Files.exists(images.resolve(second)) || Files.exists(dumping.getParent()))) {
      Thread.sleep(100);
    }
    assertFalse(Files.exists(images.resolve(second)), "its published image is removed");
    assertFalse(Files.exists(dumping.getParent()), "its pending image is removed");
    assertTrue(
        Files.readString(cohort.home.resolve("cluster/logs/n1.log"))
            .contains("no word from the coordinator within"),
        "the agent's lease, not the coordinator, let the job go");

    cohort.cohort("restart", first, "--replace", "--detach").ok();
    restarted.add("coordinator killed", job, first, expected);
  }

  /**
   * The other faults of the matrix ({@link FaultMatrixIT}) in the dump of a real job of about 1 GB
   * (two ranks of 512 MiB on n1), landed while CRIU writes its image (the test sees the image's
   * first files and the job's tasks stopped): n1's agent SIGKILLed (restarted at once), n1 cut off
   * the network for longer than the lease, the client interrupted (Ctrl-C: SIGINT). The job runs
   * again (the lease, or CRIU's hook when the agent died), the checkpoint is committed everywhere
   * (the client's case) or listed nowhere, ps and kill work, the previous checkpoint restarts as an
   * uninterrupted run.
   */
  @ParameterizedTest(name = "{0} during the dump of a 1 GB job")
  @Order(3)
  @EnumSource(
      value = FaultMatrixIT.Fault.class,
      names = {"AGENT_KILLED", "NODE_CUT", "CLIENT_KILLED"})
  void aFaultDuringTheDumpOfALargeJob(FaultMatrixIT.Fault fault) throws Exception {
    LargeJob large = LargeJob.start(400, 50);
    String job = large.job();
    String expected = large.expected();
    Path log = large.log();
    String first = large.first();
    long init = large.init();
    String second = job + ".2";

    Path err = cohort.home.resolve("checkpoint-" + second + ".err");
    // A real dump of 1 GB can take only a second here: the client's case holds the agent once CRIU
    // has written the image (the job frozen), so that the Ctrl-C surely lands inside the dump.
    Path hold = holds.resolve("agent.dump.hold");
    if (fault == FaultMatrixIT.Fault.CLIENT_KILLED) {
      Files.createFile(hold);
    }
    Process checkpoint =
        cohort.startInterruptible(ProcessBuilder.Redirect.to(err.toFile()), "checkpoint", job);
    awaitDumping(checkpoint, second, job + "-0");
    assertFalse(ProcTasks.stoppedTasks(init).isEmpty(), "the fault lands in the freeze");
    long t0 = System.nanoTime();
    try {
      switch (fault) {
        case AGENT_KILLED -> {
          ProcessHandle.of(cohort.daemonPid("n1")).ifPresent(ProcessHandle::destroyForcibly);
          cohort.cohort("cluster", "start", "n1").ok();
        }
        case NODE_CUT -> {
          cohort.cohort("cluster", "cut", "n1").ok();
          try {
            long until = System.nanoTime() + LEASE.plusSeconds(2).toNanos();
            while (System.nanoTime() < until) {
              cohort.cohort(Duration.ofSeconds(30), "ps").ok(); // ps works while n1 is away
              Thread.sleep(500);
            }
          } finally {
            cohort.cohort("cluster", "join", "n1").ok();
          }
        }
        case CLIENT_KILLED -> {
          // Ctrl-C: SIGINT to the client (the cohort script execs the JVM).
          new ProcessBuilder("kill", "-INT", Long.toString(checkpoint.pid())).start().waitFor();
          assertTrue(checkpoint.waitFor(30, TimeUnit.SECONDS), "Ctrl-C ends the client");
          Files.delete(hold);
          String said = Files.readString(err);
          assertTrue(
              said.contains("interrupted: the checkpoint of job " + job + " goes on")
                  && said.contains("cohort ps " + job),
              said);
        }
        default -> throw new AssertionError(fault);
      }
    } finally {
      Files.deleteIfExists(hold); // never leave the agent held
    }
    long lines = Files.size(log);
    long deadline = t0 + TimeUnit.SECONDS.toNanos(LEASE.toSeconds() + 60);
    while (!ProcTasks.stoppedTasks(init).isEmpty() || Files.size(log) <= lines) {
      assertTrue(System.nanoTime() < deadline, fault + ": the job is still frozen");
      Thread.sleep(100);
    }
    System.out.printf(
        "FaultLeaseIT: %s during the dump of 1 GB: running again %.1f s after the fault%n",
        fault, (System.nanoTime() - t0) / 1e9);

    cohort.awaitNodesUp(2);
    boolean committed = fault == FaultMatrixIT.Fault.CLIENT_KILLED;
    Path images = cohort.home.resolve("cluster/nodes/n1/images");
    deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (cohort.checkpoints(job).size() != (committed ? 2 : 1)
        || Files.exists(images.resolve(second)) != committed
        || Files.exists(images.resolve(".pending/" + second))) {
      assertTrue(
          System.nanoTime() < deadline,
          second + " is neither committed everywhere nor listed nowhere");
      Thread.sleep(200);
    }
    assertTrue(checkpoint.waitFor(90, TimeUnit.SECONDS), "the client ends");
    if (!committed) {
      assertNotEquals(0, checkpoint.exitValue(), Files.readString(err));
    }

    assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    cohort.cohort(Duration.ofSeconds(60), "kill", job).ok();
    deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (ProcessHandle.of(init).map(ProcessHandle::isAlive).orElse(false)) {
      assertTrue(System.nanoTime() < deadline, "killed");
      Thread.sleep(100);
    }
    cohort.cohort("restart", first, "--detach").ok();
    restarted.add(fault.toString(), job, first, expected);
  }

  /** Every job restarted from its previous checkpoint ends as an uninterrupted run would. */
  @Test
  @Order(4)
  void everyPreviousCheckpointRestartedAsAnUninterruptedRun() {
    restarted.assertEachEndedAsUninterrupted(cohort, 4);
  }

  /**
   * A job of about 1 GB on n1 (two ranks of 512 MiB: its dump takes seconds), running with its
   * first checkpoint taken.
   */
  private record LargeJob(String job, String expected, Path log, String first, long init) {
    static LargeJob start(int iterations, int delayMs) throws Exception {
      cohort.awaitNodesUp(2);
      String ring = CohortHarness.RING.toString();
      String n = Integer.toString(iterations);
      String job = run("n1", "mpirun", "-np", "2", ring, n, Integer.toString(delayMs), "512");
      String expected = ReferenceRuns.plainMpirun("mpirun", "-np", "2", ring, n, "0", "512");
      Path log = cohort.clusterLog("n1", job);
      CohortHarness.awaitFile(log, "iter 20 ", Duration.ofSeconds(120));
      String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
      return new LargeJob(job, expected, log, first, cohort.vhostInit("n1", job + "-0"));
    }
  }

  /** Waits until CRIU has written the first files of {@code vhost}'s image for {@code ckpt}. */
  private static void awaitDumping(Process checkpoint, String ckpt, String vhost) throws Exception {
    Path dumping =
        cohort.home.resolve("cluster/nodes/n1/images/.pending/" + ckpt + "/" + vhost + "/criu");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline && checkpoint.isAlive() && count(dumping) < 3) {
      Thread.sleep(5);
    }
    assertTrue(checkpoint.isAlive() && count(dumping) >= 3, "the checkpoint must be dumping");
  }

  /**
   * After a coordinator restart, n1's agent is down and has not registered: ps, checkpoints, nodes
   * and logs work and show n1's vhost as unknown; kill of the job there is recorded and completed
   * once n1 is back.
   */
  @Test
  @Order(2)
  void psAndKillWorkWhileANodeHasNotRegisteredAfterACoordinatorRestart() throws Exception {
    cohort.awaitNodesUp(2);
    String[] command = CohortHarness.cRing(2, 3000, 20);
    String there = run("n1", command);
    String here = run("n2", command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", there), "iter 20 ", Duration.ofSeconds(90));
    CohortHarness.awaitFile(cohort.clusterLog("n2", here), "iter 20 ", Duration.ofSeconds(90));
    long init = cohort.vhostInit("n1", there + "-0");

    cohort.cohort("cluster", "stop", "n1").ok();
    ProcessHandle.of(cohort.daemonPid("coordinator")).ifPresent(ProcessHandle::destroyForcibly);
    cohort.cohort("cluster", "start", "coordinator").ok();
    cohort.awaitNodesUp(1);

    CohortHarness.Result ps = cohort.cohort("ps").ok();
    assertTrue(ps.out().contains(there + "-0@n1(unknown)"), ps.out());
    assertTrue(ps.out().contains(here + "-0@n2 "), ps.out());
    JsonObject unknown = cohort.job(there);
    assertEquals("n1", unknown.getAsJsonArray("unreachable_nodes").get(0).getAsString());
    cohort.cohort("checkpoints").ok();
    assertTrue(cohort.cohort("nodes").ok().out().contains("down"));
    assertTrue(cohort.cohort("logs", here).ok().out().contains("iter 20 "));

    CohortHarness.Result kill = cohort.cohort("kill", there).ok();
    assertTrue(kill.err().contains("on node n1"), kill.err());
    assertEquals("JOB_STATE_KILLED", cohort.state(there));
    assertTrue(ProcessHandle.of(init).map(ProcessHandle::isAlive).orElse(false), "n1 is away");

    cohort.cohort("cluster", "start", "n1").ok();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (ProcessHandle.of(init).map(ProcessHandle::isAlive).orElse(false)) {
      assertTrue(System.nanoTime() < deadline, "the kill is completed once n1 is back");
      Thread.sleep(100);
    }
    cohort.cohort("kill", here).ok();
  }

  private static long count(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.count();
    }
  }
}
