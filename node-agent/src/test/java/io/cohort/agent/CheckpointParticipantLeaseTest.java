package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Dumps that end without the coordinator's word: a decision lease that runs out (the agent aborts
 * on its own, keeping a sealed image for the coordinator's decision) and an agent restarted
 * mid-dump (its successor removes what it left and reports it, and wakes tasks left stopped). Each
 * test names the behaviour whose breaking makes it fail.
 */
class CheckpointParticipantLeaseTest extends CheckpointParticipantFixture {
  /** The participant of this test with a decision lease of {@code ms}. */
  private CheckpointParticipant withLease(long ms) {
    config = config.withDecisionLease(Duration.ofMillis(ms));
    return participant();
  }

  /** Waits (at most 10 s) for the participant to report a dump it ended on its own. */
  private static AbandonedDump reported(CheckpointParticipant p) throws InterruptedException {
    for (int i = 0; i < 1000 && p.abandoned().isEmpty(); i++) {
      Thread.sleep(10);
    }
    assertEquals(1, p.abandoned().size(), "one dump ended on its own, reported");
    return p.abandoned().get(0);
  }

  @Test
  void theLeaseIsThePhasesOwnTimeoutPlusAMarginUnlessTheAgentSetsOne() {
    AgentConfig d = AgentConfig.defaults("n1", home, home.resolve("native"), "criu");
    assertEquals(Duration.ofSeconds(605), d.leaseAfter(600_000));
    assertEquals(AgentConfig.LEASE_UNSAID, d.leaseAfter(0), "a coordinator that does not say");
    assertEquals(Duration.ofSeconds(9), d.withDecisionLease(Duration.ofSeconds(9)).leaseAfter(1));
  }

  @Test
  void aHeldDumpWithNoDecisionWithinItsLeaseIsAbortedHereAndTheJobRunsOn() throws Exception {
    CheckpointParticipant p = withLease(300);
    p.dump(dump(1, false));
    // Nobody resumes or aborts: the coordinator is gone. The lease lets the tasks go.
    assertEquals("released-by-abort", criu.awaitOutcome());
    AbandonedDump d = reported(p);
    assertEquals("7.1", d.getCheckpointId());
    assertFalse(d.getImageKept(), "an image not sealed yet goes");
    assertFalse(anyImage(1));
    assertTrue(init.isAlive(), "the job carries on");
    assertEquals(VhostState.VHOST_STATE_RUNNING, records.load(VHOST).getState());
    assertThrows(CohortException.class, () -> p.resume(resume(1)), "a late resume finds nothing");
    CohortException late = assertThrows(CohortException.class, () -> p.dump(dump(1, false)));
    assertEquals(CohortException.Kind.ABORTED, late.kind(), "the epoch is closed here");
    p.finish(finish(1, ABORT)); // the coordinator's abort, when it comes, is answered
    p.reported(p.abandoned());
    assertTrue(p.abandoned().isEmpty(), "a report is sent until a heartbeat is answered");
    p.dump(dump(2, false)); // a newer epoch may run
    p.finish(finish(2, ABORT));
    assertEquals("released-by-abort", criu.awaitOutcome());
  }

  @Test
  void aStopDumpWhoseLeaseRunsOutAfterItsSealEndsTheVhostAndKeepsTheImageForTheDecision()
      throws Exception {
    CheckpointParticipant p = withLease(1500);
    p.dump(dump(1, true));
    SealImageResponse sealed = p.seal(seal(1));
    // No commit comes: as a failed --stop, the job is ended all the same (CRIU ends the tasks).
    assertEquals("committed", criu.awaitOutcome());
    assertTrue(init.awaitExit(5000), "the vhost's init is ended");
    assertEquals(VhostState.VHOST_STATE_STOPPED, records.load(VHOST).getState());
    assertTrue(reported(p).getImageKept(), "a sealed image waits for the coordinator's word");
    store().verify("7.1", VHOST, sealed.getManifestSha256());
    p.finish(finish(1, COMMIT_STOP)); // its record was written: the late commit stands
    store().verify("7.1", VHOST, sealed.getManifestSha256());
    p.finish(finish(1, ABORT)); // (or it was not: the abort removes the image)
    assertFalse(anyImage(1));
  }

  @Test
  void aResumedAndSealedDumpWhoseCommitNeverComesKeepsItsImageUntilTheCoordinatorSays()
      throws Exception {
    CheckpointParticipant p = withLease(1500);
    p.dump(dump(1, false));
    p.resume(resume(1));
    assertEquals("committed", criu.awaitOutcome(), "resumed by the coordinator");
    SealImageResponse sealed = p.seal(seal(1));
    assertTrue(reported(p).getImageKept());
    assertTrue(init.isAlive());
    store().verify("7.1", VHOST, sealed.getManifestSha256());
    p.finish(finish(1, COMMIT));
    store().verify("7.1", VHOST, sealed.getManifestSha256());
    CohortException none = assertThrows(CohortException.class, () -> p.finish(finish(5, COMMIT)));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, none.kind(), "no image, no commit");
  }

  @Test
  void anAgentRestartedMidDumpLeavesTheJobRunningAndNoPendingImage() throws Exception {
    ProcessIdentity oldAgent = sleeper();
    LocalImageStore oldStore =
        new LocalImageStore(config.imagesDir(), config.pendingName(), oldAgent, TestKey.KEY);
    CheckpointParticipant before = participant(oldStore, ChannelCuts.NONE, oldAgent);
    before.dump(dump(1, false));
    assertTrue(anyImage(1));
    new ProcessBuilder("kill", "-9", Long.toString(oldAgent.pid())).start().waitFor();
    assertTrue(oldAgent.awaitExit(5000));
    // CRIU's hook notices within a second or two that its agent is gone and lets the job go.
    assertEquals("released-by-abort", criu.awaitOutcome());
    LocalImageStore newStore = store();
    CheckpointParticipant after = participant(newStore, ChannelCuts.NONE, thisProcess());
    after.cleanUpAfterPredecessor(); // what a starting agent does
    assertFalse(anyImage(1));
    assertEquals(
        List.of("7.1/7-0"),
        after.abandoned().stream().map(d -> d.getCheckpointId() + "/" + d.getVhostId()).toList(),
        "the coordinator is told what the predecessor left");
    after.reported(after.abandoned());
    // The predecessor's CRIU, still writing its image through its open directory, puts a file
    // there after that first sweep (the directory was moved aside): the next heartbeat's sweep
    // removes it, and it is not reported twice.
    Path late = store().pendingDir("7.1", VHOST).getParent().getParent().resolve(".removed-7.1-x");
    Files.createDirectories(late.resolve(ImageStore.CRIU_DIR));
    Files.writeString(late.resolve(ImageStore.CRIU_DIR).resolve("pages-9.img"), "late");
    after.cleanUpAfterPredecessor(); // what each heartbeat does
    assertFalse(Files.exists(late), "the late files are swept too");
    assertEquals(List.of(), after.abandoned(), "and not reported again");
    after.dump(dump(2, false));
    after.finish(finish(2, ABORT));
    assertEquals("released-by-abort", criu.awaitOutcome());
    assertTrue(init.isAlive());
  }

  @Test
  void aStartingAgentWakesTheTasksOfAVhostLeftStopped() throws Exception {
    new ProcessBuilder("kill", "-STOP", Long.toString(init.pid())).start().waitFor();
    Path status = Path.of("/proc/" + init.pid() + "/status");
    for (int i = 0; i < 500 && !Files.readString(status).contains("State:\tT"); i++) {
      Thread.sleep(10);
    }
    assertTrue(Files.readString(status).contains("State:\tT"), "stopped, as CRIU can leave it");
    assertEquals(List.of(init.pid()), StoppedTasks.resume(init, "test"));
    for (int i = 0; i < 500 && Files.readString(status).contains("State:\tT"); i++) {
      Thread.sleep(10);
    }
    assertFalse(Files.readString(status).contains("State:\tT"), Files.readString(status));
  }
}
