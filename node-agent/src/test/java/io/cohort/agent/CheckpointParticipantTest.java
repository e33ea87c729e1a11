package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostState;
import org.junit.jupiter.api.Test;

/**
 * The agent's half of the barrier on its way to a commit, against a fake CRIU that plays the
 * action-script protocol (real FIFOs, the real action script), a real image store in a temporary
 * directory and no network cut: checkpoint-and-continue, --stop, and the fences that keep late
 * answers of an older epoch off a newer dump. Each test names the behaviour whose breaking makes it
 * fail. Aborts and failures: {@link CheckpointParticipantAbortTest}; the decision lease and an
 * agent's restart: {@link CheckpointParticipantLeaseTest}.
 */
class CheckpointParticipantTest extends CheckpointParticipantFixture {
  @Test
  void checkpointAndContinueCommitsASealedPublishedImage() throws Exception {
    CheckpointParticipant p = participant();
    p.dump(dump(1, false));
    assertEquals("", criu.outcome(), "the tasks stay held until the resume");
    p.resume(resume(1));
    assertEquals("committed", criu.awaitOutcome());
    SealImageResponse sealed = p.seal(seal(1));
    p.finish(finish(1, COMMIT));
    store().verify("7.1", VHOST, sealed.getManifestSha256());
    assertEquals(6, sealed.getManifest().getOutputLogSize(), "log size read by the hook");
  }

  @Test
  void stopCommitEndsTheVhostAfterItsImageIsSealed() throws Exception {
    CheckpointParticipant p = participant();
    p.dump(dump(1, true));
    SealImageResponse sealed = p.seal(seal(1));
    assertEquals("", criu.outcome(), "held until the commit");
    p.finish(finish(1, COMMIT_STOP));
    assertEquals("committed", criu.awaitOutcome());
    assertEquals(VhostState.VHOST_STATE_STOPPED, records.load(VHOST).getState());
    assertTrue(init.awaitExit(5000), "the vhost's init is ended");
    assertEquals(1, stopped.size(), "its link and the job's network are let go");
    assertEquals(VhostState.VHOST_STATE_STOPPED, stopped.get(0).getState());
    store().verify("7.1", VHOST, sealed.getManifestSha256());
  }

  @Test
  void lateAnswersOfAnOlderEpochNeverTouchTheNewerDump() throws Exception {
    CheckpointParticipant p = participant();
    p.finish(finish(1, ABORT)); // epoch 1 aborted before its dump reached this agent
    p.dump(dump(2, false));
    p.finish(finish(1, ABORT)); // late, repeated
    assertThrows(CohortException.class, () -> p.finish(finish(1, COMMIT)));
    CohortException late = assertThrows(CohortException.class, () -> p.dump(dump(1, false)));
    assertEquals(CohortException.Kind.ABORTED, late.kind());
    assertEquals("", criu.outcome(), "epoch 2 is still held, untouched");
    p.resume(resume(2));
    SealImageResponse sealed = p.seal(seal(2));
    p.finish(finish(2, COMMIT));
    assertEquals("committed", criu.awaitOutcome());
    store().verify("7.2", VHOST, sealed.getManifestSha256());
  }
}
