package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Daemons failing around checkpoints on the emulated cluster. */
class ClusterFaultsIT {
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("faults");
    cohort.clusterUp(2, "cohortft", "198.18.79");
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  private static String run(String node, String[] command) {
    String[] args = new String[command.length + 6];
    System.arraycopy(
        new String[] {"run", "--detach", "--json", "--nodes", node, "--"}, 0, args, 0, 6);
    System.arraycopy(command, 0, args, 6, command.length);
    return cohort.cohort(args).ok().json().get("job").getAsString();
  }

  @Test
  void aRestartedCoordinatorStillKnowsEveryCheckpoint() throws Exception {
    String[] command =
        CohortHarness.cRing(3, 600, 20); // runs on through two checkpoints on a busy machine
    String expected = ReferenceRuns.reference(command);
    String job = run("n1", command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    String stop = cohort.checkpoint(job, true).get("checkpoint").getAsString();

    cohort.cohort("cluster", "stop", "coordinator").ok();
    CohortHarness.Result noCoordinator = cohort.cohort("ps");
    assertNotEquals(0, noCoordinator.rc());
    assertTrue(noCoordinator.err().contains("cannot reach the coordinator"), noCoordinator.err());
    cohort.cohort("cluster", "start", "coordinator").ok();
    cohort.awaitNodesUp(2);

    assertEquals(2, cohort.checkpoints(job).size());
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    cohort.cohort("restart", stop, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
    cohort.cohort("restart", first, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
  }

  /**
   * A coordinator that dies between the seal (the image is published) and the record leaves an
   * image no record lists: here its record is taken away while the coordinator is down, which is
   * the same state. When the agents register with the restarted coordinator, it sweeps that image
   * and keeps the committed one.
   */
  @Test
  void anImageNoRecordListsIsSweptWhenTheAgentsRegisterAgain() throws Exception {
    String[] command = CohortHarness.cRing(3, 400, 20);
    String job = run("n1", command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String kept = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    String orphan = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    Path cluster = cohort.home.resolve("cluster");
    Path keptImage = cluster.resolve("nodes/n1/images/" + kept + "/" + job + "-0");
    Path orphanImage = cluster.resolve("nodes/n1/images/" + orphan + "/" + job + "-0");
    assertTrue(Files.isDirectory(orphanImage), orphanImage.toString());

    cohort.cohort("cluster", "stop", "coordinator").ok();
    Files.delete(cluster.resolve("coordinator/checkpoints/" + orphan + ".json"));
    cohort.cohort("cluster", "start", "coordinator").ok();
    cohort.awaitNodesUp(2);

    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (Files.exists(orphanImage) && System.nanoTime() < deadline) {
      Thread.sleep(100); // the sweep runs beside the heartbeat that registered the node
    }
    assertTrue(!Files.exists(orphanImage), "the orphan image was not swept: " + orphanImage);
    assertTrue(Files.isDirectory(keptImage), "a committed image was swept: " + keptImage);
    assertTrue(
        Files.readString(cluster.resolve("logs/coordinator.log"))
            .contains(
                "removed orphan image " + orphan + "/" + job + "-0 on n1: no checkpoint record"),
        "the removal is logged");
    assertEquals(1, cohort.checkpoints(job).size());
    assertEquals(0, cohort.await(job));
  }

  @Test
  void anAgentKilledDuringTheDumpAbortsTheEpochAndTheJobGoesOn() throws Exception {
    String[] command = CohortHarness.cRing(3, 500, 20);
    String expected = ReferenceRuns.reference(command);
    String job = run("n2", command);
    CohortHarness.awaitFile(cohort.clusterLog("n2", job), "iter 40 ", Duration.ofSeconds(90));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();

    killAgentDuringDump(job, "n2", false);

    // The job goes on without its agent (CRIU's hook lets it go when the agent dies).
    int lines = Files.readString(cohort.clusterLog("n2", job)).split("\n").length;
    CohortHarness.awaitFile(
        cohort.clusterLog("n2", job), "iter " + (lines - 1) * 10 + " ", Duration.ofSeconds(90));

    cohort.cohort("cluster", "start", "n2").ok();
    assertEquals(1, cohort.checkpoints(job).size(), "the aborted checkpoint is not listed");
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
    cohort.cohort("restart", first, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job), "the previous checkpoint is still restartable");
  }

  /**
   * The same with --stop: the epoch is aborted, and the job is stopped all the same (as asked) with
   * its previous checkpoint as the latest. Its vhost on the crashed node cannot be ended while the
   * agent is down (CRIU's hook let it go on); it is ended as soon as the agent is back, and the
   * previous checkpoint restarts.
   */
  @Test
  void anAgentKilledDuringAStopDumpStopsTheJobAtItsPreviousCheckpoint() throws Exception {
    String[] command = CohortHarness.cRing(3, 500, 20);
    String expected = ReferenceRuns.reference(command);
    String job = run("n2", command);
    CohortHarness.awaitFile(cohort.clusterLog("n2", job), "iter 40 ", Duration.ofSeconds(90));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    long init =
        JsonParser.parseString(
                Files.readString(
                    cohort.home.resolve("cluster/nodes/n2/vhosts/" + job + "-0/record.json")))
            .getAsJsonObject()
            .get("pid")
            .getAsLong();

    String err = killAgentDuringDump(job, "n2", true);
    assertTrue(
        err.contains("was stopped all the same")
            && err.contains("cohort restart " + first)
            && err.contains("on node n2 could not be reached"),
        err);
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    assertEquals(first, cohort.job(job).get("latest_checkpoint").getAsString());
    CohortHarness.Result early = cohort.cohort("restart", first, "--detach");
    assertNotEquals(0, early.rc(), "no restart while the old vhost may still run");
    assertTrue(early.err().contains("cannot restart yet"), early.err());

    cohort.cohort("cluster", "start", "n2").ok();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (ProcessHandle.of(init).map(ProcessHandle::isAlive).orElse(false)) {
      assertTrue(System.nanoTime() < deadline, "the vhost is ended once its agent is back");
      Thread.sleep(100);
    }
    assertEquals(1, cohort.checkpoints(job).size(), "the aborted checkpoint is not listed");
    cohort.cohort("restart", first, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job), "the previous checkpoint restarts");
  }

  /**
   * Starts `cohort checkpoint JOB [--stop]`, SIGKILLs the agent of {@code node} while CRIU is
   * writing the vhost's image, and returns the checkpoint's stderr (it must fail).
   */
  private static String killAgentDuringDump(String job, String node, boolean stop)
      throws Exception {
    Path err = cohort.home.resolve("checkpoint-" + job + ".err");
    Process checkpoint =
        stop
            ? cohort.start(ProcessBuilder.Redirect.to(err.toFile()), "checkpoint", job, "--stop")
            : cohort.start(ProcessBuilder.Redirect.to(err.toFile()), "checkpoint", job);
    Path dumping =
        cohort.home.resolve(
            "cluster/nodes/" + node + "/images/.pending/" + job + ".2/" + job + "-0/criu");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline && checkpoint.isAlive() && count(dumping) < 3) {
      Thread.sleep(5);
    }
    assertTrue(checkpoint.isAlive(), "the checkpoint must still be dumping");
    long agent = cohort.daemonPid(node);
    ProcessHandle.of(agent).ifPresent(ProcessHandle::destroyForcibly); // a crash, not a stop
    assertTrue(checkpoint.waitFor(60, TimeUnit.SECONDS));
    assertNotEquals(0, checkpoint.exitValue(), "the epoch is aborted");
    return Files.readString(err);
  }

  private static long count(Path dir) throws Exception {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.count();
    }
  }
}
