package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.EpochOutcome;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.OpenEpoch;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.VhostPlacement;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Epochs recorded open before any agent freezes, and settled by a coordinator that finds one left
 * by its predecessor: the outcome decided from the checkpoint record, applied to the job, and told
 * to every agent as its node registers. Agents are learnt from heartbeats, as by the daemon.
 */
class EpochRecoveryTest {
  @TempDir Path dir;

  private Catalog catalog;
  private RegisteredAgents agents;
  private Coordinator coordinator;
  private final CountDownLatch hang = new CountDownLatch(1);

  @BeforeEach
  void setUp() throws Exception {
    catalog = new Catalog(dir, TestKey.KEY);
    agents = new RegisteredAgents();
    agents.serve(new ScriptedAgent("n1", agents.calls, Set.of(), null));
    agents.serve(new ScriptedAgent("n2", agents.calls, Set.of(), hang));
  }

  @AfterEach
  void tearDown() {
    hang.countDown();
    if (coordinator != null) {
      coordinator.close();
    }
    agents.close();
  }

  /** A coordinator starting on the catalog as it is now (its agents not registered yet). */
  private Coordinator start() {
    coordinator = agents.coordinator(catalog);
    return coordinator;
  }

  private static JobRecord running(long nextEpoch) {
    JobInfo.Builder info = JobInfo.newBuilder().setJobId("7").setState(JobState.JOB_STATE_RUNNING);
    info.addVhosts(VhostPlacement.newBuilder().setVhostId("7-0").setNode("n1"));
    info.addVhosts(VhostPlacement.newBuilder().setVhostId("7-1").setNode("n2"));
    return JobRecord.newBuilder().setInfo(info).setNextEpoch(nextEpoch).build();
  }

  /** Job 7 as a coordinator that stopped during the barrier of epoch 3 left it. */
  private JobRecord leftOpen(boolean stop) {
    JobRecord rec = running(4);
    return rec.toBuilder()
        .setOpenEpoch(
            OpenEpoch.newBuilder()
                .setEpoch(3)
                .setStop(stop)
                .addAllVhosts(rec.getInfo().getVhostsList()))
        .build();
  }

  private static CheckpointInfo record(long epoch) {
    return CheckpointInfo.newBuilder()
        .setCheckpointId("7." + epoch)
        .setJobId("7")
        .setEpoch(epoch)
        .addVhosts(VhostPlacement.newBuilder().setVhostId("7-0").setNode("n1"))
        .addVhosts(VhostPlacement.newBuilder().setVhostId("7-1").setNode("n2"))
        .build();
  }

  private static void await(BooleanSupplier done, String what) throws InterruptedException {
    for (int i = 0; i < 1000 && !done.getAsBoolean(); i++) {
      Thread.sleep(10);
    }
    assertTrue(done.getAsBoolean(), what);
  }

  @Test
  void theEpochIsRecordedOpenBeforeAnyAgentIsAskedAndClosedWithItsBarrier() throws Exception {
    catalog.saveJob(running(3));
    start();
    hang.countDown();
    AtomicReference<JobRecord> seen = new AtomicReference<>();
    agents.byNode.get("n1").onPrepare = () -> seen.set(catalog.job("7"));
    coordinator.heartbeat(agents.beat("n1"));
    coordinator.heartbeat(agents.beat("n2"));
    CheckpointInfo info = coordinator.checkpoint("7", false, (p, m) -> {});
    assertEquals("7.3", info.getCheckpointId());
    assertEquals(3, seen.get().getOpenEpoch().getEpoch(), "open before the first agent is asked");
    assertEquals(4, seen.get().getNextEpoch(), "the counter is past it before it is used");
    assertFalse(catalog.job("7").hasOpenEpoch(), "closed with its barrier");
    // Every request that leaves a vhost waiting says how long the coordinator may take.
    for (Object r : agents.byNode.get("n1").requests) {
      long within =
          r instanceof DumpVhostRequest d
              ? d.getDecisionWithinMs()
              : r instanceof SealImageRequest s
                  ? s.getDecisionWithinMs()
                  : ((io.cohort.proto.v1.ResumeVhostRequest) r).getDecisionWithinMs();
      assertTrue(within >= BarrierConfig.defaults().dump().toMillis(), r.toString());
    }
  }

  @Test
  void anEpochLeftOpenIsAbortedWithEachAgentAsItRegistersAndItsNumberIsNeverReused()
      throws Exception {
    catalog.saveJob(leftOpen(false));
    start();
    // Decided at once (no record: aborted), though no agent has registered yet.
    await(
        () -> catalog.job("7").getOpenEpoch().getOutcome() == EpochOutcome.EPOCH_OUTCOME_ABORTED,
        "decided at the start");
    assertEquals(JobState.JOB_STATE_RUNNING, coordinator.job("7").getState());
    CohortException early =
        assertThrows(CohortException.class, () -> coordinator.checkpoint("7", false, (p, m) -> {}));
    assertTrue(early.getMessage().contains("have not been told"), early.getMessage());

    coordinator.heartbeat(agents.beat("n1"));
    await(() -> agents.calls.contains("finish 7-0 ABORT"), "n1 told when it registers");
    assertFalse(agents.calls.contains("finish 7-1 ABORT"));
    coordinator.heartbeat(agents.beat("n2"));
    await(() -> !catalog.job("7").hasOpenEpoch(), "settled once every agent was told");
    assertTrue(agents.calls.contains("finish 7-1 ABORT"));
    assertFalse(catalog.checkpoint("7.3").isPresent());

    hang.countDown();
    assertEquals("7.4", coordinator.checkpoint("7", false, (p, m) -> {}).getCheckpointId());
  }

  @Test
  void aStopEpochLeftOpenWhoseRecordWasWrittenIsCommittedAndTheJobStopsThere() throws Exception {
    catalog.saveJob(leftOpen(true));
    catalog.commitCheckpoint(record(3));
    start();
    coordinator.heartbeat(agents.beat("n1"));
    coordinator.heartbeat(agents.beat("n2"));
    await(() -> !catalog.job("7").hasOpenEpoch(), "settled");
    JobInfo job = coordinator.job("7");
    assertEquals(JobState.JOB_STATE_STOPPED, job.getState());
    assertEquals("7.3", job.getLatestCheckpoint());
    for (String v : List.of("7-0", "7-1")) {
      await(() -> agents.calls.contains("kill " + v), v + " ended where it still runs");
      assertTrue(
          agents.calls.indexOf("finish " + v + " COMMIT_STOP") < agents.calls.indexOf("kill " + v),
          "told the commit before being ended: " + agents.calls);
    }
    await(() -> catalog.job("7").getVhostsToEndCount() == 0, "nothing left to end");
  }

  @Test
  void aStopEpochLeftOpenWithoutARecordStopsTheJobAtItsPreviousCheckpoint() throws Exception {
    catalog.saveJob(leftOpen(true));
    catalog.commitCheckpoint(record(2));
    start();
    await(() -> coordinator.job("7").getState() == JobState.JOB_STATE_STOPPED, "stopped");
    assertEquals("7.2", coordinator.job("7").getLatestCheckpoint());
    coordinator.heartbeat(agents.beat("n1"));
    coordinator.heartbeat(agents.beat("n2"));
    await(() -> !catalog.job("7").hasOpenEpoch(), "settled");
    assertTrue(agents.calls.containsAll(List.of("finish 7-0 ABORT", "finish 7-1 ABORT")));
    await(() -> agents.calls.containsAll(List.of("kill 7-0", "kill 7-1")), "ended");
  }

  @Test
  void anAgentThatEndsItsDumpOnItsOwnAbortsTheRunningBarrierAtOnce() throws Exception {
    catalog.saveJob(running(3));
    start();
    coordinator.heartbeat(agents.beat("n1"));
    coordinator.heartbeat(agents.beat("n2"));
    CompletableFuture<CheckpointInfo> ckpt =
        CompletableFuture.supplyAsync(() -> coordinator.checkpoint("7", false, (p, m) -> {}));
    await(() -> agents.calls.contains("dump 7-1"), "n2 dumping (held)");
    // The barrier runs here: a query neither settles nor aborts it.
    coordinator.jobs();
    assertTrue(catalog.job("7").hasOpenEpoch());
    assertFalse(
        agents.calls.stream().anyMatch(c -> c.startsWith("finish")), agents.calls.toString());

    coordinator.heartbeat(
        agents.beat(
            "n1",
            AbandonedDump.newBuilder()
                .setCheckpointId("7.3")
                .setVhostId("7-0")
                .setReason("no word from the coordinator within 10.0 s")
                .build()));
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> ckpt.get(10, TimeUnit.SECONDS));
    CohortException ce = assertInstanceOf(CohortException.class, e.getCause());
    assertTrue(ce.getMessage().contains("ended its dump of vhost 7-0 on its own"), ce.getMessage());
    hang.countDown(); // the held dump answers late; the abort reaches it
    await(() -> agents.calls.contains("finish 7-1 ABORT"), "every vhost asked is aborted");
    assertFalse(catalog.job("7").hasOpenEpoch());
  }
}
