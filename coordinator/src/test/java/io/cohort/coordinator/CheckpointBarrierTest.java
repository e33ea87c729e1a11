package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobState;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The barrier state machine against scripted agents served over in-process gRPC: the order of the
 * phases, the commit record, and aborts on failures and timeouts. A progress listener or client
 * that fails midway: {@link CheckpointBarrierListenerTest}.
 */
class CheckpointBarrierTest extends CheckpointBarrierFixture {
  private CheckpointInfo run(
      AgentDirectory agents, Catalog catalog, boolean stop, BarrierConfig config, String... vhosts)
      throws Exception {
    List<String> phases = Collections.synchronizedList(new ArrayList<>());
    return barrier(agents, catalog, stop, config, (phase, msg) -> phases.add(phase.name()), vhosts)
        .get(30, TimeUnit.SECONDS);
  }

  @Test
  void continueResumesAndSealsOnceEveryVhostIsCapturedThenCommits() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    AgentDirectory agents = workingAgents();
    CheckpointInfo info = run(agents, catalog, false, BarrierConfig.defaults(), "7-0@n1", "7-1@n2");

    assertEquals("7.3", info.getCheckpointId());
    assertEquals(2000, info.getImageBytes());
    assertEquals(Map.of("7-0", "sha-7-0", "7-1", "sha-7-1"), info.getManifestSha256Map());
    assertEquals(150, info.getTimings().getFreezeMs());
    assertTrue(catalog.checkpoint("7.3").isPresent(), "the record is the commit");
    // Both dumps complete before any resume or seal; both seals before any finish.
    int lastDump = Math.max(calls.indexOf("dump 7-0"), calls.indexOf("dump 7-1"));
    int firstResume = Math.min(calls.indexOf("resume 7-0"), calls.indexOf("resume 7-1"));
    int firstSeal = Math.min(calls.indexOf("seal 7-0"), calls.indexOf("seal 7-1"));
    int lastSeal = Math.max(calls.indexOf("seal 7-0"), calls.indexOf("seal 7-1"));
    int firstFinish =
        Math.min(
            calls.indexOf("finish 7-0 COMMIT_RESUME"), calls.indexOf("finish 7-1 COMMIT_RESUME"));
    assertTrue(lastDump < firstResume && firstResume >= 0, calls.toString());
    assertTrue(lastDump < firstSeal && firstSeal >= 0, calls.toString());
    assertTrue(lastSeal < firstFinish && firstFinish >= 0, calls.toString());
  }

  @Test
  void stopNeverResumesAndStopsOnlyAfterTheCommit() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    AgentDirectory agents = agents(Map.of("n1", agent("n1", Set.of(), null)));
    CheckpointInfo info = run(agents, catalog, true, BarrierConfig.defaults(), "7-0@n1");
    assertTrue(info.getStoppedJob());
    assertEquals(
        List.of("prepare [7-0]", "dump 7-0 stop", "seal 7-0", "finish 7-0 COMMIT_STOP"), calls);
  }

  @Test
  void aFailedDumpAbortsEveryVhostAndCommitsNothing() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    AgentDirectory agents =
        agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of("7-1"), null)));
    ExecutionException e =
        assertThrows(
            ExecutionException.class,
            () -> run(agents, catalog, false, BarrierConfig.defaults(), "7-0@n1", "7-1@n2"));
    CohortException ce = assertInstanceOf(CohortException.class, e.getCause());
    assertEquals(CohortException.Kind.RESOURCE_EXHAUSTED, ce.kind());
    assertTrue(
        ce.getMessage().contains("disk full") && ce.getMessage().contains("carries on"),
        ce.getMessage());
    assertFalse(catalog.checkpoint("7.3").isPresent());
    assertTrue(
        calls.contains("finish 7-0 ABORT") && calls.contains("finish 7-1 ABORT"), calls.toString());
    assertFalse(
        calls.stream().anyMatch(c -> c.startsWith("resume") || c.startsWith("seal")),
        calls.toString());
  }

  @Test
  void aDumpThatTakesTooLongTimesOutAndAborts() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    CountDownLatch hang = new CountDownLatch(1);
    AgentDirectory agents = agents(Map.of("n1", agent("n1", Set.of(), hang)));
    BarrierConfig quick =
        new BarrierConfig(
            Duration.ofSeconds(5),
            Duration.ofMillis(300),
            Duration.ofSeconds(5),
            Duration.ofSeconds(6));
    try {
      ExecutionException e =
          assertThrows(
              ExecutionException.class, () -> run(agents, catalog, false, quick, "7-0@n1"));
      CohortException ce = assertInstanceOf(CohortException.class, e.getCause());
      assertEquals(CohortException.Kind.DEADLINE_EXCEEDED, ce.kind());
      assertTrue(calls.contains("finish 7-0 ABORT"), calls.toString());
      assertFalse(catalog.checkpoint("7.3").isPresent());
    } finally {
      hang.countDown();
    }
  }

  @Test
  void anAgentThatGoesSilentAbortsTheEpochBeforeThePhaseTimesOut() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    CountDownLatch hang = new CountDownLatch(1);
    try (RegisteredAgents registered = new RegisteredAgents()) {
      registered.serve(new ScriptedAgent("n1", calls, Set.of(), null));
      registered.serve(new ScriptedAgent("n2", calls, Set.of(), hang));
      registered.directory.heartbeat(registered.beat("n1"));
      registered.directory.heartbeat(registered.beat("n2"));
      // n1 keeps beating; n2 falls silent while its dump hangs (its node cut off, say).
      ScheduledExecutorService beats = Executors.newSingleThreadScheduledExecutor();
      beats.scheduleAtFixedRate(
          () -> registered.directory.heartbeat(registered.beat("n1")),
          50,
          50,
          TimeUnit.MILLISECONDS);
      BarrierConfig config =
          new BarrierConfig(
              Duration.ofSeconds(30),
              Duration.ofMinutes(10),
              Duration.ofSeconds(30),
              Duration.ofMillis(500));
      try {
        CompletableFuture<CheckpointInfo> f =
            barrier(
                registered.directory,
                catalog,
                false,
                config,
                (phase, msg) -> {},
                "7-0@n1",
                "7-1@n2");
        CohortException e = abortedPromptly(f);
        assertEquals(CohortException.Kind.UNAVAILABLE, e.kind());
        assertTrue(e.getMessage().contains("node n2 has not been heard"), e.getMessage());
        assertTrue(calls.contains("finish 7-0 ABORT"), calls.toString());
        assertFalse(catalog.checkpoint("7.3").isPresent());
      } finally {
        beats.shutdownNow();
      }
    } finally {
      hang.countDown();
    }
  }

  @Test
  void aStopVhostWhoseAgentMissedTheCommitIsEndedAllTheSame() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    ScriptedAgent n2 = agent("n2", Set.of(), null);
    n2.failFinish = true; // its agent died after the seal: CRIU's hook let the vhost go on
    AgentDirectory agents = agents(Map.of("n1", agent("n1", Set.of(), null), "n2", n2));
    try (Coordinator coordinator = coordinatorOfRunningJob(catalog, agents)) {
      assertEquals("7.3", coordinator.checkpoint("7", true, (p, m) -> {}).getCheckpointId());
    }
    assertEquals(JobState.JOB_STATE_STOPPED, catalog.job("7").getInfo().getState());
    assertTrue(calls.contains("finish 7-1 COMMIT_STOP"), calls.toString());
    assertTrue(calls.contains("kill 7-1"), "the vhost that runs on is ended: " + calls);
    assertFalse(calls.contains("kill 7-0"), "n1 stopped its vhost itself: " + calls);
    assertEquals(0, catalog.job("7").getVhostsToEndCount(), "nothing is left to end");
  }
}
