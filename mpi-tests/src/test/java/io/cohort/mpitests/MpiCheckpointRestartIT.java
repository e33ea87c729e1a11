package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Real Open MPI jobs (C and Java) run under Cohort, checkpointed with real CRIU and restarted; the
 * final output must equal a plain, uninterrupted mpirun run of the same program.
 */
class MpiCheckpointRestartIT {
  private static final Duration START = Duration.ofSeconds(60);
  private CohortHarness cohort;

  @BeforeEach
  void setUp(TestInfo info) throws Exception {
    cohort = new CohortHarness(info.getTestMethod().orElseThrow().getName());
  }

  @AfterEach
  void tearDown() throws Exception {
    cohort.close();
  }

  /** Run, checkpoint mid-run with --stop, restart, compare with an uninterrupted run. */
  private void stopAndRestart(String[] command, String midRunMarker) throws Exception {
    String expected = ReferenceRuns.reference(command);
    String job = cohort.runDetached(command);
    cohort.awaitOutput(job, midRunMarker, START);

    JsonObject ckpt = cohort.checkpoint(job, true);
    System.out.println("checkpoint --stop: " + ckpt);
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    String atStop = cohort.log(job);
    assertFalse(atStop.contains("result"), "the checkpoint must be taken mid-run:\n" + atStop);

    JsonObject restart =
        cohort
            .cohort("restart", ckpt.get("checkpoint").getAsString(), "--detach", "--json")
            .ok()
            .json();
    System.out.println("restart: " + restart);
    assertEquals(2, restart.get("incarnation").getAsInt());
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
  }

  @Test
  void cRingOverSharedMemoryStopAndRestart() throws Exception {
    stopAndRestart(CohortHarness.cRing(3, 300, 20), "iter 60 ");
  }

  @Test
  void cRingOverTcpStopAndRestart() throws Exception {
    stopAndRestart(
        CohortHarness.cRing(
            3, 300, 20, "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"),
        "iter 60 ");
  }

  @Test
  void javaRingStopAndRestart() throws Exception {
    stopAndRestart(CohortHarness.javaRing(2, 300, 20), "iter 60 ");
  }

  @Test
  void checkpointAndContinueThenRestartAfterExit() throws Exception {
    // Runs on through the checkpoint and the state query (two CLI processes) on a busy machine.
    String[] command = CohortHarness.cRing(3, 500, 20);
    String expected = ReferenceRuns.reference(command);
    String job = cohort.runDetached(command);
    cohort.awaitOutput(job, "iter 50 ", START);

    JsonObject ckpt = cohort.checkpoint(job, false);
    System.out.println("checkpoint (continue): " + ckpt);
    assertEquals("JOB_STATE_RUNNING", cohort.state(job), "the job must carry on");
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job), "a checkpoint must not disturb the job");

    // The same checkpoint restarts the job after it finished: the log rolls back to the
    // checkpoint and the job produces the same ending again.
    cohort.cohort("restart", job, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
  }

  @Test
  void fiveCheckpointsThenRestartFromTheThird() throws Exception {
    // Long enough to still run after five checkpoints (each is a new CLI process, 1-2 s, up to 4
    // on a busy machine).
    String[] command = CohortHarness.cRing(3, 1400, 20);
    String expected = ReferenceRuns.reference(command);
    String job = cohort.runDetached(command);
    cohort.awaitOutput(job, "iter 20 ", START);
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      ids.add(cohort.checkpoint(job, false).get("checkpoint").getAsString());
    }
    assertEquals(5, cohort.checkpoints(job).size());
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));

    String third = ids.get(2);
    // Still running: a plain restart is refused, --replace ends the running incarnation.
    CohortHarness.Result refused = cohort.cohort("restart", third);
    assertTrue(refused.rc() != 0 && refused.err().contains("--replace"), refused.err());
    cohort.cohort("restart", third, "--replace", "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
    assertEquals(5, cohort.checkpoints(job).size(), "restarting must not change the catalog");
  }

  @Test
  void restartWorksFromFreshAgentAndCliProcesses() throws Exception {
    // Every `cohort` command is a new process that builds its coordinator and agent from the
    // state on disk. Here the processes that ran and checkpointed the job are gone (and the
    // test checks it) before a new one restarts it.
    String[] command = CohortHarness.cRing(3, 250, 20);
    String expected = ReferenceRuns.reference(command);
    String job = cohort.runDetached(command);
    cohort.awaitOutput(job, "iter 40 ", START);
    String ckpt = cohort.checkpoint(job, true).get("checkpoint").getAsString();
    // Only this test's (its Cohort home): another class may run its own commands meanwhile.
    String home = "COHORT_HOME=" + cohort.home + "\0";
    assertTrue(
        ProcessHandle.current()
            .children()
            .noneMatch(
                p ->
                    p.isAlive()
                        && p.info().commandLine().orElse("").contains("cohort.jar")
                        && environ(p).contains(home)),
        "no cohort CLI/agent process of the test may survive between commands");
    cohort.cohort("restart", ckpt, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
  }

  /**
   * `cohort watch` (the WatchJob stream) reports each change as it happens: running, stopped by a
   * checkpoint, running again after the restart (next incarnation), exited; then it ends.
   */
  @Test
  void watchReportsEveryChangeUntilTheJobEnds() throws Exception {
    String job = cohort.runDetached(CohortHarness.cRing(2, 300, 20));
    cohort.awaitOutput(job, "iter 40 ", START);
    java.nio.file.Path events = cohort.home.resolve("watch.jsonl");
    Process watch =
        cohort.start(
            ProcessBuilder.Redirect.to(events.toFile()),
            ProcessBuilder.Redirect.DISCARD,
            "watch",
            job,
            "--json");
    try {
      CohortHarness.awaitFile(events, "JOB_STATE_RUNNING", START);
      String ckpt = cohort.checkpoint(job, true).get("checkpoint").getAsString();
      CohortHarness.awaitFile(events, "JOB_STATE_STOPPED", START);
      cohort.cohort("restart", ckpt, "--detach").ok();
      assertEquals(0, cohort.await(job));
      assertTrue(
          watch.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "watch ends with the job");
      assertEquals(0, watch.exitValue());
      List<String> states = new ArrayList<>();
      JsonObject last = null;
      for (String line : java.nio.file.Files.readAllLines(events)) {
        last =
            com.google.gson.JsonParser.parseString(line).getAsJsonObject().getAsJsonObject("job");
        String state = last.get("state").getAsString();
        if (states.isEmpty() || !states.get(states.size() - 1).equals(state)) {
          states.add(state);
        }
      }
      assertEquals(
          List.of(
              "JOB_STATE_RUNNING", "JOB_STATE_STOPPED", "JOB_STATE_RUNNING", "JOB_STATE_EXITED"),
          states);
      assertEquals(2, last.get("incarnation").getAsInt());
      assertEquals(ckpt, last.get("latest_checkpoint").getAsString());
    } finally {
      watch.destroyForcibly();
    }
  }

  @Test
  void attachedRunStreamsOutputAndReturnsExitStatus() {
    CohortHarness.Result r =
        cohort.cohort(
            "run", "--", "sh", "-c", "echo out-line; echo err-line >&2; hostname; exit 7");
    assertEquals(7, r.rc(), r.err());
    assertTrue(r.out().contains("out-line") && !r.out().contains("err-line"), r.out());
    assertTrue(r.err().contains("err-line"), "the job's stderr on stderr: " + r.err());
    assertTrue(r.out().contains("job"), "runs in a vhost with its own hostname: " + r.out());
  }

  /** The environment a process started with ("" once it has ended). */
  private static String environ(ProcessHandle p) {
    try {
      return java.nio.file.Files.readString(
          java.nio.file.Path.of("/proc/" + p.pid() + "/environ"),
          java.nio.charset.StandardCharsets.ISO_8859_1);
    } catch (java.io.IOException gone) {
      return "";
    }
  }
}
