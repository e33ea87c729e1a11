package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.Caller;
import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointPhase;
import io.cohort.proto.v1.CheckpointProgress;
import io.cohort.proto.v1.CheckpointRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.VhostPlacement;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiPredicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The barrier state machine against scripted agents served over in-process gRPC: the order of the
 * phases, the commit record, and aborts on failures and timeouts.
 */
class CheckpointBarrierTest {
  @TempDir Path dir;

  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final ExecutorService io = Executors.newCachedThreadPool();
  private final ScheduledExecutorService serial = Executors.newSingleThreadScheduledExecutor();
  private final List<String> calls = Collections.synchronizedList(new ArrayList<>());

  @AfterEach
  void tearDown() {
    channels.forEach(ManagedChannel::shutdownNow);
    servers.forEach(Server::shutdownNow);
    io.shutdownNow();
    serial.shutdownNow();
  }

  private ScriptedAgent agent(String node, Set<String> failDump, CountDownLatch hang) {
    return new ScriptedAgent(node, calls, failDump, hang);
  }

  private AgentDirectory agents(Map<String, ScriptedAgent> byNode) throws Exception {
    Map<String, AgentClient> clients = new HashMap<>();
    for (Map.Entry<String, ScriptedAgent> e : byNode.entrySet()) {
      String name = "barrier-test-" + e.getKey() + "-" + System.nanoTime();
      servers.add(
          InProcessServerBuilder.forName(name)
              .executor(io)
              .addService(e.getValue())
              .build()
              .start());
      ManagedChannel ch = InProcessChannelBuilder.forName(name).executor(io).build();
      channels.add(ch);
      clients.put(
          e.getKey(),
          new AgentClient(e.getKey(), ch, Duration.ofSeconds(5), Duration.ofSeconds(20)));
    }
    return new AgentDirectory(clients);
  }

  private static JobRecord job(String... vhostAtNode) {
    JobInfo.Builder info = JobInfo.newBuilder().setJobId("7");
    for (String v : vhostAtNode) {
      String[] p = v.split("@");
      info.addVhosts(VhostPlacement.newBuilder().setVhostId(p[0]).setNode(p[1]));
    }
    return JobRecord.newBuilder().setInfo(info).build();
  }

  private CheckpointInfo run(
      AgentDirectory agents, Catalog catalog, boolean stop, BarrierConfig config, String... vhosts)
      throws Exception {
    List<String> phases = Collections.synchronizedList(new ArrayList<>());
    CheckpointBarrier b =
        new CheckpointBarrier(
            job(vhosts),
            3,
            stop,
            agents,
            catalog,
            io,
            serial,
            Clock.systemUTC(),
            config,
            (phase, msg) -> phases.add(phase.name()));
    return b.start().get(30, TimeUnit.SECONDS);
  }

  @Test
  void continueResumesAndSealsOnceEveryVhostIsCapturedThenCommits() throws Exception {
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents =
        agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of(), null)));
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
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents = agents(Map.of("n1", agent("n1", Set.of(), null)));
    CheckpointInfo info = run(agents, catalog, true, BarrierConfig.defaults(), "7-0@n1");
    assertTrue(info.getStoppedJob());
    assertEquals(
        List.of("prepare [7-0]", "dump 7-0 stop", "seal 7-0", "finish 7-0 COMMIT_STOP"), calls);
  }

  @Test
  void aFailedDumpAbortsEveryVhostAndCommitsNothing() throws Exception {
    Catalog catalog = new Catalog(dir);
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
    Catalog catalog = new Catalog(dir);
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
    Catalog catalog = new Catalog(dir);
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
            new CheckpointBarrier(
                    job("7-0@n1", "7-1@n2"),
                    3,
                    false,
                    registered.directory,
                    catalog,
                    io,
                    serial,
                    Clock.systemUTC(),
                    config,
                    (phase, msg) -> {})
                .start();
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

  // ------------------------------------------------------------ a progress listener that throws

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
    AgentDirectory agents =
        agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of(), null)));
    return new CheckpointBarrier(
            job(vhosts),
            3,
            stop,
            agents,
            catalog,
            io,
            serial,
            Clock.systemUTC(),
            BarrierConfig.defaults(),
            listener)
        .start();
  }

  /**
   * The abort must come at once, not after a phase timeout (10 minutes by default): a barrier that
   * is left hanging keeps the dumped vhosts frozen by CRIU's post-dump hook.
   */
  private static CohortException abortedPromptly(CompletableFuture<CheckpointInfo> f)
      throws Exception {
    try {
      f.get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return assertInstanceOf(CohortException.class, e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("the barrier neither committed nor aborted: it hangs", e);
    }
    throw new AssertionError("the barrier committed although its listener failed");
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
      Catalog catalog = new Catalog(dir.resolve(c.name().replace(' ', '-')));
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
                new Catalog(dir),
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
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents =
        agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of("7-1"), null)));
    CompletableFuture<CheckpointInfo> f =
        new CheckpointBarrier(
                job("7-0@n1", "7-1@n2"),
                3,
                false,
                agents,
                catalog,
                io,
                serial,
                Clock.systemUTC(),
                BarrierConfig.defaults(),
                throwing(
                    (p, m) ->
                        p == CheckpointPhase.CHECKPOINT_PHASE_ABORTING || m.equals("aborted")))
            .start();
    CohortException e = abortedPromptly(f);
    assertEquals(CohortException.Kind.RESOURCE_EXHAUSTED, e.kind());
    assertTrue(
        calls.contains("finish 7-0 ABORT") && calls.contains("finish 7-1 ABORT"), calls.toString());
  }

  @Test
  void aListenerThatThrowsAfterTheCommitLeavesTheCheckpointCommittedAndFinished() throws Exception {
    for (boolean stop : new boolean[] {false, true}) {
      calls.clear();
      Catalog catalog = new Catalog(dir.resolve("stop-" + stop));
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
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents =
        agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of(), null)));
    JobRecord rec = job("7-0@n1", "7-1@n2");
    catalog.saveJob(
        rec.toBuilder()
            .setNextEpoch(3)
            .setInfo(rec.getInfo().toBuilder().setState(JobState.JOB_STATE_RUNNING))
            .build());
    CancelledMidway out = new CancelledMidway();
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            agents,
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
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

  @Test
  void aStopVhostWhoseAgentMissedTheCommitIsEndedAllTheSame() throws Exception {
    Catalog catalog = new Catalog(dir);
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

  /** A coordinator over {@code catalog} where job 7 runs with vhosts 7-0@n1 and 7-1@n2. */
  private static Coordinator coordinatorOfRunningJob(Catalog catalog, AgentDirectory agents) {
    JobRecord rec = job("7-0@n1", "7-1@n2");
    catalog.saveJob(
        rec.toBuilder()
            .setNextEpoch(3)
            .setInfo(rec.getInfo().toBuilder().setState(JobState.JOB_STATE_RUNNING))
            .build());
    return new Coordinator(
        catalog, agents, BarrierConfig.defaults(), NodeLossConfig.defaults(), Clock.systemUTC());
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
