package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Aborts and failures in the agent's half of the barrier: whatever aborts a dump (the coordinator,
 * a failing dump, seal, network cut or mismatched commit, an image with other credentials than its
 * owner's), the held tasks are let go, the job carries on and no image is left. Each test names the
 * behaviour whose breaking makes it fail.
 */
class CheckpointParticipantAbortTest extends CheckpointParticipantFixture {
  @Test
  void abortBeforeTheDumpKeepsTheLateDumpFromRunning() throws Exception {
    CheckpointParticipant p = participant();
    p.finish(finish(1, ABORT));
    CohortException e = assertThrows(CohortException.class, () -> p.dump(dump(1, false)));
    assertEquals(CohortException.Kind.ABORTED, e.kind());
    assertEquals(0, criu.dumps.get(), "CRIU must not even start");
    assertFalse(anyImage(1));
    p.dump(dump(2, false)); // a newer epoch still may
    p.finish(finish(2, ABORT));
  }

  @Test
  void abortRacingResumeAlwaysReleasesTheTasksAndLeavesNoImage() throws Exception {
    CheckpointParticipant p = participant();
    for (long epoch = 1; epoch <= 8; epoch++) {
      p.dump(dump(epoch, false));
      CountDownLatch go = new CountDownLatch(1);
      long e = epoch;
      CompletableFuture<Object> resumed =
          CompletableFuture.supplyAsync(
              () -> {
                await(go);
                return p.resume(resume(e));
              });
      CompletableFuture<Object> aborted =
          CompletableFuture.supplyAsync(
              () -> {
                await(go);
                return p.finish(finish(e, ABORT));
              });
      go.countDown();
      aborted.get(20, TimeUnit.SECONDS);
      try {
        resumed.get(20, TimeUnit.SECONDS);
      } catch (ExecutionException lost) {
        // The resume lost: refused as aborted (the dump still registered), or as unknown when
        // the abort had already ended it (as a seal after an abort is, below).
        CohortException.Kind kind = ((CohortException) lost.getCause()).kind();
        assertTrue(
            kind == CohortException.Kind.ABORTED
                || kind == CohortException.Kind.FAILED_PRECONDITION,
            kind.toString());
      }
      String outcome = criu.awaitOutcome();
      assertTrue(outcome.equals("committed") || outcome.equals("released-by-abort"), outcome);
      assertFalse(anyImage(epoch), "epoch " + epoch + " left an image");
      assertThrows(CohortException.class, () -> p.seal(seal(e)));
    }
  }

  @Test
  void sealAfterAbortIsRefusedAndPublishesNothing() throws Exception {
    CheckpointParticipant p = participant();
    p.dump(dump(1, true));
    p.finish(finish(1, ABORT));
    assertEquals("released-by-abort", criu.awaitOutcome());
    CohortException e = assertThrows(CohortException.class, () -> p.seal(seal(1)));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, e.kind()); // the dump is gone
    assertFalse(anyImage(1));
  }

  @Test
  void commitThatDoesNotMatchTheStopFlagAbortsAndTheJobCarriesOn() throws Exception {
    CheckpointParticipant p = participant();
    p.dump(dump(1, true));
    assertThrows(CohortException.class, () -> p.resume(resume(1)), "a --stop dump never resumes");
    p.seal(seal(1));
    CohortException e = assertThrows(CohortException.class, () -> p.finish(finish(1, COMMIT)));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, e.kind());
    assertEquals("released-by-abort", criu.awaitOutcome());
    assertEquals(VhostState.VHOST_STATE_RUNNING, records.load(VHOST).getState());
    assertTrue(init.isAlive(), "the job must carry on");
    assertFalse(anyImage(1));
  }

  @Test
  void aDumpThatFailsResumesTheJobAndKeepsCriusLog() throws Exception {
    criu.failDumps();
    CheckpointParticipant p = participant();
    CohortException e = assertThrows(CohortException.class, () -> p.dump(dump(1, false)));
    assertTrue(e.getMessage().contains("Dumping FAILED"), e.getMessage());
    assertTrue(e.getMessage().contains("The job carries on"), e.getMessage());
    assertFalse(anyImage(1));
    assertTrue(Files.exists(home.resolve("logs/failed-dump-7.1-7-0.log")));
  }

  @Test
  void aFailingNetworkCutAtTheLockLetsTheJobGo() throws Exception {
    ChannelCuts cuts =
        cuts(
            () -> {
              throw new IllegalStateException("overlay broken");
            },
            () -> {});
    CheckpointParticipant p = participant(store(), cuts, thisProcess());
    assertThrows(CohortException.class, () -> p.dump(dump(1, false)));
    assertEquals("aborted-at-lock", criu.awaitOutcome());
    assertFalse(anyImage(1));
  }

  @Test
  void anAbortDeliversWhatTheCutDivertedOnlyAfterCriuLetTheTasksGo() throws Exception {
    // Delivered while CRIU's network lock still stands, the diverted packets would be dropped.
    List<String> criuAtAbort = new ArrayList<>();
    ChannelCuts cuts =
        cuts(
            () -> {},
            () -> {
              try {
                criuAtAbort.add(criu.outcome());
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
            });
    CheckpointParticipant p = participant(store(), cuts, thisProcess());
    p.dump(dump(1, false));
    p.finish(finish(1, ABORT));
    assertEquals(List.of("released-by-abort"), criuAtAbort);
  }

  @Test
  void aSealThatThrowsAbortsTheDumpAndReleasesTheHeldTasks() throws Exception {
    LocalImageStore real = store();
    ImageStore failing =
        (ImageStore)
            Proxy.newProxyInstance(
                getClass().getClassLoader(),
                new Class<?>[] {ImageStore.class},
                (proxy, m, args) -> {
                  if (m.getName().equals("seal")) {
                    throw new IllegalStateException("disk on fire");
                  }
                  try {
                    return m.invoke(real, args);
                  } catch (InvocationTargetException e) {
                    throw e.getCause();
                  }
                });
    CheckpointParticipant p = participant(failing, ChannelCuts.NONE, thisProcess());
    p.dump(dump(1, true));
    assertThrows(CohortException.class, () -> p.seal(seal(1)));
    assertEquals("released-by-abort", criu.awaitOutcome());
    assertFalse(anyImage(1));
    assertEquals(VhostState.VHOST_STATE_RUNNING, records.load(VHOST).getState());
  }

  @Test
  void aSealFindingOtherCredentialsThanTheOwnersAbortsAndTheJobCarriesOn() throws Exception {
    String init = "/var/lib/cohort/bin/cohort-init-0123456789abcdef";
    records.save(
        records.load(VHOST).toBuilder()
            .setOwner(Owner.newBuilder().setUid(1001).setGid(100).setUser("alice"))
            .setInitPath(init)
            .build());
    CheckpointParticipant p = participant();
    p.dump(dump(1, true));
    // What CRIU wrote: the init, root, and a job process that became root (a set-id program
    // started after the prepare's check).
    CriuImageWriter.twoTasks(
        store().pendingDir("7.1", VHOST).resolve(ImageStore.CRIU_DIR),
        List.of(init, "/usr/bin/passwd"),
        List.of(
            CriuImageWriter.creds(0, 0),
            CriuImageWriter.creds(1001, 100).toBuilder().setEuid(0).setSuid(0).build()));
    CohortException e = assertThrows(CohortException.class, () -> p.seal(seal(1)));
    assertEquals(CohortException.Kind.PERMISSION_DENIED, e.kind());
    assertTrue(
        e.getMessage()
            .startsWith(
                "checkpoint 7.1, vhost "
                    + VHOST
                    + " would run processes with other credentials than its owner's: process 2 "
                    + "(passwd, /usr/bin/passwd) runs as uid 1001/0/0/1001 gid 100"),
        e.getMessage());
    assertEquals("released-by-abort", criu.awaitOutcome());
    assertFalse(anyImage(1));
    assertEquals(VhostState.VHOST_STATE_RUNNING, records.load(VHOST).getState());
  }

  private static void await(CountDownLatch l) {
    try {
      l.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
