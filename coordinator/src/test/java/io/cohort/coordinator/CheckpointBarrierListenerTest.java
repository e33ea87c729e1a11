package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.Caller;
import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointPhase;
import io.cohort.proto.v1.CheckpointProgress;
import io.cohort.proto.v1.CheckpointRequest;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiPredicate;
import org.junit.jupiter.api.Test;

/**
 * The barrier when whoever follows its progress fails: a listener that throws in any phase (before
 * the commit the epoch aborts and every vhost is released, after it the checkpoint stands) and a
 * client that goes away midway (the epoch is not tied to the call). Neither may leave the barrier
 * hanging or a vhost frozen.
 */
class CheckpointBarrierListenerTest extends CheckpointBarrierFixture {
  /** A listener that throws where {@code when} says (a client gone between check and send). */
  private static CheckpointBarrier.Listener throwing(BiPredicate<CheckpointPhase, String> when) {
    return (phase, message) -> {
      if (when.test(phase, message)) {
        throw new IllegalStateException("listener broke at " + phase.name() + ": " + message);
      }
    };
  }

  private CompletableFuture<CheckpointInfo> start(
      Catalog catalog, boolean stop, CheckpointBarrier.Listener listener, String... vhosts)
      throws Exception {
    return barrier(workingAgents(), catalog, stop, BarrierConfig.defaults(), listener, vhosts);
  }

  /** Every vhost asked to dump got an ABORT, none a commit. */
  private void assertEveryDumpedVhostReleased() {
    for (String v : List.of("7-0", "7-1")) {
      if (calls.contains("dump " + v) || calls.contains("dump " + v + " stop")) {
        assertTrue(calls.contains("finish " + v + " ABORT"), v + " left frozen: " + calls);
      }
    }
    assertFalse(calls.stream().anyMatch(c -> c.contains("COMMIT")), calls.toString());
  }

  @Test
  void aListenerThatThrowsInAnyPhaseBeforeTheCommitAbortsAndReleasesEveryVhost() throws Exception {
    record Case(String name, boolean stop, BiPredicate<CheckpointPhase, String> when) {}
    List<Case> cases =
        List.of(
            new Case("preparing", false, (p, m) -> p == CheckpointPhase.CHECKPOINT_PHASE_PREPARING),
            new Case(
                "dumping",
                false,
                (p, m) ->
                    p == CheckpointPhase.CHECKPOINT_PHASE_DUMPING && m.startsWith("freezing")),
            new Case("a vhost dumped", false, (p, m) -> m.startsWith("vhost 7-1 dumped")),
            new Case("resuming", false, (p, m) -> p == CheckpointPhase.CHECKPOINT_PHASE_RESUMING),
            new Case("sealing", true, (p, m) -> p == CheckpointPhase.CHECKPOINT_PHASE_SEALING),
            new Case(
                "committing", false, (p, m) -> p == CheckpointPhase.CHECKPOINT_PHASE_COMMITTING));
    for (Case c : cases) {
      calls.clear();
      Catalog catalog = new Catalog(dir.resolve(c.name().replace(' ', '-')), TestKey.KEY);
      CohortException e =
          abortedPromptly(start(catalog, c.stop(), throwing(c.when()), "7-0@n1", "7-1@n2"));
      assertTrue(e.getMessage().contains("listener broke"), c.name() + ": " + e.getMessage());
      assertFalse(catalog.checkpoint("7.3").isPresent(), c.name());
      assertEveryDumpedVhostReleased();
      if (!c.name().equals("preparing") && !c.name().equals("dumping")) {
        assertTrue(
            calls.contains("finish 7-0 ABORT") && calls.contains("finish 7-1 ABORT"),
            c.name() + ": " + calls);
      }
    }
  }

  @Test
  void aListenerThatKeepsThrowingThroughTheAbortStillReleasesEveryVhost() throws Exception {
    // From the first dumped vhost on, every report fails: the abort's own reports included.
    boolean[] broken = {false};
    CohortException e =
        abortedPromptly(
            start(
                new Catalog(dir, TestKey.KEY),
                false,
                throwing(
                    (p, m) -> {
                      broken[0] |=
                          m.startsWith("vhost 7-0 dumped") || m.startsWith("vhost 7-1 dumped");
                      return broken[0];
                    }),
                "7-0@n1",
                "7-1@n2"));
    assertTrue(e.getMessage().contains("listener broke"), e.getMessage());
    assertTrue(
        calls.contains("finish 7-0 ABORT") && calls.contains("finish 7-1 ABORT"), calls.toString());
    assertEveryDumpedVhostReleased();
  }

  @Test
  void aFailedDumpStillAbortsEveryVhostWhenTheListenerThrowsDuringTheAbort() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    AgentDirectory agents =
        agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of("7-1"), null)));
    CompletableFuture<CheckpointInfo> f =
        barrier(
            agents,
            catalog,
            false,
            BarrierConfig.defaults(),
            throwing(
                (p, m) -> p == CheckpointPhase.CHECKPOINT_PHASE_ABORTING || m.equals("aborted")),
            "7-0@n1",
            "7-1@n2");
    CohortException e = abortedPromptly(f);
    assertEquals(CohortException.Kind.RESOURCE_EXHAUSTED, e.kind());
    assertTrue(
        calls.contains("finish 7-0 ABORT") && calls.contains("finish 7-1 ABORT"), calls.toString());
  }

  @Test
  void aListenerThatThrowsAfterTheCommitLeavesTheCheckpointCommittedAndFinished() throws Exception {
    for (boolean stop : new boolean[] {false, true}) {
      calls.clear();
      Catalog catalog = new Catalog(dir.resolve("stop-" + stop), TestKey.KEY);
      CheckpointInfo info =
          start(
                  catalog,
                  stop,
                  throwing(
                      (p, m) ->
                          m.contains("committed")
                              || p == CheckpointPhase.CHECKPOINT_PHASE_STOPPING
                              || m.endsWith(" done")),
                  "7-0@n1",
                  "7-1@n2")
              .get(10, TimeUnit.SECONDS);
      assertEquals("7.3", info.getCheckpointId());
      assertTrue(catalog.checkpoint("7.3").isPresent());
      String decision = stop ? "COMMIT_STOP" : "COMMIT_RESUME";
      assertTrue(
          calls.contains("finish 7-0 " + decision) && calls.contains("finish 7-1 " + decision),
          calls.toString());
    }
  }

  /**
   * A client that goes away midway (here between the adapter's isCancelled() check and its onNext,
   * which then throws CANCELLED inside the barrier) is no longer told, and nothing else: the epoch
   * is not tied to the call, so the checkpoint commits and every vhost runs on. Neither hangs.
   */
  @Test
  void aClientThatGoesAwayMidwayLetsTheCheckpointFinishAndEveryVhostRunOn() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    CancelledMidway out = new CancelledMidway();
    try (Coordinator coordinator = coordinatorOfRunningJob(catalog, workingAgents())) {
      CompletableFuture<Void> call =
          CompletableFuture.runAsync(
              () ->
                  Context.current()
                      .withValue(Caller.CONTEXT_KEY, Caller.root())
                      .run(
                          () ->
                              new CohortGrpcService(coordinator)
                                  .checkpoint(
                                      CheckpointRequest.newBuilder().setJobId("7").build(), out)));
      try {
        call.get(10, TimeUnit.SECONDS);
      } catch (TimeoutException e) {
        throw new AssertionError("checkpoint hangs after its client stream failed: " + calls, e);
      }
    }
    assertTrue(
        calls.contains("finish 7-0 COMMIT_RESUME") && calls.contains("finish 7-1 COMMIT_RESUME"),
        calls.toString());
    assertFalse(calls.stream().anyMatch(c -> c.endsWith("ABORT")), calls.toString());
    assertTrue(catalog.checkpoint("7.3").isPresent());
    assertEquals(4, catalog.job("7").getNextEpoch());
    assertFalse(catalog.job("7").hasOpenEpoch(), "the epoch is closed");
    assertEquals(null, out.error, "nobody is left to tell");
  }

  /** A server stream whose client went away once the first vhost was dumped. */
  private static final class CancelledMidway extends ServerCallStreamObserver<CheckpointProgress> {
    final List<CheckpointProgress> sent = Collections.synchronizedList(new ArrayList<>());
    volatile boolean gone;
    volatile Throwable error;

    @Override
    public void onNext(CheckpointProgress p) {
      gone |= p.getMessage().contains(" dumped");
      if (gone) {
        throw Status.CANCELLED.withDescription("call already cancelled").asRuntimeException();
      }
      sent.add(p);
    }

    @Override
    public void onError(Throwable t) {
      error = t;
    }

    @Override
    public void onCompleted() {}

    @Override
    public boolean isCancelled() {
      return false; // checked just before the client left
    }

    @Override
    public void setOnCancelHandler(Runnable onCancelHandler) {}

    @Override
    public void setCompression(String compression) {}

    @Override
    public boolean isReady() {
      return true;
    }

    @Override
    public void setOnReadyHandler(Runnable onReadyHandler) {}

    @Override
    public void disableAutoInboundFlowControl() {}

    @Override
    public void request(int count) {}

    @Override
    public void setMessageCompression(boolean enable) {}
  }
}
