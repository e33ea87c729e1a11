package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
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
    System.arraycopy(new String[] {"run", "--detach", "--json", "--nodes", node, "--"}, 0, args,
        0, 6);
    System.arraycopy(command, 0, args, 6, command.length);
    return cohort.cohort(args).ok().json().get("job").getAsString();
  }

  private static void awaitNodesUp(int n) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      CohortHarness.Result r = cohort.cohort("nodes", "--json");
      if (r.rc() == 0) {
        long up = 0;
        for (JsonElement e : JsonParser.parseString(r.out()).getAsJsonArray()) {
          JsonObject o = e.getAsJsonObject();
          up += o.has("alive") && o.get("alive").getAsBoolean() ? 1 : 0;
        }
        if (up == n) {
          return;
        }
      }
      Thread.sleep(250);
    }
    throw new AssertionError("nodes did not come back up");
  }

  @Test
  void aRestartedCoordinatorStillKnowsEveryCheckpoint() throws Exception {
    String[] command = CohortHarness.cRing(3, 400, 20);
    String expected = CohortHarness.reference(command);
    String job = run("n1", command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    String stop = cohort.checkpoint(job, true).get("checkpoint").getAsString();

    cohort.cohort("cluster", "stop", "coordinator").ok();
    CohortHarness.Result noCoordinator = cohort.cohort("ps");
    assertNotEquals(0, noCoordinator.rc());
    assertTrue(noCoordinator.err().contains("cannot reach the coordinator"), noCoordinator.err());
    cohort.cohort("cluster", "start", "coordinator").ok();
    awaitNodesUp(2);

    assertEquals(2, cohort.checkpoints(job).size());
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    cohort.cohort("restart", stop, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
    cohort.cohort("restart", first, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
  }

  @Test
  void anAgentKilledDuringTheDumpAbortsTheEpochAndTheJobGoesOn() throws Exception {
    String[] command = CohortHarness.cRing(3, 500, 20);
    String expected = CohortHarness.reference(command);
    String job = run("n2", command);
    CohortHarness.awaitFile(cohort.clusterLog("n2", job), "iter 40 ", Duration.ofSeconds(90));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();

    Process checkpoint = cohort.start("checkpoint", job);
    Path dumping = cohort.home.resolve("cluster/nodes/n2/images/.pending/" + job + ".2/"
        + job + "-0/criu");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline && checkpoint.isAlive() && count(dumping) < 3) {
      Thread.sleep(5);
    }
    assertTrue(checkpoint.isAlive(), "the checkpoint must still be dumping");
    long agent = agentPid("n2");
    ProcessHandle.of(agent).ifPresent(ProcessHandle::destroyForcibly); // a crash, not a stop
    assertTrue(checkpoint.waitFor(60, TimeUnit.SECONDS));
    assertNotEquals(0, checkpoint.exitValue(), "the epoch is aborted");

    // The job goes on without its agent (CRIU's hook lets it go when the agent dies).
    int lines = Files.readString(cohort.clusterLog("n2", job)).split("\n").length;
    CohortHarness.awaitFile(cohort.clusterLog("n2", job), "iter " + (lines - 1) * 10 + " ",
        Duration.ofSeconds(90));

    cohort.cohort("cluster", "start", "n2").ok();
    assertEquals(1, cohort.checkpoints(job).size(), "the aborted checkpoint is not listed");
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
    cohort.cohort("restart", first, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job), "the previous checkpoint is still restartable");
  }

  private static long count(Path dir) throws Exception {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.count();
    }
  }

  private static long agentPid(String name) throws Exception {
    for (JsonElement e : JsonParser.parseString(Files.readString(
        cohort.home.resolve("cluster/cluster.json"))).getAsJsonObject()
        .getAsJsonArray("processes")) {
      if (e.getAsJsonObject().get("name").getAsString().equals(name)) {
        return e.getAsJsonObject().get("pid").getAsLong();
      }
    }
    throw new AssertionError("no daemon " + name);
  }
}
