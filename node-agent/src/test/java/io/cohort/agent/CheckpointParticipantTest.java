package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's half of the barrier against a fake CRIU that plays the action-script protocol (real
 * FIFOs, the real action script), a real image store in a temporary directory and a fake network
 * cut. Each test names the behaviour whose breaking makes it fail.
 */
class CheckpointParticipantTest {
  private static final String VHOST = "7-0";

  @TempDir Path home;
  private final List<Process> started = new ArrayList<>();
  private FakeCriu criu;
  private VhostRecords records;
  private AgentConfig config;
  private Path script;
  private ProcessIdentity init;

  /** The vhosts a --stop ended, as the participant reported them. */
  private final List<VhostRecord> stopped = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    criu = new FakeCriu(home);
    // A short CRIU timeout: a broken release shows as a failure, not as a hung build.
    AgentConfig d = AgentConfig.defaults("n1", home, home.resolve("native"), "criu");
    config =
        new AgentConfig(
            d.node(),
            d.home(),
            d.initBinary(),
            d.criuCommand(),
            d.launchTimeout(),
            Duration.ofSeconds(8),
            d.minFreeBytes(),
            false,
            null,
            null);
    records = new VhostRecords(config.vhostsDir(), "n1");
    script = NativeInstalls.actionScript(home);
    init = sleeper(); // the vhost's "init": only its liveness matters here
    Path dir = Files.createDirectories(records.vhostDir(VHOST));
    Files.writeString(dir.resolve("output.log"), "hello\n");
    records.save(
        VhostRecord.newBuilder()
            .setVhostId(VHOST)
            .setJobId("7")
            .setHostname("h")
            .setPid(init.pid())
            .setPidStartTicks(init.startTicks())
            .setLogPath(dir.resolve("output.log").toString())
            .setStatusPath(dir.resolve("status").toString())
            .setState(VhostState.VHOST_STATE_RUNNING)
            .build());
  }

  @AfterEach
  void tearDown() throws Exception {
    criu.hold(false);
    for (Process p : started) {
      p.destroyForcibly();
      p.waitFor();
    }
  }

  private ProcessIdentity sleeper() throws IOException {
    Process p = new ProcessBuilder("sleep", "600").start();
    started.add(p);
    return ProcessIdentity.of(p.pid()).orElseThrow();
  }

  private CheckpointParticipant participant(
      ImageStore store, ChannelCuts cuts, ProcessIdentity agent) {
    return new CheckpointParticipant(
        config, records, store, criu, cuts, script, agent, () -> "fake", stopped::add);
  }

  private LocalImageStore store() {
    return new LocalImageStore(config.imagesDir(), config.pendingName());
  }

  private CheckpointParticipant participant() {
    return participant(
        store(), ChannelCuts.NONE, ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow());
  }

  private static DumpVhostRequest dump(long epoch, boolean stop) {
    return DumpVhostRequest.newBuilder()
        .setCheckpointId("7." + epoch)
        .setEpoch(epoch)
        .setVhostId(VHOST)
        .setStop(stop)
        .build();
  }

  private static FinishCheckpointRequest finish(long epoch, CheckpointDecision d) {
    return FinishCheckpointRequest.newBuilder()
        .setCheckpointId("7." + epoch)
        .setEpoch(epoch)
        .setVhostId(VHOST)
        .setDecision(d)
        .build();
  }

  private static ResumeVhostRequest resume(long epoch) {
    return ResumeVhostRequest.newBuilder().setCheckpointId("7." + epoch).setVhostId(VHOST).build();
  }

  private static SealImageRequest seal(long epoch) {
    return SealImageRequest.newBuilder().setCheckpointId("7." + epoch).setVhostId(VHOST).build();
  }

  private static final CheckpointDecision ABORT = CheckpointDecision.CHECKPOINT_DECISION_ABORT;
  private static final CheckpointDecision COMMIT =
      CheckpointDecision.CHECKPOINT_DECISION_COMMIT_RESUME;
  private static final CheckpointDecision COMMIT_STOP =
      CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP;

  private boolean anyImage(long epoch) {
    LocalImageStore s = store();
    return Files.exists(s.pendingDir("7." + epoch, VHOST))
        || Files.exists(s.committedDir("7." + epoch, VHOST));
  }

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
      } catch (java.util.concurrent.ExecutionException lost) {
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

  private static void await(CountDownLatch l) {
    try {
      l.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
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
        new ChannelCuts() {
          @Override
          public Cut open(String ckpt, VhostRecord rec, long epoch, Set<String> local) {
            return new Cut() {
              @Override
              public void begin() {}

              @Override
              public void networkLocked(String vhost) {
                throw new IllegalStateException("overlay broken");
              }

              @Override
              public List<byte[]> recordingFor(String address) {
                return List.of();
              }

              @Override
              public void released(String vhost, boolean stopped) {}

              @Override
              public void abort() {}
            };
          }

          @Override
          public void forget(String ckpt) {}
        };
    CheckpointParticipant p =
        participant(store(), cuts, ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow());
    assertThrows(CohortException.class, () -> p.dump(dump(1, false)));
    assertEquals("aborted-at-lock", criu.awaitOutcome());
    assertFalse(anyImage(1));
  }

  @Test
  void anAbortDeliversWhatTheCutDivertedOnlyAfterCriuLetTheTasksGo() throws Exception {
    // Delivered while CRIU's network lock still stands, the diverted packets would be dropped.
    List<String> criuAtAbort = new ArrayList<>();
    ChannelCuts cuts =
        new ChannelCuts() {
          @Override
          public Cut open(String ckpt, VhostRecord rec, long epoch, Set<String> local) {
            return new Cut() {
              @Override
              public void begin() {}

              @Override
              public void networkLocked(String vhost) {}

              @Override
              public List<byte[]> recordingFor(String address) {
                return List.of();
              }

              @Override
              public void released(String vhost, boolean stopped) {}

              @Override
              public void abort() {
                try {
                  criuAtAbort.add(criu.outcome());
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              }
            };
          }

          @Override
          public void forget(String ckpt) {}
        };
    CheckpointParticipant p =
        participant(store(), cuts, ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow());
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
    CheckpointParticipant p =
        participant(
            failing,
            ChannelCuts.NONE,
            ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow());
    p.dump(dump(1, true));
    assertThrows(CohortException.class, () -> p.seal(seal(1)));
    assertEquals("released-by-abort", criu.awaitOutcome());
    assertFalse(anyImage(1));
    assertEquals(VhostState.VHOST_STATE_RUNNING, records.load(VHOST).getState());
  }

  @Test
  void anAgentRestartedMidDumpLeavesTheJobRunningAndNoPendingImage() throws Exception {
    ProcessIdentity oldAgent = sleeper();
    LocalImageStore oldStore =
        new LocalImageStore(config.imagesDir(), config.pendingName(), oldAgent);
    CheckpointParticipant before = participant(oldStore, ChannelCuts.NONE, oldAgent);
    before.dump(dump(1, false));
    assertTrue(anyImage(1));
    new ProcessBuilder("kill", "-9", Long.toString(oldAgent.pid())).start().waitFor();
    assertTrue(oldAgent.awaitExit(5000));
    // CRIU's hook notices within a second or two that its agent is gone and lets the job go.
    assertEquals("released-by-abort", criu.awaitOutcome());
    LocalImageStore newStore = store();
    CheckpointParticipant after =
        participant(
            newStore,
            ChannelCuts.NONE,
            ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow());
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

  // ------------------------------------------------------------ the decision lease

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
